"""Running a public mirror (issue: upstream credentials from secrets,
pull-only scopes, allow lists, rate-limit answers, request logs).

The private route (private.mirror.test) pulls with alice's account from the
Worker secret PRIVATE_CREDENTIALS, given the way wrangler dev reads secrets
(conftest writes a .dev.vars file); it serves only private/* and
library/multilayer. Every test checks the fixtures' logs; the last checks
that the secret's value appears in no byte a client received and no line the
worker logged.
"""

import base64
import json
import urllib.parse

from conftest import SECRET_NAME, SECRET_VALUE
from test_clients import assert_mirror_only, repo_digest

P = "private.mirror.test"
D = "docker.mirror.test"


def claims(token):
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def test_anonymous_pull_of_a_private_image_through_the_credentialed_route(stack, tap):
    ref = f"{P}/private/secret:1"
    # Without credentials on the route: the upstream's own refusal, unchanged.
    refused = stack.docker("pull", f"{D}/private/secret:1")
    assert refused.returncode != 0 and "pull access denied" in refused.stderr, refused.stderr
    marks = stack.marks()
    r = stack.docker("pull", ref)
    assert r.returncode == 0, r.stdout + r.stderr
    assert stack.digests["private/secret:1"] in repo_digest(stack, ref)
    stack.docker("rmi", "-f", ref)
    assert_mirror_only(tap)
    got = stack.since(marks)
    # The issuer saw the account on the mirror's token requests, and granted pull only.
    assert got["token"] and all(e.get("user") == "alice" for e in got["token"]), got["token"]
    assert all(s.endswith(":pull") for e in got["token"] for s in e["scopes"])
    # The client itself sent no credentials.
    assert not any(h for _, _, hs in tap.requests for k, h in hs if k == "authorization" and h.startswith("Basic"))


def test_tokens_from_the_mirror_carry_only_pull(stack):
    q = urllib.parse.urlencode([("service", "test-registry"), ("scope", "repository:private/secret:pull,push,delete"),
                                ("scope", "repository:private/other:*")])
    marks = stack.marks()
    s, _, body = stack.request("GET", P, "/token?" + q)
    assert s == 200
    access = claims(json.loads(body)["token"])["access"]
    assert access == [{"type": "repository", "name": "private/secret", "actions": ["pull"]}], access
    [e] = stack.since(marks)["token"]
    assert e["user"] == "alice" and e["scopes"] == ["repository:private/secret:pull"]


def test_push_through_the_credentialed_route_fails_and_no_push_scope_reaches_the_issuer(stack):
    src = f"{P}/private/secret:1"
    r = stack.docker("pull", src)
    assert r.returncode == 0, r.stderr
    dst = f"{P}/private/pushed:1"
    assert stack.docker("tag", src, dst).returncode == 0
    marks = stack.marks()
    push = stack.docker("push", dst)
    assert push.returncode != 0, push.stdout
    got = stack.since(marks)
    assert not any("push" in s.split(":")[-1] for e in got["token"] for s in e["scopes"]), got["token"]
    assert not any(e["method"] in ("POST", "PUT", "PATCH") for e in got["front"]), got["front"]
    stack.docker("rmi", "-f", src, dst)


def test_repositories_outside_allow_are_refused_before_any_subrequest(stack):
    cases = [
        ("GET", "/v2/team/app/manifests/2", "team/app"),
        ("HEAD", "/v2/library/other/manifests/1", "library/other"),
        ("GET", "/v2/_catalog", "_catalog"),
        ("GET", "/token?service=test-registry&scope=repository:team/app:pull", "team/app"),
    ]
    for method, path, name in cases:
        marks = stack.marks()
        s, _, body = stack.request(method, P, path)
        assert s == 403, (path, body)
        if method != "HEAD":
            err = json.loads(body)["errors"][0]
            assert err["code"] == "DENIED" and err["message"].endswith(": " + name), err
        assert stack.since(marks) == {"front": [], "token": [], "cdn": []}, path
    # A token request with one scope inside and one outside gets only the inside one.
    marks = stack.marks()
    q = "service=test-registry&scope=repository:team/app:pull&scope=repository:library/multilayer:pull"
    s, _, _ = stack.request("GET", P, "/token?" + q)
    assert s == 200
    assert stack.since(marks)["token"][0]["scopes"] == ["repository:library/multilayer:pull"]


def test_a_secret_that_is_not_set_is_a_503_naming_it(stack):
    marks = stack.marks()
    s, _, body = stack.request("GET", "unset.mirror.test", "/token?service=test-registry&scope=repository:private/secret:pull")
    assert s == 503
    err = json.loads(body)["errors"][0]
    assert err["code"] == "UNAVAILABLE" and err["message"].endswith(": UNSET_CREDENTIALS") and "wrangler secret put" in err["message"]
    assert stack.since(marks)["token"] == [], "no anonymous fallback"


def test_rate_limits_say_which_limit_and_keep_the_upstreams_answer(stack):
    s, h, body = stack.request("GET", D, "/v2/fault/ratelimit/manifests/x")
    h = {k.lower(): v for k, v in h}
    assert s == 429 and h["retry-after"] == "21600" and h["ratelimit-remaining"] == "0;w=21600"
    errors = json.loads(body)["errors"]
    assert errors[0]["code"] == "TOOMANYREQUESTS" and "pull rate limit" in errors[0]["message"]
    assert "credentials secret" in errors[0]["message"]
    assert errors[1]["message"].startswith("You have reached your unauthenticated pull rate limit"), errors
    s, h, body = stack.request("GET", D, "/v2/fault/abuse/manifests/x")
    h = {k.lower(): v for k, v in h}
    assert s == 429 and h["retry-after"] == "30" and h["content-type"] == "application/json"
    [err] = json.loads(body)["errors"]
    assert "limiting requests from this mirror's address" in err["message"] and err["detail"] == "Too Many Requests\n"


def test_repository_prefix_maps_names_both_ways(stack):
    # repo.mirror.test/app is team/app upstream (seed 001's REPO_PREFIX).
    r = stack.docker("pull", "repo.mirror.test/app:2")
    assert r.returncode == 0, r.stdout + r.stderr
    assert stack.digests["team/app:2"] in repo_digest(stack, "repo.mirror.test/app:2")
    stack.docker("rmi", "-f", "repo.mirror.test/app:2")


def test_the_secret_reaches_no_client_byte_and_no_log_line(stack, tap):
    # Exercise the credentialed route once more under the tap.
    r = stack.docker("pull", f"{P}/private/secret:1")
    assert r.returncode == 0, r.stderr
    stack.docker("rmi", "-f", f"{P}/private/secret:1")
    s, _, _ = stack.request("GET", P, "/token?service=test-registry&scope=repository:private/secret:pull")
    assert s == 200
    tap.stop()
    user, password = SECRET_VALUE.split(":", 1)
    forms = [password.encode(), base64.b64encode(SECRET_VALUE.encode()), urllib.parse.quote(SECRET_VALUE).encode()]
    assert tap.raw, "the tap captured the exchange"
    for form in forms:
        assert form not in tap.raw, f"{form!r} reached a client"
    lines = stack.worker_log()
    assert lines, "the worker logged its requests (log = true)"
    assert any(l["route"] == "private" and l["kind"] == "token" for l in lines), lines[-5:]
    logged = stack.wrangler.output()
    for form in forms:
        assert form.decode() not in logged, f"{form!r} in the worker's log"
    # The secret's name is configuration, not a secret: wrangler lists the binding.
    assert SECRET_NAME in logged
