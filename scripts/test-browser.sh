#!/usr/bin/env bash
# The npm package's tests in headless Chromium: builds pkg/, installs Debian's chromium and the
# npm dev dependencies when missing, then runs Node's test runner over tests/browser/.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x /usr/bin/chromium ]; then
  echo "== installing chromium (apt)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq chromium >/dev/null
fi
[ -d node_modules/playwright-core ] || npm install --no-audit --no-fund
bash scripts/build-wasm.sh
node --test --test-concurrency=1 tests/browser/
