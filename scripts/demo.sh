#!/usr/bin/env bash
# The main command: builds what the demo page needs (the npm package's wasm via
# scripts/build-wasm.sh, the page in web/dist with the default model) and serves it on
# http://127.0.0.1:8080/ (PORT=... for another port). Needs no network once the toolchain is in.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build-wasm.sh
[ -e web/node_modules/clip-burn ] || (cd web && npm ci --no-audit --no-fund --offline)
node web/build.js
exec node web/serve.js
