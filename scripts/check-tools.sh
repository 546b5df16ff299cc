#!/usr/bin/env bash
# Checks, before any test runs, that every external program the test suite
# calls is present, and names each one that is missing with the package that
# provides it. scripts/setup.sh --test installs them all; this check keeps a
# missing install step from hiding behind a machine that happens to have the
# program. Keep the list in step with what the tests call.
set -uo pipefail
cd "$(dirname "$0")/.."
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
# program  provider
TOOLS="
cargo rustup
rustup rustup
cargo-fuzz cargo-install:cargo-fuzz
node nodejs
npm nodejs
git git
python3 python3
node_modules/.bin/wrangler npm:wrangler
node_modules/.bin/workerd npm:workerd
scripts/from-source/node_modules/.bin/wasm-opt npm:binaryen(scripts/from-source)
scripts/from-source/node_modules/.bin/esbuild npm:esbuild(scripts/from-source)
docker debian:docker.io
dockerd debian:docker.io
containerd debian:containerd
ctr debian:containerd
skopeo debian:skopeo
docker-registry debian:docker-registry
tshark debian:tshark
nginx debian:nginx-light
wrk debian:wrk
openssl debian:openssl
unshare debian:util-linux
taskset debian:util-linux
mount debian:mount
"
missing=0
while read -r prog provider; do
  [ -n "$prog" ] || continue
  if [[ "$prog" == */* ]]; then
    [ -x "$prog" ] && continue
  else
    command -v "$prog" >/dev/null 2>&1 && continue
  fi
  echo "missing: $prog (from $provider)"
  missing=1
done <<< "$TOOLS"
for mod in pytest cryptography yaml; do
  python3 -c "import $mod" 2>/dev/null || { echo "missing: python module $mod (from pip)"; missing=1; }
done
if [ $missing -ne 0 ]; then
  echo "the test suite needs the programs above; scripts/setup.sh --test installs them"
  exit 1
fi
echo "all external programs the tests call are present"
