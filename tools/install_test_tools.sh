#!/usr/bin/env bash
# Installs the system tools some tests use, when they are missing: Debian's `chromium` (the HTML report test
# opens the page in headless Chromium). Idempotent. Exits 0 with a message when it cannot install (no apt-get,
# not root and no passwordless sudo, or the install fails), so those tests skip instead of failing.
set -u
if [ -x /usr/bin/chromium ]; then
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "install_test_tools: no apt-get; the headless-browser report test will skip"
  exit 0
fi
if [ "$(id -u)" = 0 ]; then
  as_root=""
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  as_root="sudo -n"
else
  echo "install_test_tools: need root (or passwordless sudo) to install chromium; the report test will skip"
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
if $as_root apt-get install -y -qq --no-install-recommends chromium >/dev/null 2>&1 \
  || { $as_root apt-get update -qq >/dev/null 2>&1 && $as_root apt-get install -y -qq --no-install-recommends chromium >/dev/null 2>&1; }; then
  echo "install_test_tools: installed $(/usr/bin/chromium --version 2>/dev/null || echo chromium)"
else
  echo "install_test_tools: apt-get could not install chromium; the report test will skip"
fi
exit 0
