#!/usr/bin/env bash
# One command from a fresh Debian machine to a result: installs dependencies, builds (Release),
# fetches the models and evaluates ResNet-50 on the shared ImageNet validation images: FP32, then
# FGQ (N=4, 8-bit activations, calibrated on calib/) on the integer pipeline.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install_deps.sh --models
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release
cmake --build build -j "$(nproc)"
scripts/fetch_models.sh
data="${FGQ_DATA:-../shared}/data/imagenet/val"
mkdir -p out
build/apps/fgq-run --model resnet50 --imagenet "$data" --plain-resize --json out/resnet50_fp32.json "$@"
build/apps/fgq-run --model resnet50 --imagenet "$data" --plain-resize --quant fgq --json out/resnet50_fgq.json "$@"
