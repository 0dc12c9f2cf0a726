#!/usr/bin/env bash
# Command-line tools the tests and the terminal use, from Debian packages:
# - jbigkit-bin: pbmtojbg / jbgtopbm, the JBIG1 encoder of the 0820 signature image
#   (terminal/receipts/signature_image.py); without it the terminal sends PNG and the JBIG tests
#   skip outside CI (in CI they fail: CI must have it).
# Installed with apt-get when run as root (as the fonts are, scripts/install-fonts.sh); otherwise
# it says what to install. Quick no-op when everything is there, so `make test` runs it every time.
set -u
if command -v pbmtojbg >/dev/null 2>&1 && command -v jbgtopbm >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing jbigkit-bin (pbmtojbg, JBIG1 signature images)"
  { apt-get install -y -qq jbigkit-bin || { apt-get update -qq && apt-get install -y -qq jbigkit-bin; }; } >/dev/null 2>&1 \
    || echo "could not install jbigkit-bin; signature uploads fall back to PNG, JBIG tests skip"
else
  echo "pbmtojbg not found; install jbigkit-bin (sudo apt-get install jbigkit-bin) for JBIG1 signature images"
fi
