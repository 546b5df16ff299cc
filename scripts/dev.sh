#!/usr/bin/env bash
# Runs the mirror locally over HTTPS, like a deployed Worker:
#   scripts/dev.sh [--http] [--wrangler] [--ip ADDR] [--port N] [-- WRANGLER ARGS]
#
# Default: builds the worker as a deployment does (node scripts/build.mjs:
# the committed planner in dist/ and the route table; no Rust needed) and
# serves it with plain `workerd serve` on https://127.0.0.1:8787.
#   --http      plain http instead (clients then stall 10 s per pull: they try
#               a TLS handshake first, which workerd leaves unanswered)
#   --wrangler  serve with `wrangler dev` instead, which rebuilds and reloads
#               on every source change (slower: ~2x per pull, its local proxy)
#   --ip/--port where to listen (default 127.0.0.1 and 8787)
# Arguments after `--` go to wrangler (with --wrangler only).
#
# Environment: ROUTES selects the route table (default routes.toml); DEV_DIR
# is where the certificate and the served copy live (default .dev, kept out
# of git); DEV_VARS names the file of Worker secrets (NAME=value lines, as
# wrangler reads them; default .dev.vars when it exists), for routes with
# `credentials = "NAME"`.
#
# The certificate: a local CA (DEV_DIR/tls/ca.crt, made once) and a server
# certificate it signs for every host of the route table plus localhost,
# 127.0.0.1 and the listen address (remade when that list changes; the CA
# stays, so clients trust it once). The script prints how to trust the CA in
# dockerd, containerd and podman/skopeo. README.md ("Trying it locally") has
# the whole walk-through.
set -euo pipefail
cd "$(dirname "$0")/.."

help() { sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; }
usage() { help >&2; exit 2; }
protocol=https stack=workerd ip=127.0.0.1 port=8787
while [ $# -gt 0 ]; do
  case "$1" in
    --http) protocol=http ;;
    --https) protocol=https ;;
    --wrangler) stack=wrangler ;;
    --ip) [ $# -ge 2 ] || usage; ip=$2; shift ;;
    --ip=*) ip=${1#*=} ;;
    --port) [ $# -ge 2 ] || usage; port=$2; shift ;;
    --port=*) port=${1#*=} ;;
    --) shift; break ;;
    -h|--help) help; exit 0 ;;
    *) echo "dev.sh: unknown argument $1" >&2; usage ;;
  esac
  shift
