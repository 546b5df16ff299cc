#!/usr/bin/env bash
# Installs what building, running and testing the worker needs, and skips
# what is already there (a second run takes seconds):
#   - Rust: the nightly pinned in rust-toolchain.toml with rust-src and
#     clippy; wasm-bindgen-cli at the version the wasm-bindgen crate needs
#     (cargo install, several minutes the first time)
#   - npm: wrangler (workerd), binaryen (wasm-opt), esbuild, from package-lock.json
#   - with --test: the Debian packages and Python packages the test suite
#     calls (APT_PACKAGES, PIP_PACKAGES), and cargo-fuzz
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"

WASM_BINDGEN_VERSION=0.2.130
CARGO_FUZZ_VERSION=0.13.2
APT_PACKAGES=(docker.io docker-registry skopeo containerd tshark nginx-light wrk openssl util-linux)
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

# The CLI must match the wasm-bindgen crate exactly. Built with the stable
# toolchain (`--locked` fails: a pinned transitive version is missing from
# the registry).
if [ "$(wasm-bindgen --version 2>/dev/null | awk '{print $2}')" != "$WASM_BINDGEN_VERSION" ]; then
  say "installing wasm-bindgen-cli $WASM_BINDGEN_VERSION (takes several minutes)"
  (cd / && cargo +stable install --quiet wasm-bindgen-cli --version "$WASM_BINDGEN_VERSION")
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
  if [ "$(cargo fuzz --version 2>/dev/null | awk '{print $2}')" != "$CARGO_FUZZ_VERSION" ]; then
    say "installing cargo-fuzz $CARGO_FUZZ_VERSION"
    (cd / && cargo +stable install --quiet cargo-fuzz --version "$CARGO_FUZZ_VERSION")
  fi
fi
say "ready"
