#!/usr/bin/env bash
# Runs the mirror locally: builds the worker (release, as deployed) and serves
# it with `wrangler dev` in workerd on http://127.0.0.1:8787. ROUTES selects
# another route table. Extra arguments go to wrangler (e.g. --port 9000).
#
# Routing is by Host, so address a route by its host name, for example
#   curl -H 'Host: docker.mirror.example.com' http://127.0.0.1:8787/v2/
# or map the names to 127.0.0.1 and pull: see README.md.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export WRANGLER_SEND_METRICS=false
exec node_modules/.bin/wrangler dev --ip 127.0.0.1 --port 8787 "$@"
