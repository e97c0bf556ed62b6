#!/usr/bin/env bash
# Install the headless browser that tests/test_dashboard.py drives: Debian's chromium, from the
# distribution's archive (never a browser download by Playwright or Selenium). Does nothing when
# /usr/bin/chromium is there already; needs root (or sudo) and apt-get otherwise.
set -euo pipefail
if [ -x /usr/bin/chromium ]; then
    echo "browser.sh: $(/usr/bin/chromium --version 2>/dev/null || echo chromium) already installed"
    exit 0
fi
if ! command -v apt-get >/dev/null; then
    echo "browser.sh: no apt-get here; install chromium at /usr/bin/chromium by hand" >&2
    exit 1
fi
SUDO=""
if [ "$(id -u)" != 0 ]; then
    SUDO="sudo -n"  # never wait for a password: fail, and the browser test skips
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
# fonts-liberation: without any font the screenshots show boxes instead of text.
$SUDO apt-get install -y -q --no-install-recommends chromium fonts-liberation
echo "browser.sh: $(/usr/bin/chromium --version) installed"
