#!/usr/bin/env bash
# Installs ONNX Runtime's Node.js binding (npm onnxruntime-node, CPU EP) into a cache folder.
#   install_ort.sh [CACHE_DIR]        default ${FGQ_ORT_DIR:-<repo>/models/.cache/ort} (git-ignored)
# Idempotent: an install that matches the pinned lock file and loads is left alone.
# Needs only node + npm and the npm registry: the npm tarball itself ships the linux-x64 CPU binaries
# (bin/napi-v6/linux/x64/onnxruntime_binding.node + libonnxruntime.so.1). Its postinstall script
# (script/install.js) would download the CUDA/TensorRT EP from NuGet on linux-x64 and fails offline
# (getaddrinfo ENOTFOUND api.nuget.org); it is skipped twice over: --ignore-scripts and
# ONNXRUNTIME_NODE_INSTALL=skip (the script's own switch, for npm versions that ignore the former).
# The whole dependency tree is pinned by scripts/ort/package-lock.json (sha512 integrity per package,
# checked by `npm ci`); the onnxruntime-node tarball's integrity and the binaries' sha256 are also
# checked here. Prints the ORT version on success. Works non-interactively (CI=true).
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
dir="${1:-${FGQ_ORT_DIR:-$root/models/.cache/ort}}"

ORT_VERSION="1.30.0"
# `npm view onnxruntime-node@1.30.0 dist.integrity` (also in package-lock.json, checked by npm ci).
# For reference: dist.shasum 8d4c4a75f31088ec846f08cccb62f3272a7bf44a, and the sha256 of the tarball
# that `npm pack onnxruntime-node@1.30.0` writes (113,507,888 bytes, 301 MB unpacked, all platforms):
# 6e3390d6b783e7be946fad629292799da28d0b42f84856e50d2c1b0383291e75
ORT_INTEGRITY="sha512-twhs1C2C/BFkz1yc5OY0KIU2GUq6DURO7hD4bx5Q2Qy3nAMJwRXW8xU3NVczE29VA9lolLOYepoD8fjTGOfIqw=="
# sha256 of the linux-x64 binaries inside that tarball
BIN_SHA256_BINDING="ccdc60b981d93a490cf9513d3f583547252b6e285b72988a96a494f2f006c7b8"
BIN_SHA256_LIB="ffb75a925ba05e47b235bb66e3e3911714a80b328a9c9425539feb204aa32a23"

log() { echo "install_ort: $*"; }
die() { echo "install_ort: $*" >&2; exit 1; }

command -v node >/dev/null || die "node not found (Node.js >= 16 needed; tested with Node 20)"
command -v npm >/dev/null || die "npm not found"
case "$(uname -s)/$(uname -m)" in
  Linux/x86_64) bindir="linux/x64" ;;
  Linux/aarch64) bindir="linux/arm64" ;;
  *) die "unsupported platform $(uname -s)/$(uname -m)" ;;
esac

# The lock file must pin exactly the version and tarball named above.
node -e '
  const lock = require(process.argv[1]);
  const p = lock.packages["node_modules/onnxruntime-node"];
  if (!p || p.version !== process.argv[2] || p.integrity !== process.argv[3]) {
    console.error("install_ort: package-lock.json does not pin onnxruntime-node@" + process.argv[2] +
                  " with the expected integrity"); process.exit(1);
  }' "$here/package-lock.json" "$ORT_VERSION" "$ORT_INTEGRITY"

stamp="$dir/.fgq-ort-installed"
want_stamp="onnxruntime-node@$ORT_VERSION $(sha256sum "$here/package-lock.json" | cut -d' ' -f1)"
pkg="$dir/node_modules/onnxruntime-node"

check_load() {
  # Prints the versions of the binding and the native library it loaded; fails if it cannot load.
  (cd "$dir" && node -e '
    const ort = require("onnxruntime-node");
    const v = ort.env.versions;
    if (v.node !== process.argv[1]) { console.error("loaded onnxruntime-node " + v.node); process.exit(1); }
    const b = require("onnxruntime-node/dist/binding.js").binding;
    const eps = b.listSupportedBackends().map((e) => e.name + (e.bundled ? "" : "(not bundled)")).join(",");
    console.log("onnxruntime-node " + v.node + " (onnxruntime-common " + v.common + "), backends: " + eps);
  ' "$ORT_VERSION")
}

check_bins() {
  [ "$bindir" = "linux/x64" ] || return 0
  local b="$pkg/bin/napi-v6/$bindir"
  [ "$(sha256sum "$b/onnxruntime_binding.node" | cut -d' ' -f1)" = "$BIN_SHA256_BINDING" ] &&
  [ "$(sha256sum "$b/libonnxruntime.so.1" | cut -d' ' -f1)" = "$BIN_SHA256_LIB" ]
}

if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want_stamp" ] && check_bins 2>/dev/null && out="$(check_load 2>/dev/null)"; then
  log "$dir: already installed"
  echo "$out"
  exit 0
fi

log "installing onnxruntime-node@$ORT_VERSION into $dir"
mkdir -p "$dir"
rm -f "$stamp"
cp "$here/package.json" "$here/package-lock.json" "$dir/"
(
  cd "$dir"
  export CI=true ONNXRUNTIME_NODE_INSTALL=skip npm_config_yes=true
  npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
)

[ -f "$pkg/package.json" ] || die "npm ci left no $pkg"
[ -f "$pkg/bin/napi-v6/$bindir/onnxruntime_binding.node" ] || die "the package has no $bindir binding"
ls "$pkg/bin/napi-v6/$bindir/"libonnxruntime.so* >/dev/null 2>&1 || die "the package has no $bindir libonnxruntime.so"
check_bins || die "sha256 of the $bindir binaries differs from the pinned ones"
out="$(check_load)" || die "require('onnxruntime-node') failed in $dir"
echo "$want_stamp" > "$stamp"
log "$dir: installed"
echo "$out"
