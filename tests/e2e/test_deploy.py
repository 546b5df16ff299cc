"""From a fresh clone to a deploy with Node alone, the way README
"Deploying" says: `npm ci`, edit `routes.toml`, `npx wrangler deploy` (here
`--dry-run --outdir`, which builds and writes what would be uploaded,
offline); the deploy workflow (.github/workflows/deploy.yml), its `run:`
steps in order; and the from-source build reproducing the committed files
in a clone elsewhere.

The fresh clone is `git clone` of this checkout (its HEAD) into a temporary
folder, run as on a machine with Node and no Rust (Workers Builds' image, a
deployer's laptop):
- PATH is a folder of tripwires, then /usr/bin and /bin (node, npm, git;
  python3 and openssl for scripts/dev.sh). The tripwires are named cargo,
  rustc, rustup, rustdoc, wasm-bindgen and wasm-opt: each records that it
  was called and fails, so a build that calls one fails and says so. No
  other folder on PATH has cargo, rustc or rustup (asserted).
- HOME is an empty folder (no ~/.cargo, no ~/.rustup; asserted still so
  afterwards); CARGO_HOME and RUSTUP_HOME are unset.
- The npm cache is this machine's (npm_config_cache), so `npm ci` takes
  seconds: Workers Builds' build cache keeps exactly that folder.
"""

import os
import re
import shutil
import subprocess
import time
import tomllib
import hashlib

import pytest
import yaml

import devstack
from conftest import FRONT, TOKEN
from devstack import in_ns

ROOT = devstack.ROOT
TRIPWIRES = ["cargo", "rustc", "rustup", "rustdoc", "wasm-bindgen", "wasm-opt"]
DEV_IP, DEV_PORT = "127.0.0.53", 8443
CHECK_IP, CHECK_PORT = "127.0.0.52", 8443
TRIPWIRE = """#!/bin/sh
# Written by tests/e2e/test_deploy.py: the deploy build must not call this.
echo "$(basename "$0") $*" >> "LOG"
echo "tripwire: $(basename "$0") was called; the deploy build needs Node alone" >&2
exit 127
"""


def npm_cache():
    r = subprocess.run(["npm", "config", "get", "cache"], capture_output=True, text=True, timeout=60)
    return r.stdout.strip() or os.path.expanduser("~/.npm")


