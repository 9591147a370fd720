#!/usr/bin/env bash
# Makes sure headless Chromium is there for the browser test
# (host/tests/browser.rs), from Debian's packages. Quiet when it is.
set -euo pipefail
command -v chromium >/dev/null 2>&1 && exit 0
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO="sudo"
    else
        echo "chromium.sh: chromium is missing; install Debian's chromium package (the browser test is skipped outside CI)" >&2
        exit 0
    fi
fi
echo "chromium.sh: installing Debian's chromium" >&2
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends chromium >/dev/null
