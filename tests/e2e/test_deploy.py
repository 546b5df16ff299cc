"""From a fresh clone to a deploy, the way README "Deploying" says: `npm
ci`, then `npx wrangler deploy` (here `--dry-run --outdir`, which builds and
writes what would be uploaded, offline), whose build command
(scripts/build-worker.sh) installs the pinned tools it lacks first; and the
deploy workflow (.github/workflows/deploy.yml), its `run:` steps in order.

The fresh clone is `git clone` of this checkout (its HEAD) into a temporary
directory. It gets a CARGO_HOME of its own whose bin/ holds rustup's proxies
(cargo, rustc, rustup, ...) and no wasm-bindgen, and a PATH with no
wasm-bindgen on it, as on a machine with only rustup, Node.js and Python.
Three things are reused, to keep the test's cost small:
- the Rust toolchains (RUSTUP_HOME) and the downloaded crates (the
  CARGO_HOME's registry/ is the machine's), so nothing is downloaded;
- the npm cache, so `npm ci` takes seconds;
- the one compile the test does not repeat, wasm-bindgen-cli (4 to 7 minutes):
  the clone's `cargo` is a wrapper that, for exactly the command setup.sh
  runs (`cargo +stable install --quiet wasm-bindgen-cli --version V`),
  records the command line and puts the wasm-bindgen V this machine already
  has into the clone's CARGO_HOME/bin, where cargo install would; every
  other command goes to rustup's cargo. So the path is proven (the build
  notices the missing tool, setup.sh installs the version Cargo.lock pins
  where the build then finds it, and later builds install nothing), not the
  download; setup.sh --test's own install on a new machine proves that.

All clones share one CARGO_TARGET_DIR and one path, so the build's flags
(which name the clone's path) stay the same and std is compiled once.
"""

import os
import re
import shutil
import subprocess
import sys
import time
import tomllib

import pytest
import yaml

import devstack

ROOT = devstack.ROOT
WANT_WB = re.search(r'name = "wasm-bindgen"\nversion = "([^"]+)"', open(os.path.join(ROOT, "Cargo.lock")).read()).group(1)
PROXIES = ["cargo", "rustc", "rustdoc", "rustup", "cargo-clippy", "clippy-driver"]
INSTALL_CMD = f"+stable install --quiet wasm-bindgen-cli --version {WANT_WB}"
CHECK_IP, CHECK_PORT = "127.0.0.52", 8443

WRAPPER = """#!/usr/bin/env bash
# Written by tests/e2e/test_deploy.py: cargo, except that installing
# wasm-bindgen-cli reuses the machine's build of it (see the test's docstring).
if [ "$1 $2" = "+stable install" ] && [[ " $* " == *" wasm-bindgen-cli "* ]]; then
  printf '%s\\n' "$*" >> "$CARGO_HOME/installs.log"
  want=""
  while [ $# -gt 0 ]; do [ "$1" = --version ] && want=$2; shift; done
  if [ "$("REUSE" --version)" != "wasm-bindgen $want" ]; then
    echo "test wrapper: no wasm-bindgen $want to reuse" >&2
    exit 101
  fi
  mkdir -p "$CARGO_HOME/bin" && install -m 755 "REUSE" "$CARGO_HOME/bin/wasm-bindgen"
  exit 0
fi
exec "PROXY" "$@"
"""


def machine_wasm_bindgen():
    home = os.environ.get("CARGO_HOME") or os.path.expanduser("~/.cargo")
    path = shutil.which("wasm-bindgen") or os.path.join(home, "bin", "wasm-bindgen")
    return os.path.realpath(path)


