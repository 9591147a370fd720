#!/usr/bin/env bash
# Makes sure headless Chromium and its WebDriver server, chromedriver, are
# there for the browser test (host/tests/browser.rs), from Debian's packages
# `chromium` and `chromium-driver`. Quiet when they are.
set -euo pipefail
missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v chromedriver >/dev/null 2>&1 || missing+=(chromium-driver)
[ ${#missing[@]} -eq 0 ] && exit 0
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO="sudo"
    else
        echo "chromium.sh: Debian packages missing: ${missing[*]}; install them (apt-get install ${missing[*]}); the browser test is skipped outside CI" >&2
        exit 0
    fi
fi
echo "chromium.sh: installing Debian's ${missing[*]}" >&2
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
