#!/usr/bin/env bash
# Installs what building, running and testing the worker needs, and skips
# what is already there (a run with nothing to install takes about 0.05 s):
#   - always: the npm packages of package-lock.json (wrangler, with workerd):
#     all the deploy build and `wrangler dev` need, besides Node itself
#   - with --from-source (what rebuilding dist/ from the Rust sources needs):
#     the nightly pinned in rust-toolchain.toml with rust-src and clippy; the
#     table compiler's toolchain (compiler/rust-toolchain.toml) with
#     wasm32-wasip1; scripts/from-source's npm packages (wasm-opt, esbuild)
#   - with --test: all of that, and the Debian and Python packages the test
#     suite calls (APT_PACKAGES, PIP_PACKAGES), and cargo-fuzz
#
#   scripts/setup.sh [--from-source | --test] [--quiet | --check]
#     --quiet   silent when nothing is missing (the builds call it so)
#     --check   install nothing: when something is missing, one line naming
#               it and the command that installs it, and exit 1 (the build
#               with EDGE_NO_INSTALL=1)
#
# One line per step, so a first install does not look hung.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"

CARGO_FUZZ_VERSION=0.13.2
APT_PACKAGES=(docker.io docker-registry skopeo containerd tshark nginx-light wrk openssl util-linux)
PIP_PACKAGES=(pytest==8.3.4 cryptography==48.0.0 PyYAML==6.0.3)

mode=deploy quiet=false check=false
for arg in "$@"; do
  case "$arg" in
    --from-source) mode=source ;;
    --test) mode=test ;;
    --quiet) quiet=true ;;
    --check) check=true ;;
    *) echo "usage: scripts/setup.sh [--from-source | --test] [--quiet | --check]" >&2; exit 2 ;;
  esac
done
rust=false
[ "$mode" = deploy ] || rust=true
install_cmd="bash scripts/setup.sh"
[ "$mode" = source ] && install_cmd+=" --from-source"
[ "$mode" = test ] && install_cmd+=" --test"

say() { printf '[setup] %s\n' "$*"; }

# The prerequisites this script does not install.
prereqs=(node:https://nodejs.org npm:https://nodejs.org)
$rust && prereqs+=(rustup:https://rustup.rs python3:https://www.python.org)
for p in "${prereqs[@]}"; do
  if ! command -v "${p%%:*}" >/dev/null 2>&1; then
    say "missing: ${p%%:*}, which this project needs and does not install; install it (${p#*:}), then run the command again"
    exit 1
  fi
done
if ! node -e 'const [a, b] = process.versions.node.split(".").map(Number); process.exit(a > 20 || (a === 20 && b >= 3) ? 0 : 1)'; then
  say "missing: Node 20.3 or later (this is $(node --version)); install it (https://nodejs.org), then run the command again"
  exit 1
fi

toolchain=$(sed -n 's/^channel = "\(.*\)"/\1/p' rust-toolchain.toml)
compiler_toolchain=$(sed -n 's/^channel = "\(.*\)"/\1/p' compiler/rust-toolchain.toml)

# The toolchain pinned in rust-toolchain.toml, with rust-src for -Zbuild-std.
have_toolchain() {
  rustup run "$toolchain" rustc --version >/dev/null 2>&1 &&
    rustup component list --toolchain "$toolchain" --installed 2>/dev/null | grep -q '^rust-src'
}
# The table compiler's stable toolchain, with the WASI std.
have_compiler_toolchain() {
  rustup run "$compiler_toolchain" rustc --version >/dev/null 2>&1 &&
    rustup target list --toolchain "$compiler_toolchain" --installed 2>/dev/null | grep -qx 'wasm32-wasip1'
}
# npm writes node_modules/.package-lock.json on install; reinstall when the
# committed lockfile is newer or the tree is missing.
have_npm() { # DIR
  [ -f "$1/node_modules/.package-lock.json" ] && ! [ "$1/package-lock.json" -nt "$1/node_modules/.package-lock.json" ]
}

missing=()
have_npm . || missing+=("npm packages from package-lock.json")
if $rust; then
  have_toolchain || missing+=("Rust $toolchain with rust-src")
  have_compiler_toolchain || missing+=("Rust $compiler_toolchain with wasm32-wasip1")
  have_npm scripts/from-source || missing+=("npm packages from scripts/from-source/package-lock.json")
fi

if $check; then
  if [ ${#missing[@]} -gt 0 ]; then
    list=$(printf '%s, ' "${missing[@]}")
    say "missing: ${list%, }; install with: $install_cmd"
    exit 1
  fi
  exit 0
fi

if [ ${#missing[@]} -gt 0 ]; then
  list=$(printf '%s, ' "${missing[@]}")
  took="later runs skip this"
  say "installing what the build needs, once: ${list%, } ($took)"
fi
start=$SECONDS did=false

if ! have_npm .; then
  say "installing npm packages from package-lock.json"
  npm ci --no-audit --no-fund --loglevel=error
  did=true
fi

if $rust; then
  if ! have_toolchain; then
    say "installing Rust $toolchain with rust-src and clippy (rustup, under a minute)"
    rustup toolchain install "$toolchain" --profile minimal --component rust-src --component clippy
    did=true
  fi
  if ! have_compiler_toolchain; then
    say "installing Rust $compiler_toolchain with wasm32-wasip1, for the table compiler (rustup, under a minute)"
    rustup toolchain install "$compiler_toolchain" --profile minimal --target wasm32-wasip1
    did=true
  fi
  if ! have_npm scripts/from-source; then
    say "installing npm packages from scripts/from-source/package-lock.json"
    (cd scripts/from-source && npm ci --no-audit --no-fund --loglevel=error)
    did=true
  fi
fi

if [ "$mode" = test ]; then
  apt_missing=()
  for p in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || apt_missing+=("$p")
  done
  if [ ${#apt_missing[@]} -gt 0 ]; then
    say "installing Debian packages: ${apt_missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${apt_missing[@]}" >/dev/null
    did=true
  fi
  for p in "${PIP_PACKAGES[@]}"; do
    name=${p%%==*} version=${p##*==}
    if [ "$(python3 -c "import importlib.metadata as m; print(m.version('$name'))" 2>/dev/null)" != "$version" ]; then
      say "installing $p"
      python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore "$p"
      did=true
    fi
  done
  if [ "$(cargo fuzz --version 2>/dev/null | awk '{print $2}')" != "$CARGO_FUZZ_VERSION" ]; then
    say "installing cargo-fuzz $CARGO_FUZZ_VERSION"
    (cd / && cargo +stable install --quiet cargo-fuzz --version "$CARGO_FUZZ_VERSION")
    did=true
  fi
fi
if $did; then
  say "ready (installed in $((SECONDS - start)) s)"
elif ! $quiet; then
  say "ready"
fi
