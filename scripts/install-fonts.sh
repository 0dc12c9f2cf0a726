#!/usr/bin/env bash
# A CJK-capable font for the emulated printer's PNG renderer (GB18030 receipts). Best effort:
# without one, Chinese prints as boxes in the PNG; the text rendering is unaffected.
set -u
if fc-list 2>/dev/null | grep -qiE "wqy|noto sans cjk|droid sans fallback"; then
  exit 0
fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing a CJK font (fonts-wqy-microhei) for receipt PNGs"
  { apt-get install -y -qq fonts-wqy-microhei || { apt-get update -qq && apt-get install -y -qq fonts-wqy-microhei; }; } >/dev/null 2>&1 \
    || echo "could not install fonts-wqy-microhei; receipt PNGs will show Chinese as boxes"
else
  echo "no CJK font found; install fonts-wqy-microhei (or Noto Sans CJK) for Chinese in receipt PNGs"
fi
