#!/usr/bin/env bash
# Command-line tools the tests and the terminal use, from Debian packages:
# - jbigkit-bin: pbmtojbg / jbgtopbm, the JBIG1 encoder of the 0820 signature image
#   (terminal/receipts/signature_image.py); without it the terminal sends PNG and the JBIG tests
#   skip outside CI (in CI they fail: CI must have it).
# - chromium, chromium-driver: the headless browser and its WebDriver for the web terminal's
#   browser tests (tests/browser, Selenium); without them those tests skip outside CI (in CI they fail).
# - shellcheck: the deploy kit's install.sh is checked with it (tests/unit/test_deploy_kit.py);
#   without it that test skips outside CI (in CI it fails).
# Installed with apt-get when run as root (as the fonts are, scripts/install-fonts.sh); otherwise
# it says what to install. Quick no-op when everything is there, so `make test` runs it every time.
set -u
need=()
if ! command -v pbmtojbg >/dev/null 2>&1 || ! command -v jbgtopbm >/dev/null 2>&1; then
  need+=(jbigkit-bin)
fi
if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then
  need+=(chromium chromium-driver)
fi
if ! command -v shellcheck >/dev/null 2>&1; then
  need+=(shellcheck)
fi
if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing ${need[*]} (JBIG1 signature images; the browser tests' headless Chromium; shellcheck)"
  { DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" \
      || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"; }; } >/dev/null 2>&1 \
    || echo "could not install ${need[*]}; signature uploads fall back to PNG, JBIG, browser and shellcheck tests skip"
else
  echo "not found: ${need[*]}; install them (sudo apt-get install ${need[*]}) for JBIG1 signature images," \
       "the browser tests and the install script's check"
fi