class Fresh:
    """Paths and environment of the fresh-clone runs."""

    def __init__(self, base):
        self.base = base
        self.clone = os.path.join(base, "clone")
        self.cargo_home = os.path.join(base, "cargo-home")
        self.target = os.path.join(base, "target")
        self.installs = os.path.join(self.cargo_home, "installs.log")
        rustup = os.path.realpath(shutil.which("rustup") or os.path.expanduser("~/.cargo/bin/rustup"))
        bindir = os.path.join(self.cargo_home, "bin")
        proxy_dir = os.path.join(base, "rustup-proxy")
        os.makedirs(bindir)
        os.makedirs(proxy_dir)
        for name in PROXIES:
            if name != "cargo":
                os.symlink(rustup, os.path.join(bindir, name))
        os.symlink(rustup, os.path.join(proxy_dir, "cargo"))
        with open(os.path.join(bindir, "cargo"), "w") as f:
            f.write(WRAPPER.replace("REUSE", machine_wasm_bindgen()).replace("PROXY", os.path.join(proxy_dir, "cargo")))
        os.chmod(os.path.join(bindir, "cargo"), 0o755)
        machine_home = os.environ.get("CARGO_HOME") or os.path.expanduser("~/.cargo")
        os.symlink(os.path.join(machine_home, "registry"), os.path.join(self.cargo_home, "registry"))
        # No directory of PATH holds wasm-bindgen or a cargo home's bin.
        path = [d for d in os.environ["PATH"].split(os.pathsep)
                if d and not os.path.exists(os.path.join(d, "wasm-bindgen")) and not d.rstrip("/").endswith("/.cargo/bin")]
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("CARGO", "RUSTUP_TOOLCHAIN", "WASM_BINDGEN"))}
        self.env.update(PATH=os.pathsep.join(path), CARGO_HOME=self.cargo_home, CARGO_TARGET_DIR=self.target,
                        RUSTUP_HOME=os.environ.get("RUSTUP_HOME") or os.path.expanduser("~/.rustup"),
                        WRANGLER_SEND_METRICS="false", CI="true", NO_UPDATE_NOTIFIER="1",
                        XDG_CONFIG_HOME=os.path.join(base, "xdg"))
        self.env.pop("ROUTES", None)
        self.env.pop("EDGE_NO_INSTALL", None)
        assert shutil.which("wasm-bindgen", path=self.env["PATH"]) is None

    def reclone(self):
        shutil.rmtree(self.clone, ignore_errors=True)
        r = subprocess.run(["git", "clone", "--quiet", ROOT, self.clone], capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr
        assert not os.path.exists(os.path.join(self.clone, "node_modules"))

    def run(self, cmd, env=None, timeout=1800, **kw):
        """A shell command in the clone; returns (CompletedProcess, seconds)."""
        t = time.monotonic()
        r = subprocess.run(["bash", "-c", cmd], cwd=self.clone, env=dict(self.env, **(env or {})), capture_output=True,
                           text=True, timeout=timeout, **kw)
        return r, time.monotonic() - t

    def install_log(self):
        if not os.path.exists(self.installs):
            return []
        return open(self.installs).read().splitlines()


@pytest.fixture(scope="module")
def fresh(tmp_path_factory):
    return Fresh(str(tmp_path_factory.mktemp("fresh")))


def output(r):
    return r.stdout + r.stderr


def assert_uploads_exactly_the_entry_and_the_wasm(clone, outdir, out):
    """The dry run's output directory and wrangler's own upload figure: the
    bundled entry and the wasm, nothing else (wrangler also writes a README
    note and a source map, which it does not upload)."""
    files = sorted(os.listdir(outdir))
    wasm = [f for f in files if f.endswith(".wasm")]
    assert len(wasm) == 1 and wasm[0].endswith("-index_bg.wasm"), files
    assert sorted(set(files) - {wasm[0]}) == ["README.md", "index.js", "index.js.map"], files
    wasm_bytes = open(os.path.join(outdir, wasm[0]), "rb").read()
    assert wasm_bytes == open(os.path.join(clone, "build", "index_bg.wasm"), "rb").read()
    js = open(os.path.join(outdir, "index.js"), "rb").read()
    # The entry imports the wasm and nothing else.
    assert re.findall(rb'(?:from|import)\s*"([^"]+)"', js) == [b"./" + wasm[0].encode()], re.findall(rb'from\s*"[^"]*"', js)
    # wrangler's "Total Upload" is the size of every module it uploads (the
    # wasm, then the entry), raw and gzip (node's zlib, as wrangler counts):
    # exactly these two files.
    both = wasm_bytes + js
    gz = subprocess.run(["node", "-e", "let d=[];process.stdin.on('data',c=>d.push(c)).on('end',()=>"
                         "console.log(require('zlib').gzipSync(Buffer.concat(d)).length))"],
                        input=both, capture_output=True, timeout=60, check=True).stdout
    size = f"{len(both) / 1024:.2f} KiB / gzip: {int(gz) / 1024:.2f} KiB"
    assert f"Total Upload: {size}" in out, (size, out[-2000:])
    return js, wasm_bytes


TABLE = """# A deployment's own table (ROUTES=my-routes.toml).
domain = "{domain}"

[routes.hub]
hosts = ["{{domain}}"]
upstream = "https://registry.{domain}"
realm = "https://auth.{domain}/token"
service = "registry.{domain}"
library = true
default = true
"""


def test_without_installing_the_build_names_what_is_missing_in_one_line(fresh):
    fresh.reclone()
    r, _ = fresh.run("npm ci --no-audit --no-fund --loglevel=error")
    assert r.returncode == 0, output(r)
    line = f"[setup] missing: wasm-bindgen-cli {WANT_WB}; install with: bash scripts/setup.sh"
    # The build command alone: exactly that one line, and a non-zero exit.
    r, _ = fresh.run("bash scripts/build-worker.sh", env={"EDGE_NO_INSTALL": "1"})
    assert r.returncode != 0 and output(r).splitlines() == [line], output(r)
    # Through wrangler, as a user meets it.
    r, _ = fresh.run("npx wrangler deploy --dry-run --outdir ../out-noinstall", env={"EDGE_NO_INSTALL": "1"})
    assert r.returncode != 0, output(r)
    assert f"[custom build] {line}" in output(r), output(r)
    assert fresh.install_log() == [] and not os.path.exists(os.path.join(fresh.cargo_home, "bin", "wasm-bindgen"))
    assert not os.path.exists(os.path.join(fresh.target, "wasm32-unknown-unknown")), "nothing was compiled"


def test_first_dry_run_installs_what_is_missing_then_a_table_edit_rebuilds_in_under_a_minute(fresh):
    fresh.reclone()
    r, _ = fresh.run("npm ci --no-audit --no-fund --loglevel=error")
    assert r.returncode == 0, output(r)
    table = os.path.join(fresh.clone, "my-routes.toml")
    with open(table, "w") as f:
        f.write(TABLE.format(domain="first.example"))
    outdir = os.path.join(fresh.base, "out-first")
    r, first = fresh.run(f"npx wrangler deploy --dry-run --outdir {outdir}", env={"ROUTES": "my-routes.toml"})
    out = output(r)
    assert r.returncode == 0, out
    # One line per install step, then the build.
    assert f"[custom build] [setup] installing what the build needs, once: wasm-bindgen-cli {WANT_WB}" in out, out
    assert (f"[custom build] [setup] installing wasm-bindgen-cli {WANT_WB} (cargo install, 4 to 7 minutes on 2 cores)"
            in out), out
    assert re.search(r"\[custom build\] \[setup\] ready \(installed in \d+ s\)", out), out
    assert fresh.install_log() == [INSTALL_CMD]
    assert os.access(os.path.join(fresh.cargo_home, "bin", "wasm-bindgen"), os.X_OK)
    js, wasm = assert_uploads_exactly_the_entry_and_the_wasm(fresh.clone, outdir, out)
    # The table given through ROUTES is the one built in: its host in the
    # entry's page, its upstream in the wasm; none of the shipped table's.
    assert b"first.example" in js and b"mirror.example.com" not in js
    assert b"registry.first.example" in wasm and b"registry-1.docker.io" not in wasm
    print(f"first dry run on a fresh clone (wasm-bindgen reused, std compiled): {first:.1f} s")

    # A table edit: the second run installs nothing and takes under a minute.
    with open(table, "w") as f:
        f.write(TABLE.format(domain="second.example"))
    outdir = os.path.join(fresh.base, "out-second")
    r, second = fresh.run(f"npx wrangler deploy --dry-run --outdir {outdir}", env={"ROUTES": "my-routes.toml"})
    out = output(r)
    assert r.returncode == 0, out
    assert "[setup]" not in out, out
    assert fresh.install_log() == [INSTALL_CMD]
    js, wasm = assert_uploads_exactly_the_entry_and_the_wasm(fresh.clone, outdir, out)
    assert b"second.example" in js and b"first.example" not in js and b"registry.second.example" in wasm
    print(f"second dry run after a table edit: {second:.1f} s")
    assert second < 60, f"the second run took {second:.0f} s"


# --- the deploy workflow ---

WORKFLOW = os.path.join(ROOT, ".github", "workflows", "deploy.yml")
KNOWN_ACTIONS = {"actions/checkout", "actions/cache"}
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
            continue  # checkout: the clone itself; cache: a cold cache, nothing restored
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


def test_the_deploy_workflow_runs_step_by_step_in_a_fresh_clone(fresh, check_server):
    fresh.reclone()  # actions/checkout
    outdir = os.path.join(fresh.base, "out-workflow")
    steps = workflow_steps()
    assert sum(bool(re.search(r"\bwrangler deploy\b", s.get("run", ""))) for s in steps) == 1, "exactly one step deploys"
    secrets = {"CLOUDFLARE_API_TOKEN": "not-used-by-a-dry-run"}  # CLOUDFLARE_ACCOUNT_ID not set: empty
    # The check step walks a pull through a dev server of the e2e table
    # (reached by address; its CA trusted through SSL_CERT_FILE).
    variables = {"CHECK_URL": f"https://{CHECK_IP}:{CHECK_PORT}", "CHECK_IMAGE": "multilayer:1.0"}
    ran = run_steps(fresh.clone, fresh.env, steps, outdir, secrets, variables, {"SSL_CERT_FILE": check_server.ca})
    names = [n for n, _, _ in ran]
    assert names == ["Install the pinned tools", "Deploy", "Check a pull through the mirror"], names
    js, _ = assert_uploads_exactly_the_entry_and_the_wasm(fresh.clone, outdir, ran[1][2])
    assert b"mirror.example.com" in js, "built with the shipped routes.toml"
    assert re.search(r"^OK: the pull would succeed", ran[2][2], re.M), ran[2][2]
    print("workflow steps (s):", [(n, s) for n, s, _ in ran])
    # Without CHECK_URL (the variable not set), the check step is skipped.
    assert [n for n, _, _ in run_steps(fresh.clone, fresh.env, [steps[-1]], outdir, secrets, {})] == []


def test_a_step_naming_a_missing_script_fails_the_workflow_test(fresh, tmp_path):
    steps = [{"name": "install", "run": "true"}, {"name": "build", "run": "bash scripts/setup.sh\nbash scripts/nope.sh"}]
    with pytest.raises(AssertionError, match=r"step 'build' runs scripts/nope.sh, which does not exist"):
        run_steps(ROOT, fresh.env, steps, str(tmp_path), {}, {})
    with pytest.raises(AssertionError, match="pin the action to a commit"):
        run_steps(ROOT, fresh.env, [{"uses": "actions/checkout@v4"}], str(tmp_path), {}, {})
