#!/usr/bin/env bash
# Installs the system packages some tests use, when they are missing: Debian's `chromium` (the HTML report test
# opens the page in headless Chromium) and `wordnet-base` (a test rebuilds vidiff/data/wordnet_shapes.py from
# WordNet's files and compares). Idempotent. Exits 0 with a message when it cannot install (no apt-get, not root
# and no passwordless sudo, or the install fails), so those tests skip instead of failing.
set -u
missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
[ -f /usr/share/wordnet/data.noun ] || missing+=(wordnet-base)
if [ ${#missing[@]} = 0 ]; then
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "install_test_tools: no apt-get; the tests that need ${missing[*]} will skip"
  exit 0
fi
if [ "$(id -u)" = 0 ]; then
  as_root=""
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  as_root="sudo -n"
else
  echo "install_test_tools: need root (or passwordless sudo) to install ${missing[*]}; the tests that need them will skip"
  exit 0
fi
# the frontend set through env: sudo's env_reset drops an exported one, and a debconf or dpkg question asked with
# its output in /dev/null would wait for ever; stdin from /dev/null makes any other question fail, not wait
apt_get() { $as_root env DEBIAN_FRONTEND=noninteractive apt-get "$@" </dev/null >/dev/null 2>&1; }
for package in "${missing[@]}"; do
  if apt_get install -y -qq --no-install-recommends "$package" \
    || { apt_get update -qq && apt_get install -y -qq --no-install-recommends "$package"; }; then
    echo "install_test_tools: installed $package"
  else
    echo "install_test_tools: apt-get could not install $package; the tests that need it will skip"
  fi
done
exit 0
