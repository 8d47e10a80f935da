#!/usr/bin/env bash
# One command from a fresh Debian machine to a result: installs dependencies, builds (Release),
# fetches the models and evaluates FP32 ResNet-50 on the shared ImageNet validation images.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install_deps.sh --models
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release
cmake --build build -j "$(nproc)"
scripts/fetch_models.sh
data="${FGQ_DATA:-../shared}/data/imagenet/val"
mkdir -p out
build/apps/fgq-run --model resnet50 --imagenet "$data" --plain-resize --json out/resnet50_fp32.json "$@"
