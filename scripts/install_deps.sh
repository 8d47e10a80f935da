#!/usr/bin/env bash
# Installs what fgq needs, from Debian's packages only.
#   install_deps.sh          build + test dependencies
#   install_deps.sh --models also what fetching/exporting the models needs (npm, torchvision)
#   install_deps.sh --fuzz   also clang and its libFuzzer/sanitizer runtimes (scripts/fuzz.sh)
set -euo pipefail
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
pkgs=(cmake ninja-build g++ pkg-config
      libprotobuf-dev protobuf-compiler libonnx-dev
      libopencv-dev libeigen3-dev libtbb-dev libfmt-dev catch2 libcli11-dev nlohmann-json3-dev
      python3-onnx python3-numpy python3-matplotlib)
if [ "${1:-}" = "--models" ]; then
  pkgs+=(python3-torchvision)
  # Node.js images often ship their own npm, which conflicts with Debian's package.
  command -v npm >/dev/null || pkgs+=(npm)
fi
if [ "${1:-}" = "--fuzz" ]; then
  pkgs+=(clang libclang-rt-dev)  # Debian's default clang and the matching compiler-rt
fi
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "install_deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -q
  $SUDO apt-get install -y -q "${missing[@]}"
fi
