#!/usr/bin/env bash
# Installs what building, running and testing the worker needs, and skips
# what is already there (a second run takes seconds):
#   - Rust: the nightly pinned in rust-toolchain.toml with rust-src;
#     wasm-bindgen-cli and worker-build at the versions the worker crate
#     needs (cargo install, ~15 min the first time)
#   - npm: wrangler (workerd), binaryen (wasm-opt), esbuild, from package-lock.json
#   - with --test: Debian's docker.io, docker-registry, skopeo, containerd,
#     tshark, apache2-utils (ab), nginx-light; Python's pytest and cryptography for the e2e fixtures
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

WASM_BINDGEN_VERSION=0.2.130
WORKER_BUILD_VERSION=0.8.7
APT_PACKAGES=(docker.io docker-registry skopeo containerd tshark apache2-utils nginx-light)
PIP_PACKAGES=(pytest==8.3.4 cryptography==48.0.0)

want_test=false
[ "${1:-}" = "--test" ] && want_test=true

say() { printf '[setup] %s\n' "$*"; }

# The toolchain pinned in rust-toolchain.toml, with rust-src for -Zbuild-std.
toolchain=$(sed -n 's/^channel = "\(.*\)"/\1/p' rust-toolchain.toml)
if ! rustup run "$toolchain" rustc --version >/dev/null 2>&1 || ! rustup component list --toolchain "$toolchain" --installed 2>/dev/null | grep -q '^rust-src'; then
  say "installing Rust $toolchain with rust-src and clippy"
  rustup toolchain install "$toolchain" --profile minimal --component rust-src --component clippy
fi
# worker-build refuses to run unless the wasm32 target's library directory
# exists. With -Zbuild-std, std is built from rust-src and that directory is
# never read, so an empty one satisfies the check (this nightly publishes no
# wasm32 rust-std to install into it).
libdir="$(rustup run "$toolchain" rustc --print sysroot)/lib/rustlib/wasm32-unknown-unknown/lib"
[ -d "$libdir" ] || mkdir -p "$libdir"

if [ "$(wasm-bindgen --version 2>/dev/null | awk '{print $2}')" != "$WASM_BINDGEN_VERSION" ]; then
  say "installing wasm-bindgen-cli $WASM_BINDGEN_VERSION (takes several minutes)"
  cargo install --quiet wasm-bindgen-cli --version "$WASM_BINDGEN_VERSION"
fi

if [ "$(worker-build --version 2>/dev/null)" != "$WORKER_BUILD_VERSION" ]; then
  say "installing worker-build $WORKER_BUILD_VERSION (takes several minutes)"
  cargo install --quiet worker-build --version "$WORKER_BUILD_VERSION"
fi

# npm writes node_modules/.package-lock.json on install; reinstall when the
# committed lockfile is newer or the tree is missing.
stamp=node_modules/.package-lock.json
if [ ! -f "$stamp" ] || [ package-lock.json -nt "$stamp" ]; then
  say "installing npm packages from package-lock.json"
  npm ci --no-audit --no-fund --loglevel=error
fi

if $want_test; then
  missing=()
  for p in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    say "installing Debian packages: ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
  for p in "${PIP_PACKAGES[@]}"; do
    name=${p%%==*} version=${p##*==}
    if [ "$(python3 -c "import importlib.metadata as m; print(m.version('$name'))" 2>/dev/null)" != "$version" ]; then
      say "installing $p"
      python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore "$p"
    fi
  done
fi
say "ready"
