"""A Helm chart in an OCI registry, pulled through the mirror: a chart-shaped
artifact (Helm's config and layer media types, a real chart archive) pushed
to the distribution registry behind token auth with skopeo, then pulled
through the mirror by tag and by digest, by its own host and by the shared
host's prefix, with skopeo (Helm is not in Debian's packages here; Helm
pulls `oci://` references with the same registry API calls: the ping,
a token for `repository:NAME:pull`, the manifest, the two blobs), and every
byte checked against its digest."""

import hashlib
import io
import json
import os
import tarfile

import images
from conftest import REGISTRY

CONFIG_TYPE = "application/vnd.cncf.helm.config.v1+json"
CHART_TYPE = "application/vnd.cncf.helm.chart.content.v1.tar+gzip"
NAME, VERSION = "charts/hello", "0.1.0"


def sha(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def chart_dir(out):
    """skopeo's dir: layout of the chart `hello` 0.1.0 as `helm push` makes it."""
    os.makedirs(out)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as t:
        for name, data in (("hello/Chart.yaml", b"apiVersion: v2\nname: hello\nversion: 0.1.0\n"),
                           ("hello/values.yaml", b"greeting: hi\n"),
                           ("hello/templates/configmap.yaml", b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: hello\n"
                                                               b"data:\n  greeting: {{ .Values.greeting }}\n")):
            info = tarfile.TarInfo(name)
            info.size, info.mtime = len(data), 0
            t.addfile(info, io.BytesIO(data))
    chart = buf.getvalue()
    config = json.dumps({"name": "hello", "version": VERSION, "apiVersion": "v2"}).encode()
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": CONFIG_TYPE, "digest": sha(config), "size": len(config)},
        "layers": [{"mediaType": CHART_TYPE, "digest": sha(chart), "size": len(chart),
                    "annotations": {"org.opencontainers.image.title": "hello-0.1.0.tgz"}}],
    }).encode()
    for data in (config, chart):
        with open(os.path.join(out, sha(data).split(":")[1]), "wb") as f:
            f.write(data)
    with open(os.path.join(out, "manifest.json"), "wb") as f:
        f.write(manifest)
    with open(os.path.join(out, "version"), "w") as f:
        f.write("Directory Transport Version: 1.1\n")
    return sha(manifest), [sha(config), sha(chart)]


def test_a_helm_chart_pulls_through_the_mirror_by_tag_and_by_digest(stack, tmp_path):
    src = str(tmp_path / "chart")
    digest, blobs = chart_dir(src)
    images.push(src, REGISTRY, f"{NAME}:{VERSION}")
    refs = [f"docker.mirror.test/{NAME}:{VERSION}", f"docker.mirror.test/{NAME}@{digest}",
            f"mirror.test/docker.io/{NAME}:{VERSION}", f"mirror.test/{NAME}@{digest}"]
    for i, ref in enumerate(refs):
        out = tmp_path / f"pulled-{i}"
        r = stack.ns(["skopeo", "copy", "--quiet", "--src-tls-verify=false", f"docker://{ref}", f"dir:{out}"])
        assert r.returncode == 0, f"{ref}: {r.stderr}"
        manifest = (out / "manifest.json").read_bytes()
        assert sha(manifest) == digest, ref
        m = json.loads(manifest)
        assert m["config"]["mediaType"] == CONFIG_TYPE and [l["mediaType"] for l in m["layers"]] == [CHART_TYPE], m
        for b in blobs:
            assert sha((out / b.split(":")[1]).read_bytes()) == b, f"{ref}: {b}"
        # The chart itself, as Helm would unpack it.
        with tarfile.open(out / blobs[1].split(":")[1]) as t:
            assert t.extractfile("hello/Chart.yaml").read() == b"apiVersion: v2\nname: hello\nversion: 0.1.0\n"
    # The manifest as Helm asks for it (its Accept list) comes back intact.
    s, h, body = stack.request("GET", "docker.mirror.test", f"/v2/{NAME}/manifests/{VERSION}", {
        "Accept": "application/vnd.oci.image.manifest.v1+json",
        "Authorization": "Bearer " + token(stack)})
    assert s == 200 and sha(body) == digest
    assert dict((k.lower(), v) for k, v in h)["docker-content-digest"] == digest


def token(stack):
    s, _, body = stack.request("GET", "docker.mirror.test", f"/token?service=test-registry&scope=repository:{NAME}:pull")
    assert s == 200, body
    return json.loads(body)["token"]