class Fresh:
    """Paths and environment of the fresh-clone runs."""

    def __init__(self, base):
        self.base = base
        self.clone = os.path.join(base, "clone")
        self.home = os.path.join(base, "home")
        self.calls = os.path.join(base, "tripwire-calls.log")
        wires = os.path.join(base, "tripwires")
        os.makedirs(wires)
        os.makedirs(self.home)
        for name in TRIPWIRES:
            path = os.path.join(wires, name)
            with open(path, "w") as f:
                f.write(TRIPWIRE.replace("LOG", self.calls))
            os.chmod(path, 0o755)
        path = [wires, "/usr/bin", "/bin"]
        for tool in ("cargo", "rustc", "rustup"):
            found = shutil.which(tool, path=os.pathsep.join(path[1:]))
            assert found is None, f"{found} is on the Node-only PATH"
        for tool in ("node", "npm", "git", "python3", "openssl"):
            assert shutil.which(tool, path=os.pathsep.join(path[1:])), f"no {tool} in /usr/bin or /bin"
        keep = ("LANG", "LC_ALL", "TERM", "TZ")
        self.env = {k: v for k, v in os.environ.items() if k in keep}
        self.env.update(PATH=os.pathsep.join(path), HOME=self.home, npm_config_cache=npm_cache(),
                        WRANGLER_SEND_METRICS="false", CI="true", NO_UPDATE_NOTIFIER="1",
                        XDG_CONFIG_HOME=os.path.join(base, "xdg"))

    def reclone(self):
        shutil.rmtree(self.clone, ignore_errors=True)
        r = subprocess.run(["git", "clone", "--quiet", ROOT, self.clone], capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr
        assert not os.path.exists(os.path.join(self.clone, "node_modules"))

    def run(self, cmd, env=None, timeout=900):
        """A shell command in the clone; returns (CompletedProcess, seconds)."""
        t = time.monotonic()
        r = subprocess.run(["bash", "-c", cmd], cwd=self.clone, env=dict(self.env, **(env or {})), capture_output=True,
                           text=True, timeout=timeout)
        return r, time.monotonic() - t

    def tripped(self):
        """The tripwires called so far, and whether HOME gained a Rust folder."""
        calls = open(self.calls).read().splitlines() if os.path.exists(self.calls) else []
        rusty = [d for d in (".cargo", ".rustup") if os.path.exists(os.path.join(self.home, d))]
        return calls + rusty

    def write(self, name, text):
        with open(os.path.join(self.clone, name), "w") as f:
            f.write(text)


@pytest.fixture(scope="module")
def fresh(tmp_path_factory):
    f = Fresh(str(tmp_path_factory.mktemp("fresh")))
    f.reclone()
    r, took = f.run("npm ci --no-audit --no-fund --loglevel=error")
    assert r.returncode == 0, output(r)
    print(f"npm ci in the fresh clone: {took:.1f} s")
    return f


def output(r):
    return r.stdout + r.stderr


def assert_uploads_the_planner_and_the_table(clone, outdir, out):
    """The dry run's output folder and wrangler's own upload figure: the
    entry, the committed planner's wasm, the table and the page, nothing
    else (wrangler also writes a README note and a source map, which it does
    not upload). Returns (entry, wasm, table, page) as uploaded."""
    files = sorted(os.listdir(outdir))
    named = {}
    for suffix in ("index_bg.wasm", "table.bin", "page.html"):
        [f] = [f for f in files if f.endswith("-" + suffix)]
        named[suffix] = f
    assert sorted(set(files) - set(named.values())) == ["README.md", "index.js", "index.js.map"], files
    read = lambda f: open(os.path.join(outdir, f), "rb").read()
    wasm, table, page, js = read(named["index_bg.wasm"]), read(named["table.bin"]), read(named["page.html"]), read("index.js")
    # The committed planner, as it is in dist/.
    assert wasm == open(os.path.join(clone, "dist", "index_bg.wasm"), "rb").read()
    assert table == open(os.path.join(clone, "build", "table.bin"), "rb").read() and table[:3] == b"EMT"
    # The entry imports exactly the three modules.
    imports = sorted(re.findall(rb'(?:from|import)\s*"\./([^"]+)"', js))
    assert imports == sorted(n.encode() for n in named.values()), imports
    # wrangler's "Total Upload" is every module it uploads, raw, and gzip of
    # them all in one (node's zlib, as wrangler counts): exactly these four.
    both = b"".join([wasm, table, page, js])
    gz = subprocess.run(["node", "-e", "let d=[];process.stdin.on('data',c=>d.push(c)).on('end',()=>"
                         "console.log(require('zlib').gzipSync(Buffer.concat(d)).length))"],
                        input=both, capture_output=True, timeout=60, check=True).stdout
    size = f"{len(both) / 1024:.2f} KiB / gzip: {int(gz) / 1024:.2f} KiB"
    assert f"Total Upload: {size}" in out, (size, out[-2000:])
    return js, wasm, table, page


def routes_line(clone, text):
    """1-based line of the first line of routes.toml holding `text`."""
    for n, line in enumerate(open(os.path.join(clone, "routes.toml")), 1):
        if text in line:
            return n
    raise AssertionError(f"routes.toml has no {text!r}")


def test_npm_ci_then_deploy_dry_run_with_node_alone(fresh):
    outdir = os.path.join(fresh.base, "out-shipped")
    r, took = fresh.run(f"npx wrangler deploy --dry-run --outdir {outdir}")
    out = output(r)
    assert r.returncode == 0, out
    assert fresh.tripped() == [], fresh.tripped()
    # The build's own lines, as wrangler shows them.
    shipped = tomllib.load(open(os.path.join(fresh.clone, "routes.toml"), "rb"))
    routes = len(shipped["routes"])
    hosts = sum(len(r.get("hosts", [])) for r in shipped["routes"].values())
    assert f"[custom build] routes.toml: {routes} routes, {hosts} host names; table.bin" in out, out
    assert re.search(r"\[custom build\] build/: index.js, index_bg.wasm \(from dist/\), table.bin, page.html in [\d.]+ s", out), out
    _, _, table, page = assert_uploads_the_planner_and_the_table(fresh.clone, outdir, out)
    assert b"mirror.example.com" in table and b"registry-1.docker.io" in table
    assert b"docker pull mirror.example.com/busybox" in page
    print(f"npx wrangler deploy --dry-run with Node alone, shipped table: {took:.1f} s")
    assert took < 30, f"the deploy build took {took:.0f} s"


def test_a_table_mistake_stops_the_build_with_its_line(fresh):
    shipped = open(os.path.join(fresh.clone, "routes.toml")).read()
    try:
        line = routes_line(fresh.clone, 'upstream = "https://ghcr.io"')
        fresh.write("routes.toml", shipped.replace('upstream = "https://ghcr.io"', 'upstream = "http://ghcr.io"'))
        r, _ = fresh.run(f"npx wrangler deploy --dry-run --outdir {fresh.base}/out-bad")
        out = output(r)
        assert r.returncode != 0, out
        want = (f'error: routes.toml:{line}: upstream "http://ghcr.io" uses plain http; use https, or set insecure = true '
                "in this route if that is intended (local test upstreams)")
        assert f"[custom build] {want}" in out, out
        # The same line from the build alone, and nothing else on stderr.
        r, _ = fresh.run("node scripts/build.mjs")
        assert r.returncode == 1 and r.stderr.strip() == want and r.stdout == "", output(r)
        assert fresh.tripped() == []
    finally:
        fresh.write("routes.toml", shipped)


TABLE = """# A deployment's own table (ROUTES=my-routes.toml): the e2e registry.
domain = "fresh.test"

[routes.hub]
hosts = ["{{domain}}"]
prefix = "docker.io"
upstream = "http://FRONT"
realm = "http://TOKEN/token"
service = "test-registry"
library = true
default = true
insecure = true
{extra}"""

ADDED = """
# Added after the first deploy: the same registry by another prefix.
[routes.team]
hosts = ["{domain}"]
prefix = "team.example"
registry = "team.example"
upstream = "http://FRONT"
realm = "http://TOKEN/token"
service = "test-registry"
insecure = true
"""


def sha(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def test_a_table_edit_rebuilds_in_seconds_and_a_real_client_pulls_the_new_route(stack, fresh, tmp_path):
    table = lambda extra: TABLE.replace("FRONT", FRONT).replace("TOKEN", TOKEN).format(extra=extra)
    fresh.write("my-routes.toml", table(""))
    r, first = fresh.run(f"npx wrangler deploy --dry-run --outdir {fresh.base}/out-first", env={"ROUTES": "my-routes.toml"})
    assert r.returncode == 0, output(r)
    assert "[custom build] my-routes.toml: 1 routes, 1 host names" in output(r), output(r)
    fresh.write("my-routes.toml", table(ADDED.replace("FRONT", FRONT).replace("TOKEN", TOKEN)))
    r, second = fresh.run(f"npx wrangler deploy --dry-run --outdir {fresh.base}/out-second", env={"ROUTES": "my-routes.toml"})
    out = output(r)
    assert r.returncode == 0, out
    _, _, t, _ = assert_uploads_the_planner_and_the_table(fresh.clone, f"{fresh.base}/out-second", out)
    assert b"team.example" in t
    print(f"dry runs with a table of its own: {first:.1f} s, after an edit {second:.1f} s")
    assert second < 10, f"the rebuild after a table edit took {second:.0f} s"

    # The rebuilt worker, served by the clone's own scripts/dev.sh (the
    # deploy build, no Rust), pulls through the added route's prefix with a
    # real client; the first route still answers.
    server = devstack.DevServer(str(tmp_path), "my-routes.toml", DEV_IP, DEV_PORT, root=fresh.clone,
                                base_env=fresh.env, timeout=120)
    try:
        hosts = devstack.hosts_file(str(tmp_path / "hosts"), DEV_IP, ["fresh.test"])
        for ref, key in ((f"fresh.test:{DEV_PORT}/team.example/team/app:2", "team/app:2"),
                         (f"fresh.test:{DEV_PORT}/multilayer:1.0", "library/multilayer:1.0")):
            out_dir = tmp_path / key.replace("/", "_").replace(":", "_")
            r = devstack.run(in_ns(hosts, ["skopeo", "copy", "--quiet", "--src-cert-dir", server.tls_dir,
                                           f"docker://{ref}", f"dir:{out_dir}"]))
            assert r.returncode == 0, r.stderr + server.output()[-3000:]
            assert sha((out_dir / "manifest.json").read_bytes()) == stack.digests[key]
            for layer in stack.layers[key]:
                assert sha((out_dir / layer.split(":")[1]).read_bytes()) == layer
    finally:
        server.stop()
    assert fresh.tripped() == [], fresh.tripped()


def test_a_first_deploy_on_workers_dev_reaches_every_route_by_prefix(fresh, tmp_path):
    """The shipped table served as a button deploy serves it before a custom
    domain is attached: on a host it does not name. There is no internet
    here, so each request ends at the upstream the route names, which its
    error says."""
    import http.client
    import json
    server = devstack.DevServer(str(tmp_path), "routes.toml", DEV_IP, DEV_PORT + 1, args=["--http"], root=fresh.clone,
                                base_env=fresh.env, timeout=120)
    try:
        host = "edge-mirror.someone.workers.dev"
        for path, upstream in (("/v2/ghcr.io/owner/image/manifests/1", "https://ghcr.io"),
                               ("/v2/quay.io/org/app/manifests/1", "https://quay.io"),
                               ("/v2/registry.k8s.io/pause/manifests/3.9", "https://registry.k8s.io"),
                               ("/v2/busybox/manifests/latest", "https://registry-1.docker.io")):
            c = http.client.HTTPConnection(DEV_IP, DEV_PORT + 1, timeout=60)
            c.request("GET", path, headers={"Host": host, "Authorization": "Bearer x"})
            resp = c.getresponse()
            body = json.loads(resp.read())
            c.close()
            assert resp.status in (502, 503, 504), (path, resp.status, body)
            assert upstream in body["errors"][0]["message"], (path, body)
        c = http.client.HTTPConnection(DEV_IP, DEV_PORT + 1, timeout=60)
        c.request("GET", "/v2/", headers={"Host": host})
        resp = c.getresponse()
        resp.read()
        assert resp.getheader("www-authenticate") == f'Bearer realm="http://{host}/token",service="registry.docker.io"'
    finally:
        server.stop()


def test_building_from_source_without_rust_names_what_is_missing_in_one_line(fresh):
    # Without the tripwires: no rustup at all, as on a machine with Node only.
    path = os.pathsep.join(fresh.env["PATH"].split(os.pathsep)[1:])
    r, _ = fresh.run("bash scripts/build-worker.sh --from-source", env={"EDGE_NO_INSTALL": "1", "PATH": path})
    line = ("[setup] missing: rustup, which this project needs and does not install; install it (https://rustup.rs), "
            "then run the command again")
    assert r.returncode != 0 and output(r).splitlines() == [line], output(r)
    assert fresh.tripped() == []


# --- the deploy workflow ---

WORKFLOW = os.path.join(ROOT, ".github", "workflows", "deploy.yml")
KNOWN_ACTIONS = {"actions/checkout"}
EXPR_RE = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")


def evaluate(expr, secrets, variables):
    """The expressions the workflow uses: secrets.X, vars.X, vars.X || 'y'."""
    m = re.fullmatch(r"(secrets|vars)\.([A-Z_]+)(?:\s*\|\|\s*'([^']*)')?", expr)
    assert m, f"the workflow uses an expression this test does not evaluate: {expr}"
    value = (secrets if m.group(1) == "secrets" else variables).get(m.group(2), "")
    return value or (m.group(3) or "")


def condition(expr, variables):
    if expr is None:
        return True
    m = re.fullmatch(r"(?:\$\{\{\s*)?vars\.([A-Z_]+) != ''(?:\s*\}\})?", str(expr).strip())
    assert m, f"the workflow uses a condition this test does not evaluate: {expr}"
    return variables.get(m.group(1), "") != ""


def workflow_steps():
    with open(WORKFLOW) as f:
        wf = yaml.safe_load(f)
    on = wf.get("on", wf.get(True))  # YAML 1.1 reads `on` as true
    assert "routes.toml" in on["push"]["paths"] and "workflow_dispatch" in on, on
    [job] = wf["jobs"].values()
    return job["steps"]


@pytest.fixture
def check_server(stack, tmp_path):
    """A mirror for the workflow's check step to walk: scripts/dev.sh with
    the e2e table on CHECK_IP (whose certificate names that address)."""
    server = devstack.DevServer(str(tmp_path), "tests/e2e/routes.e2e.toml", CHECK_IP, CHECK_PORT)
    try:
        yield server
    finally:
        server.stop()


def run_steps(clone, env, steps, outdir, secrets, variables, extra_env=None):
    """Runs the `run:` steps as GitHub would (bash -eo pipefail, the step's
    env with secrets and vars filled in, its `if:`), each `wrangler deploy`
    as a dry run into outdir; returns [(name, seconds, output)] of the steps
    run. Fails on a step naming a script the clone lacks, an action this
    test cannot stand in for, or an action not pinned to a commit."""
    ran = []
    for i, step in enumerate(steps):
        name = step.get("name") or step.get("uses") or f"step {i}"
        if "uses" in step:
            action, _, ref = step["uses"].partition("@")
            assert action in KNOWN_ACTIONS, f"{name}: this test does not know what {action} does"
            assert re.fullmatch(r"[0-9a-f]{40}", ref), f"{name}: pin the action to a commit, not {ref!r}"
            continue  # checkout: the clone itself
        if not condition(step.get("if"), variables):
            continue
        script = step["run"]
        for named in re.findall(r"(?<![\w/.-])((?:scripts|\.ci|tests)/[\w./-]+)", script):
            assert os.path.exists(os.path.join(clone, named)), f"step {name!r} runs {named}, which does not exist"
        script = re.sub(r"\bwrangler deploy\b", f"wrangler deploy --dry-run --outdir {outdir}", script)
        step_env = {k: EXPR_RE.sub(lambda m: evaluate(m.group(1), secrets, variables), str(v))
                    for k, v in (step.get("env") or {}).items()}
        t = time.monotonic()
        r = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script], cwd=clone,
                           env=dict(env, **step_env, **(extra_env or {})), capture_output=True, text=True, timeout=1800)
        assert r.returncode == 0, f"step {name!r} failed:\n{output(r)[-4000:]}"
        ran.append((name, round(time.monotonic() - t, 1), output(r)))
    return ran


