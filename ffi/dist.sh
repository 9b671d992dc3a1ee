#!/usr/bin/env bash
# Builds the relocatable binary tarball of the C library:
#   target/dist/libshutdown-<version>-<target>.tar.gz
# holding, under one top directory libshutdown-<version>-<target>/:
#   lib/libshutdown.so.<abi>.0.0, lib/libshutdown.so.<abi> and lib/libshutdown.so (links),
#   lib/libshutdown.a, include/shutdown.h, lib/pkgconfig/shutdown.pc
# The .pc file names no absolute path: prefix=${pcfiledir}/../.., so pkg-config
# finds the headers and libraries wherever the tree is unpacked (PKG_CONFIG_PATH=
# <where>/lib/pkgconfig). <version> is the crate version, <target> the host's target
# triple; the archive is reproducible (sorted, owner 0, mtime of the last commit).
#   ffi/dist.sh            (make dist)
# Prints the tarball's path on its last line.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"   # ffi/
root="$(cd "$here/.." && pwd)"
target_dir="${CARGO_TARGET_DIR:-$root/target}"
export PATH="$HOME/.cargo/bin:$PATH"
cd "$root"

version="$(cargo pkgid -p libshutdown-ffi | sed 's/.*[@#]//')"
triple="$(rustc -vV | sed -n 's/^host: //p')"
name="libshutdown-$version-$triple"
work="$target_dir/dist/work"
stage="$work/$name"
out="$target_dir/dist/$name.tar.gz"

rm -rf "$work"
mkdir -p "$work"
log="$work/cinstall.log"
# A placeholder prefix: every path cargo-c writes is under it, and the .pc's is
# replaced below.
if ! cargo cinstall --release -p libshutdown-ffi --prefix=/libshutdown --libdir=lib \
    --includedir=include --destdir="$work/root" >"$log" 2>&1; then
  cat "$log" >&2
  echo "dist: cargo cinstall failed" >&2
  exit 1
fi
mv "$work/root/libshutdown" "$stage"
pc="$stage/lib/pkgconfig/shutdown.pc"
[ -f "$pc" ] || { echo "dist: no $pc" >&2; exit 1; }
# ${pcfiledir} is the directory of the .pc file itself (pkg-config and pkgconf).
sed -i 's|^prefix=.*|prefix=${pcfiledir}/../..|' "$pc"
if grep -n '/libshutdown' "$pc"; then
  echo "dist: shutdown.pc still names the placeholder prefix" >&2
  exit 1
fi
for f in lib/libshutdown.a include/shutdown.h; do
  [ -f "$stage/$f" ] || { echo "dist: $f is missing" >&2; exit 1; }
done
ls "$stage"/lib/libshutdown.so.*.*.* >/dev/null

mtime="$(git log -1 --format=%ct 2>/dev/null || echo 0)"
tar --sort=name --owner=0 --group=0 --numeric-owner --mtime="@$mtime" \
  -C "$work" -cf - "$name" | gzip -9n >"$out.tmp"
mv "$out.tmp" "$out"
rm -rf "$work"
echo "$out"