done
if [ $# -gt 0 ] && [ "$stack" != wrangler ]; then
  echo "dev.sh: arguments after -- are for wrangler; add --wrangler" >&2
  exit 2
fi

bash scripts/setup.sh --quiet
export WRANGLER_SEND_METRICS=false
routes=${ROUTES:-routes.toml}
dev=$(realpath -m "${DEV_DIR:-.dev}")
tls=$dev/tls
say() { printf '[dev] %s\n' "$*"; }

# The route table's host names, as build.rs reads them ({domain} expanded,
# lower case, no trailing dot).
mapfile -t hosts < <(python3 - "$routes" <<'EOF'
import sys, tomllib
try:
    with open(sys.argv[1], "rb") as f:
        t = tomllib.load(f)
except (OSError, tomllib.TOMLDecodeError) as e:
    sys.exit(f"dev.sh: cannot read the route table {sys.argv[1]}: {e}")
domain = t.get("domain", "")
seen = set()
for route in t.get("routes", {}).values():
    for h in route.get("hosts", []):
        h = h.replace("{domain}", domain).lower().rstrip(".")
        if h not in seen:
            seen.add(h)
            print(h)
EOF
)
[ ${#hosts[@]} -gt 0 ] || { echo "dev.sh: $routes names no hosts" >&2; exit 1; }

# --- the certificate ---
make_cert() {
  mkdir -p "$tls/private"
  chmod 700 "$tls/private"
  local names=("${hosts[@]}" localhost 127.0.0.1) san="" n
  case "$ip" in 0.0.0.0|::|127.0.0.1) ;; *) names+=("$ip") ;; esac
  for n in "${names[@]}"; do
    if [[ "$n" =~ ^[0-9.]+$ || "$n" == *:* ]]; then san+=",IP:$n"; else san+=",DNS:$n"; fi
  done
  san=${san#,}
  if [ ! -s "$tls/ca.crt" ] || [ ! -s "$tls/private/ca.key" ] || ! openssl x509 -checkend 2592000 -noout -in "$tls/ca.crt" >/dev/null; then
    say "making a local CA: $tls/ca.crt"
    (umask 077; openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 3650 \
      -subj "/CN=edge-mirror local development CA ${HOSTNAME:-}" \
      -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign \
      -keyout "$tls/private/ca.key" -out "$tls/ca.crt" 2>/dev/null)
    chmod 644 "$tls/ca.crt"
    rm -f "$tls/private/server.crt"
  fi
  if [ ! -s "$tls/private/server.crt" ] || [ "$(cat "$tls/private/names" 2>/dev/null)" != "$san" ] \
     || ! openssl x509 -checkend 2592000 -noout -in "$tls/private/server.crt" >/dev/null \
     || ! openssl verify -CAfile "$tls/ca.crt" "$tls/private/server.crt" >/dev/null 2>&1; then
    say "making the server certificate for ${names[*]}"
    (umask 077; openssl req -x509 -CA "$tls/ca.crt" -CAkey "$tls/private/ca.key" \
      -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 825 -subj "/CN=edge-mirror local development" \
      -addext "subjectAltName=$san" -addext basicConstraints=critical,CA:FALSE \
      -addext keyUsage=critical,digitalSignature -addext extendedKeyUsage=serverAuth \
      -keyout "$tls/private/server.key" -out "$tls/private/server.crt" 2>/dev/null)
    printf '%s' "$san" > "$tls/private/names"
  fi
}

explain() {
  local ca=$tls/ca.crt h=${hosts[0]} list="" x
  for x in "${hosts[@]}"; do list+=" $x:$port"; done
  cat <<EOF

The mirror's certificate is signed by a local CA made for this checkout:
  $ca
Trust it once per client (no insecure-registries needed), and map the host
names to $ip (e.g. in /etc/hosts: $ip ${hosts[*]}):
  dockerd (read on every pull, no restart):
    for h in$list; do sudo install -D -m 644 $ca /etc/docker/certs.d/\$h/ca.crt; done
  containerd (one hosts.toml per host; ctr: --hosts-dir /etc/containerd/certs.d):
    # /etc/containerd/certs.d/$h:$port/hosts.toml
    server = "https://$h:$port"
    [host."https://$h:$port"]
      ca = "$ca"
  podman, skopeo, buildah:
    for h in$list; do sudo install -D -m 644 $ca /etc/containers/certs.d/\$h/ca.crt; done
    or per command: --cert-dir $tls (skopeo copy: --src-cert-dir $tls)
  curl: curl --cacert $ca https://$h:$port/v2/
Then: docker pull $h:$port/library/busybox

EOF
}

if [ "$protocol" = https ]; then
  make_cert
  explain
else
  cat <<EOF

Plain http: docker, podman and skopeo try a TLS handshake first and wait out
its 10 s timeout on every pull before falling back to http (allowed only for
hosts in insecure-registries / --tls-verify=false). Drop --http to avoid it.

EOF
fi

# --- serving ---
if [ "$stack" = wrangler ]; then
  tls_args=()
  [ "$protocol" = https ] && tls_args=(--local-protocol https --https-key-path "$tls/private/server.key" --https-cert-path "$tls/private/server.crt")
  # wrangler reads .dev.vars itself.
  [ -n "${DEV_VARS:-}" ] && tls_args+=(--env-file "$DEV_VARS")
  exec node_modules/.bin/wrangler dev --ip "$ip" --port "$port" "${tls_args[@]}" "$@"
fi

# Built straight into the served folder, so later builds into build/
# (tests, benchmarks, other tables) do not change the running worker.
mkdir -p "$dev/serve"
node scripts/build.mjs --table "$routes" --out "$dev/serve"

# Worker secrets from DEV_VARS (or .dev.vars), as text bindings: one file
# per value under DEV_DIR/vars (mode 700), embedded by the config.
bindings=""
vars=${DEV_VARS:-.dev.vars}
rm -rf "$dev/vars"
if [ -n "${DEV_VARS:-}" ] || [ -f "$vars" ]; then
  mkdir -m 700 "$dev/vars"
  python3 - "$vars" "$dev/vars" > "$dev/vars/.names" <<'EOF'
import os, re, sys
src, out = sys.argv[1], sys.argv[2]
try:
    lines = open(src, encoding="utf-8").read().splitlines()
except OSError as e:
    sys.exit(f"dev.sh: cannot read the secrets file {src}: {e}")
for n, line in enumerate(lines, 1):
    line = line.strip()
    if not line or line.startswith("#"):
        continue
    m = re.match(r"(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$", line)
    if not m:
        sys.exit(f"dev.sh: {src}:{n}: expected NAME=value")
    name, value = m.groups()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        value = value[1:-1]
    fd = os.open(os.path.join(out, name), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(value)
    print(name)
EOF
  mapfile -t names < "$dev/vars/.names"
  for n in "${names[@]}"; do bindings+="(name = \"$n\", text = embed \"vars/$n\"), "; done
  [ ${#names[@]} -eq 0 ] || say "secrets from $vars: ${names[*]}"
fi

# The compatibility date and flags wrangler deploys with.
read -r date flags < <(python3 -c '
import json, tomllib
t = tomllib.load(open("wrangler.toml", "rb"))
print(t["compatibility_date"], json.dumps(t.get("compatibility_flags", [])))')
case "$ip" in *:*) addr="[$ip]:$port" ;; *) addr="$ip:$port" ;; esac
if [ "$protocol" = https ]; then
  socket="https = (options = (), tlsOptions = (keypair = (privateKey = embed \"tls/private/server.key\", certificateChain = embed \"tls/private/server.crt\")))"
else
  socket="http = ()"
fi
cat > "$dev/workerd.capnp" <<EOF
# Written by scripts/dev.sh.
using Workerd = import "/workerd/workerd.capnp";
const config :Workerd.Config = (
  services = [
    (name = "main", worker = .worker),
    (name = "internet", network = (allow = ["public", "private", "local"])),
  ],
  sockets = [(name = "$protocol", address = "$addr", $socket, service = "main")],
);
const worker :Workerd.Worker = (
  modules = [
    (name = "index.js", esModule = embed "serve/index.js"),
    (name = "index_bg.wasm", wasm = embed "serve/index_bg.wasm"),
    (name = "table.bin", data = embed "serve/table.bin"),
    (name = "page.html", text = embed "serve/page.html"),
  ],
  compatibilityDate = "$date",
  compatibilityFlags = $flags,
  bindings = [${bindings%, }],
);
EOF
say "serving $protocol://$addr with workerd ($routes: ${hosts[*]}); Ctrl-C stops"
exec node_modules/.bin/workerd serve "$dev/workerd.capnp"
