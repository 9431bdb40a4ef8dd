#!/usr/bin/env bash
# Extracts real video clips from Debian packages into third_party_samples/ (not committed):
#   opencv-doc: vtest.avi, Megamind.avi, Megamind_bugy.avi, tree.avi
#   python3-imageio: cockatoo.mp4, realshort.mp4, newtonscradle.gif
# Nothing is installed: `apt-get download` + `dpkg-deb -x` into a scratch folder. Exits 0 when apt is missing,
# so the tests that need these clips skip instead of failing on machines without Debian tooling.
set -u
cd "$(dirname "$0")/.."
dest=third_party_samples
want="vtest.avi Megamind.avi Megamind_bugy.avi tree.avi cockatoo.mp4 realshort.mp4 newtonscradle.gif"
have=1
for f in $want; do [ -s "$dest/$f" ] || have=0; done
[ "$have" = 1 ] && exit 0
command -v apt-get >/dev/null && command -v dpkg-deb >/dev/null || { echo "fetch_sample_videos: no apt-get; real-clip tests will skip"; exit 0; }
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
(cd "$scratch" && apt-get download opencv-doc python3-imageio >/dev/null 2>&1) || {
  apt-get update -qq >/dev/null 2>&1
  (cd "$scratch" && apt-get download opencv-doc python3-imageio >/dev/null 2>&1) || { echo "fetch_sample_videos: apt-get download failed; real-clip tests will skip"; exit 0; }
}
for deb in "$scratch"/*.deb; do dpkg-deb -x "$deb" "$scratch/x"; done
mkdir -p "$dest"
for f in $want; do
  src=$(find "$scratch/x" -name "$f" -type f | head -n 1)
  [ -n "$src" ] && cp "$src" "$dest/$f"
done
echo "fetch_sample_videos: $(ls "$dest" | wc -l) clips in $dest"