def test_the_deploy_workflow_runs_step_by_step_in_a_fresh_clone_without_rust(tmp_path_factory, check_server):
    f = Fresh(str(tmp_path_factory.mktemp("workflow")))
    f.reclone()  # actions/checkout
    outdir = os.path.join(f.base, "out-workflow")
    steps = workflow_steps()
    assert sum(bool(re.search(r"\bwrangler deploy\b", s.get("run", ""))) for s in steps) == 1, "exactly one step deploys"
    secrets = {"CLOUDFLARE_API_TOKEN": "not-used-by-a-dry-run"}  # CLOUDFLARE_ACCOUNT_ID not set: empty
    # The check step walks a pull through a dev server of the e2e table
    # (reached by address; its CA trusted through SSL_CERT_FILE).
    variables = {"CHECK_URL": f"https://{CHECK_IP}:{CHECK_PORT}", "CHECK_IMAGE": "multilayer:1.0"}
    ran = run_steps(f.clone, f.env, steps, outdir, secrets, variables, {"SSL_CERT_FILE": check_server.ca})
    names = [n for n, _, _ in ran]
    assert names == ["Install the pinned tools", "Deploy", "Check a pull through the mirror"], names
    _, _, table, _ = assert_uploads_the_planner_and_the_table(f.clone, outdir, ran[1][2])
    assert b"mirror.example.com" in table, "built with the shipped routes.toml"
    assert re.search(r"^OK: the pull would succeed", ran[2][2], re.M), ran[2][2]
    assert f.tripped() == [], f.tripped()
    print("workflow steps (s):", [(n, s) for n, s, _ in ran])
    # Without CHECK_URL (the variable not set), the check step is skipped.
    assert [n for n, _, _ in run_steps(f.clone, f.env, [steps[-1]], outdir, secrets, {})] == []


