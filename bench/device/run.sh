#!/usr/bin/env bash
# Runs the GPU step bench on a bare x86-64 machine without network, from the
# folder bench/device/prepare.sh filled (.device/): unpacks Deno and its npm
# cache, installs the Vulkan loader (and EGL) when the machine lacks them,
# points the loader at NVIDIA's driver when no other is registered, prints
# the GPU, then runs bench/device/step_gpu.ts (WebGPU against CUDA PyTorch
# fp32, R18 and R50, four modes), writing the tables and a log to $OUT.
#
#   bash bench/device/run.sh [step_gpu.ts flags: --quick, --depths 18, --reps N, …]
#
# Environment: OUT (results; default $AGCL_DEVICE_WORK/out), AGCL_DEVICE_DIR
# (the prepared folder; default .device), AGCL_DEVICE_WORK (where to unpack;
# default /tmp/agcl-device), AGCL_DEVICE_TIMEOUT (seconds for the bench;
# default 540), AGCL_DEB_ROOT (extract the debs there instead of /, always,
# with its libraries put on LD_LIBRARY_PATH: for a smoke test), and
# DENO_WEBGPU_BACKEND (vulkan or gl; default: Vulkan when its loader and a
# driver are found, see backends/webgpu.ts).
set -euo pipefail

say() { echo "run.sh: $*"; }
die() {
  echo "run.sh: $*" >&2
  exit 1
}
root=$(cd "$(dirname "$0")/../.." && pwd)
src=${AGCL_DEVICE_DIR:-$root/.device}
work=${AGCL_DEVICE_WORK:-/tmp/agcl-device}
out=${OUT:-$work/out}
[ -f "$src/deno.xz" ] || die "no $src/deno.xz: run 'bash bench/device/prepare.sh' here first, then carry .device"
mkdir -p "$work" "$out"
t0=$(date +%s)

# xz may be missing on the device; Python's lzma never is where PyTorch is.
unxz_to() {
  if command -v xz >/dev/null; then
    xz -dc "$1" >"$2"
  else
    python3 -c 'import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2], "wb"))' "$1" "$2"
  fi
}
unxz_to "$src/deno.xz" "$work/deno"
chmod +x "$work/deno"
rm -rf "$work/deno_dir"
mkdir -p "$work/deno_dir"
unxz_to "$src/deno_dir.tar.xz" "$work/deno_dir.tar"
tar -C "$work/deno_dir" -xf "$work/deno_dir.tar"
rm -f "$work/deno_dir.tar"
say "unpacked $("$work/deno" --version | head -1) and its npm cache in $(($(date +%s) - t0)) s"
want=$(sed -n 's/^deno_lock_sha256 //p' "$src/MANIFEST")
have=$(sha256sum "$root/deno.lock" | cut -d' ' -f1)
[ "$want" = "$have" ] || say "warning: deno.lock changed since prepare.sh ran: a new npm package would be missing"

# The loader and EGL: into / (as the device README does) only when missing.
has_lib() { ldconfig -p | grep -q "$1"; }
if [ -n "${AGCL_DEB_ROOT:-}" ]; then
  mkdir -p "$AGCL_DEB_ROOT"
  for f in "$src"/debs/*.deb; do dpkg -x "$f" "$AGCL_DEB_ROOT"; done
  export LD_LIBRARY_PATH="$AGCL_DEB_ROOT/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  say "extracted $(ls "$src"/debs | tr '\n' ' ')into $AGCL_DEB_ROOT (LD_LIBRARY_PATH)"
else
  installed=""
  if ! has_lib 'libvulkan\.so\.1 '; then
    dpkg -x "$src"/debs/libvulkan1_*.deb /
    installed="$installed libvulkan1"
  fi
  if ! has_lib 'libEGL\.so\.1 '; then
    for p in libglvnd0 libegl1; do dpkg -x "$src"/debs/${p}_*.deb /; done
    installed="$installed libglvnd0 libegl1"
  fi
  [ -z "$installed" ] || ldconfig
  say "debs installed:${installed:- none (the machine has the loaders)}"
fi

# NVIDIA's driver manifests sit outside the loaders' search paths there.
nv=/usr/local/nvidia/share
manifests=$(ls /usr/share/vulkan/icd.d/*.json /etc/vulkan/icd.d/*.json /usr/local/share/vulkan/icd.d/*.json 2>/dev/null || true)
if [ -z "$manifests" ] && [ -z "${VK_DRIVER_FILES:-}${VK_ICD_FILENAMES:-}" ] && [ -f "$nv/vulkan/icd.d/nvidia_icd.json" ]; then
  export VK_DRIVER_FILES="$nv/vulkan/icd.d/nvidia_icd.json" VK_ICD_FILENAMES="$nv/vulkan/icd.d/nvidia_icd.json"
  say "VK_DRIVER_FILES=$VK_DRIVER_FILES"
fi
if [ -z "${__EGL_VENDOR_LIBRARY_FILENAMES:-}" ] && [ -f "$nv/glvnd/egl_vendor.d/10_nvidia.json" ]; then
  export __EGL_VENDOR_LIBRARY_FILENAMES="$nv/glvnd/egl_vendor.d/10_nvidia.json"
fi
if command -v nvidia-smi >/dev/null; then
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
fi

# The Python that holds PyTorch, unless --python names one: python3 on the
# PATH, else the device image's venv, else Debian's.
py=()
if [[ " $* " != *" --python"* ]]; then
  for p in python3 /opt/torch/.venv/bin/python3 /usr/bin/python3; do
    if "$p" -c 'import torch' 2>/dev/null; then
      py=(--python "$(command -v "$p")")
      break
    fi
  done
  [ ${#py[@]} -gt 0 ] || say "no python3 here imports torch: the PyTorch side will say so and skip"
fi

export DENO_DIR="$work/deno_dir" DENO_NO_UPDATE_CHECK=1 NO_COLOR=1 PYTHONUNBUFFERED=1
cd "$root"
set +e
timeout "${AGCL_DEVICE_TIMEOUT:-540}" "$work/deno" run -A --cached-only \
  bench/device/step_gpu.ts --out "$out" "${py[@]}" "$@" 2>&1 | tee "$out/log.txt"
rc=${PIPESTATUS[0]}
set -e
[ "$rc" != 124 ] || say "the bench ran past ${AGCL_DEVICE_TIMEOUT:-540} s and was stopped: the tables above are the depths it finished"
say "exit $rc after $(($(date +%s) - t0)) s; results in $out: $(ls "$out" | tr '\n' ' ')"
exit "$rc"
