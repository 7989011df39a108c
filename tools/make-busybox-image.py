#!/usr/bin/env python3
"""Writes a small OCI image layout: one gzip'd layer holding Debian's static busybox
(/bin/busybox from busybox-static) with links for its common applets, and /etc/motd; the config
runs `sh` with PATH=/bin. Used by the demo (tools/setup-and-run) and the images benchmark.

Usage: tools/make-busybox-image.py DIR TAG"""
import gzip
import hashlib
import io
import json
import os
import sys
import tarfile

APPLETS = ["sh", "cat", "echo", "grep", "wc", "cut", "sort", "uniq", "head", "tail", "ls", "uname", "true", "sleep", "env", "tr"]


def layer_tar():
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        def add(name, kind, mode, data=b"", link=""):
            info = tarfile.TarInfo(name)
            info.type, info.mode, info.mtime, info.uid, info.gid = kind, mode, 0, 0, 0
            info.size, info.linkname = len(data), link
            tar.addfile(info, io.BytesIO(data) if data else None)
        for directory, mode in (("bin", 0o755), ("etc", 0o755), ("tmp", 0o1777)):
            add(directory, tarfile.DIRTYPE, mode)
        with open("/bin/busybox", "rb") as busybox:
            add("bin/busybox", tarfile.REGTYPE, 0o755, busybox.read())
        for applet in APPLETS:
            add("bin/" + applet, tarfile.SYMTYPE, 0o777, link="busybox")
        add("etc/motd", tarfile.REGTYPE, 0o644, b"hello from a container image stored in Strata\n")
    return buffer.getvalue()


def main():
    directory, tag = sys.argv[1], sys.argv[2]
    blobs = os.path.join(directory, "blobs", "sha256")
    os.makedirs(blobs, exist_ok=True)

    def store(data):
        digest = hashlib.sha256(data).hexdigest()
        with open(os.path.join(blobs, digest), "wb") as file:
            file.write(data)
        return {"digest": "sha256:" + digest, "size": len(data)}

    tar = layer_tar()
    layer = store(gzip.compress(tar, mtime=0))
    config = store(json.dumps({
        "architecture": "amd64", "os": "linux",
        "config": {"Env": ["PATH=/bin"], "Cmd": ["sh"], "WorkingDir": "/"},
        "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(tar).hexdigest()]},
    }, sort_keys=True).encode())
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **config},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", **layer}],
    }, sort_keys=True).encode()
    stored = store(manifest)
    with open(os.path.join(directory, "index.json"), "w") as file:
        json.dump({"schemaVersion": 2, "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json", **stored,
            "annotations": {"org.opencontainers.image.ref.name": tag}}]}, file)
    with open(os.path.join(directory, "oci-layout"), "w") as file:
        json.dump({"imageLayoutVersion": "1.0.0"}, file)
    print(stored["digest"])


if __name__ == "__main__":
    main()