def test_a_step_naming_a_missing_script_fails_the_workflow_test(tmp_path):
    steps = [{"name": "install", "run": "true"}, {"name": "build", "run": "bash scripts/setup.sh\nbash scripts/nope.sh"}]
    with pytest.raises(AssertionError, match=r"step 'build' runs scripts/nope.sh, which does not exist"):
        run_steps(ROOT, dict(os.environ), steps, str(tmp_path), {}, {})
    with pytest.raises(AssertionError, match="pin the action to a commit"):
        run_steps(ROOT, dict(os.environ), [{"uses": "actions/checkout@v4"}], str(tmp_path), {}, {})


# --- byte for byte, from a clone elsewhere ---

def test_a_from_source_build_in_another_folder_reproduces_dist(tmp_path):
    """The committed planner and compiler, rebuilt from the sources in a
    clone at another path, with another cargo home and target folder: the
    same bytes (`scripts/build-worker.sh --check`). The toolchains and the
    downloaded crates are this machine's (nothing is downloaded); their
    paths are remapped in the build like the clone's."""
    clone = str(tmp_path / "somewhere" / "else" / "edge-mirror")
    r = subprocess.run(["git", "clone", "--quiet", ROOT, clone], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    machine_home = os.environ.get("CARGO_HOME") or os.path.expanduser("~/.cargo")
    cargo_home = str(tmp_path / "another-cargo-home")
    os.makedirs(os.path.join(cargo_home, "bin"))
    os.symlink(os.path.join(machine_home, "registry"), os.path.join(cargo_home, "registry"))
    rustup = os.path.realpath(shutil.which("rustup") or os.path.join(machine_home, "bin", "rustup"))
    for name in ("cargo", "rustc", "rustdoc", "rustup", "cargo-clippy", "clippy-driver"):
        os.symlink(rustup, os.path.join(cargo_home, "bin", name))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CARGO", "RUSTUP_TOOLCHAIN"))}
    env.update(CARGO_HOME=cargo_home, CARGO_TARGET_DIR=str(tmp_path / "target"),
               RUSTUP_HOME=os.environ.get("RUSTUP_HOME") or os.path.expanduser("~/.rustup"),
               PATH=os.pathsep.join([os.path.join(cargo_home, "bin")] +
                                    [d for d in os.environ["PATH"].split(os.pathsep) if not d.rstrip("/").endswith(".cargo/bin")]))
    t = time.monotonic()
    r = subprocess.run(["bash", "scripts/build-worker.sh", "--check"], cwd=clone, env=env, capture_output=True, text=True,
                       timeout=1800)
    assert r.returncode == 0, output(r)[-4000:]
    assert "dist/ is what the sources build (index.js, index_bg.wasm, route-table.wasm)" in r.stdout, output(r)
    print(f"from-source build in {clone}: the same bytes as dist/ ({time.monotonic() - t:.0f} s)")
