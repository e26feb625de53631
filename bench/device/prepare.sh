#!/usr/bin/env bash
# Fills one git-ignored folder (default .device/ at the repo root, at most
# 64 MiB) with what a bare x86-64 GPU machine without network needs to run
# bench/device/run.sh:
#   deno.xz           the Deno binary of the npm package `deno`, xz-compressed
#   deno_dir.tar.xz   a DENO_DIR holding the npm packages the bench imports
#                     (`deno cache bench/device/step_gpu.ts`), source maps,
#                     type declarations and the browser bundles pruned
#   debs/*.deb        Debian's Vulkan loader (libvulkan1), and libglvnd's EGL
#                     (libegl1, libglvnd0) for wgpu's GL fallback, amd64
#   MANIFEST          versions, checksums, the deno.lock it was cached for
# Needs network (npm registry, Debian mirror) here, and deno, xz, apt-get.
#
#   bash bench/device/prepare.sh [DIR]     (or: deno task bench-device-prepare)
#
# An existing deno.xz of the same binary is kept (compressing takes a minute).
set -euo pipefail

die() {
  echo "prepare: $*" >&2
  exit 1
}
MIB=$((1024 * 1024))
LIMIT=$((64 * MIB))
root=$(cd "$(dirname "$0")/../.." && pwd)
dest=${1:-$root/.device}
mkdir -p "$dest"
dest=$(cd "$dest" && pwd)
for tool in xz tar apt-get sha256sum; do
  command -v "$tool" >/dev/null || die "$tool is missing"
done

# The Deno binary: the npm package's own (the device machine is x86-64).
deno_bin=${DENO_BIN:-}
if [ -z "$deno_bin" ]; then
  npm_pkg="$(npm root -g 2>/dev/null || true)/deno/node_modules/@deno/linux-x64-glibc/deno"
  if [ -x "$npm_pkg" ]; then
    deno_bin=$npm_pkg
  else
    deno_bin=$(readlink -f "$(command -v deno)") || die "no deno found: set DENO_BIN"
  fi
fi
[ "$(od -An -tx1 -j18 -N2 "$deno_bin" | tr -d ' ')" = "3e00" ] ||
  die "$deno_bin is not an x86-64 ELF binary: set DENO_BIN to the linux-x64-glibc deno"
deno_version=$("$deno_bin" --version | head -1)
deno_sum=$(sha256sum "$deno_bin" | cut -d' ' -f1)
echo "prepare: Deno $deno_bin ($deno_version) into $dest"
if [ -f "$dest/deno.xz" ] && grep -qx "deno_sha256 $deno_sum" "$dest/MANIFEST" 2>/dev/null; then
  echo "prepare: deno.xz is up to date"
else
  rm -f "$dest/deno.xz"
  nice -n 19 xz -T0 -9 -c "$deno_bin" >"$dest/deno.xz.tmp"
  mv "$dest/deno.xz.tmp" "$dest/deno.xz"
fi

# The npm packages: a fresh DENO_DIR filled by `deno cache` on the bench.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "prepare: caching the npm packages of bench/device/step_gpu.ts"
(cd "$root" && DENO_DIR="$tmp/deno_dir" NO_COLOR=1 "$deno_bin" cache --quiet \
  bench/device/step_gpu.ts 2>"$tmp/cache.log") ||
  {
    cat "$tmp/cache.log" >&2
    die "deno cache failed (it needs the npm registry)"
  }
npm_dir="$tmp/deno_dir/npm/registry.npmjs.org"
[ -d "$npm_dir/@tensorflow/tfjs-backend-webgpu" ] || die "deno cache left no tfjs-backend-webgpu in $npm_dir"
# Deno resolves these packages through package.json "main" (dist/*.node.js,
# CommonJS bundles that require nothing relative); the ESM trees, browser
# bundles and source maps beside them are never loaded.
find "$npm_dir" \( -name '*.map' -o -name '*.d.ts' \) -type f -delete
for dist in "$npm_dir"/@tensorflow/*/*/dist; do
  find "$dist" -mindepth 1 -maxdepth 1 ! -name '*.node.js' ! -name '*.wasm' \
    ! -name '*.worker.js' -exec rm -rf {} +
done
rm -f "$dest/deno_dir.tar.xz"
tar -C "$tmp/deno_dir" -cf - npm | nice -n 19 xz -T0 -6 >"$dest/deno_dir.tar.xz"

# The Vulkan loader and EGL, amd64, from this machine's Debian mirror.
echo "prepare: downloading the Vulkan loader and EGL debs"
lists="$tmp/apt-amd64"
mkdir -p "$lists/partial"
apt_opts=(-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 "-oDir::State::Lists=$lists")
apt-get "${apt_opts[@]}" update -qq >"$tmp/apt.log" 2>&1 || {
  cat "$tmp/apt.log" >&2
  die "apt-get update failed"
}
rm -rf "$dest/debs"
mkdir -p "$dest/debs"
(cd "$dest/debs" && apt-get "${apt_opts[@]}" download -qq libvulkan1 libegl1 libglvnd0 2>&1 |
  grep -v 'Download is performed unsandboxed' || true)
for p in libvulkan1 libegl1 libglvnd0; do
  ls "$dest/debs/${p}_"*_amd64.deb >/dev/null 2>&1 || die "apt-get download $p failed"
done

{
  echo "deno $deno_version"
  echo "deno_sha256 $deno_sum"
  echo "deno_lock_sha256 $(sha256sum "$root/deno.lock" | cut -d' ' -f1)"
  echo "debs $(cd "$dest/debs" && echo *.deb)"
  echo "prepared $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(uname -m)"
} >"$dest/MANIFEST"

# The folder, and everything the device tool sends with it: the tracked and
# untracked-not-ignored files of the checkout, 64 MiB in all.
size=$(du -sb "$dest" | cut -f1)
tree=$(cd "$root" && git ls-files -co --exclude-standard -z | du -cb --files0-from=- 2>/dev/null | tail -1 | cut -f1)
(cd "$dest" && ls -l deno.xz deno_dir.tar.xz debs/*.deb MANIFEST | awk '{printf "  %9d  %s\n", $5, $9}')
mib() { awk -v b="$1" 'BEGIN { printf "%.1f MiB", b / 1048576 }'; }
echo "prepare: $dest is $(mib "$size"); with the working tree ($(mib "$tree")) $(mib $((size + tree))) travel (limit 64 MiB)"
[ "$size" -le "$LIMIT" ] || die "$dest is over 64 MiB"
[ $((size + tree)) -le "$LIMIT" ] || die "the folder and the working tree together are over 64 MiB"
echo "prepare: ready; on the device: bash bench/device/run.sh  (carry: [\".device\"])"
