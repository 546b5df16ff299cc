"""Deterministic test images, written in skopeo's `dir:` layout and pushed to
the registry with skopeo (no Docker engine needed to make them).

Each image is a Docker schema 2 manifest with gzip layers holding small files;
layer contents derive from the image name, so digests are stable per run.
"""

import gzip
import hashlib
import io
import json
import os
import subprocess
import tarfile


def _tar(files):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as t:
        for name, data in files:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = 1700000000
            info.mode = 0o644
            t.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def sha(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def build(outdir, name, layers=3, layer_bytes=64 * 1024):
    """Writes image `name` into `outdir`; returns (manifest digest, manifest bytes, layer digests)."""
    os.makedirs(outdir, exist_ok=True)
    blobs, diff_ids, descs = {}, [], []
    for i in range(layers):
        seed = hashlib.sha256(f"{name}/{i}".encode()).digest()
        # Incompressible-ish content so layer sizes are real.
        body = b"".join(hashlib.sha256(seed + n.to_bytes(4, "big")).digest() for n in range(layer_bytes // 32))
        raw = _tar([(f"layer{i}/data.bin", body), (f"layer{i}/name.txt", f"{name} layer {i}\n".encode())])
        gz = gzip.compress(raw, mtime=0)
        diff_ids.append(sha(raw))
        blobs[sha(gz)] = gz
        descs.append({"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "size": len(gz), "digest": sha(gz)})
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": {"Env": ["PATH=/"], "Cmd": ["/layer0/data.bin"], "Labels": {"test.image": name}},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
            "history": [{"created": "2023-11-14T22:13:20Z", "created_by": f"layer {i}"} for i in range(layers)],
        },
        sort_keys=True,
    ).encode()
    blobs[sha(config)] = config
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": len(config), "digest": sha(config)},
            "layers": descs,
        },
        indent=3,
    ).encode()
    for d, data in blobs.items():
        with open(os.path.join(outdir, d.split(":", 1)[1]), "wb") as f:
            f.write(data)
    with open(os.path.join(outdir, "manifest.json"), "wb") as f:
        f.write(manifest)
    with open(os.path.join(outdir, "version"), "w") as f:
        f.write("Directory Transport Version: 1.1\n")
    return sha(manifest), manifest, [d["digest"] for d in descs]


def push(srcdir, registry, ref, creds="pusher:pushpw"):
    subprocess.run(
        ["skopeo", "copy", "--quiet", "--dest-tls-verify=false", "--dest-creds", creds,
         f"dir:{srcdir}", f"docker://{registry}/{ref}"],
        check=True,
        capture_output=True,
        timeout=120,
    )
