#!/usr/bin/env bash
# Installs Debian's Chromium (/usr/bin/chromium) for tests/test_browser.py, once; a no-op when it
# is already there. Playwright drives it from the venv (pip package `playwright`, in the `test`
# extra); we never run `playwright install`, which would download a browser of its own.
set -euo pipefail
CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"
if [ -x "$CHROMIUM" ]; then
    exit 0
fi
if ! command -v apt-get >/dev/null; then
    echo "install_browser.sh: no $CHROMIUM and no apt-get; install Chromium yourself" \
         "and point CHROMIUM at it" >&2
    exit 1
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
if [ ! -x "$CHROMIUM" ]; then
    echo "install_browser.sh: installed Debian's chromium, but there is no $CHROMIUM" >&2
    exit 1
fi
