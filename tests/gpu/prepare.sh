#!/usr/bin/env bash
# Prepares, on the 2-core machine, what a device-tool GPU run of tests/gpu/train.sh carries (both
# gitignored, so a new checkout has neither):
#   gpu-bin/clip-burn.xz  the CUDA release build of the checkout, stripped, `xz -9` (gpu-bin/COMMIT
#                         names the last commit that changed the crates); ~40 min on 2 cores cold,
#                         minutes when only our crates changed;
#   tests/gpu/wheels/     open-clip-torch and the pure-Python packages train.sh installs there with
#                         pip --no-index (the GPU machine has torch but no network), for its
#                         Python 3.12.
# The cargo target dir and a copy of each binary stay in ~/.cache/clip-burn (target/cuda-release,
# gpu-bin/<commit>.xz): a later session on the same commit, on a machine that kept its cache, takes
# the binary as it is. Uncommitted changes to the crates are refused: COMMIT must say what was built.
# Then, with the device tool: carry ["gpu-bin/clip-burn.xz", "tests/gpu/wheels"], timeout_s 590:
#   python3 -c "import lzma, shutil; shutil.copyfileobj(lzma.open('gpu-bin/clip-burn.xz'), open('/tmp/cb', 'wb'))" &&
#   chmod +x /tmp/cb && bash tests/gpu/check.sh /tmp/cb; BUDGET=480 bash tests/gpu/train.sh /tmp/cb
set -euo pipefail
cd "$(dirname "$0")/../.."
cache=$HOME/.cache/clip-burn
# The last commit that changed what the binary is built from (later commits to docs and scripts
# leave the binary as it is).
crates=(Cargo.toml Cargo.lock shared-model native-trainer vendor)
commit=$(git log -1 --format=%H -- "${crates[@]}")
if [ -n "$(git status --porcelain --untracked-files=no -- "${crates[@]}")" ]; then
  echo "uncommitted changes in the crates: commit them first (gpu-bin/COMMIT names the commit built)" >&2
  exit 1
fi

mkdir -p gpu-bin "$cache/gpu-bin"
if [ -f "gpu-bin/clip-burn.xz" ] && [ "$(cat gpu-bin/COMMIT 2>/dev/null)" = "$commit" ]; then
  echo "gpu-bin/clip-burn.xz is already $commit"
elif [ -f "$cache/gpu-bin/$commit.xz" ]; then
  cp "$cache/gpu-bin/$commit.xz" gpu-bin/clip-burn.xz && echo "$commit" > gpu-bin/COMMIT
  echo "gpu-bin/clip-burn.xz: $commit from $cache/gpu-bin"
else
  target=$cache/target/cuda-release
  echo "building $commit with --features cuda in $target"
  python3 scripts/vendored.py settle
  CARGO_TARGET_DIR=$target cargo build --release --locked -p clip-trainer --features cuda
  strip -o gpu-bin/clip-burn "$target/release/clip-burn"
  xz -9 -T2 -c gpu-bin/clip-burn > gpu-bin/clip-burn.xz
  rm gpu-bin/clip-burn
  echo "$commit" > gpu-bin/COMMIT
  cp gpu-bin/clip-burn.xz "$cache/gpu-bin/$commit.xz"
  # Older commits' binaries are of no further use.
  find "$cache/gpu-bin" -name '*.xz' ! -name "$commit.xz" -delete
fi
ls -la gpu-bin/clip-burn.xz

# The versions tests/fixtures/generate.sh pins (the fixtures' open_clip).
wheels=(open-clip-torch==3.3.0 ftfy==6.3.1 wcwidth regex)
if ! ls tests/gpu/wheels/open_clip_torch-3.3.0-*.whl tests/gpu/wheels/regex-*cp312*.whl > /dev/null 2>&1; then
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    -d tests/gpu/wheels "${wheels[@]}"
fi
ls tests/gpu/wheels
du -ch gpu-bin/clip-burn.xz tests/gpu/wheels | tail -1
