#!/usr/bin/env python3
"""`tools/bench images`: the image store, the registry and containers from images, on a local
cluster (`strata cluster up`: name node, three data nodes, the master, an agent beside each data
node and the registry), end to end.

Transfers: an image of about 200 MB that the script builds as an OCI layout (a busybox layer and
three layers of make-logs.py output, each a tar gzip'd at level 1) is pushed to the registry and
pulled back with skopeo, and pushed and pulled with `strata image push/pull` (context). The
yardsticks, in the same run: `strata dfs put` of one file holding the same bytes as all the
image's blobs one after another, and `strata dfs get` of it. Each transfer runs RUNS times, the
kinds taking turns (the yardstick and skopeo alternating which goes first), each after `sync`;
medians are compared. The pulled blobs must be the pushed ones, byte for byte. Between runs the
image is removed (`strata image rm`, which frees its blobs at once) so that every push sends
every blob. The bound skopeo itself sets, in the same run: `skopeo copy oci:LAYOUT oci:DIR` into
the pull's directory, with no registry and no network. Context, to tell the registry's part from
skopeo's and the disk's: the same pull
into tmpfs; every blob read from the registry by a client that keeps nothing; every blob
uploaded as skopeo uploads one (POST, PATCH, PUT) by a client that only reads the files; the
blobs copied into new local files, each fsync'd (what skopeo's `oci:` destination does); and
the CPU seconds of the cluster process and of the client during each transfer.

Why gzip'd layers: the registry stores and serves blobs as they are, but skopeo compresses a
layer stored uncompressed (`application/vnd.oci.image.layer.v1.tar`) on its way to a registry,
so the push would time Go's gzip and the registry would hold other bytes than the layout.
Level 1 (Python's gzip) because it is what makes the layout quickly; the level does not matter
to the registry, which never looks inside a layer.

Registry memory: one 1 GiB layer (random bytes, as a compressed layer is) pushed in one
monolithic `POST /v2/<name>/blobs/uploads/?digest=` and read back with a GET into nothing, both
streamed a MiB at a time from Python's http.client, while the cluster process's resident set
(`VmRSS`) is sampled every 50 ms. Every service of the cluster is in that process, so its growth
is an upper bound on the registry's own.

Container start: single-task jobs of `true` over a two-line file from the image
`bench/busybox:1` (its busybox layer alone), submitted one at a time to the master's HTTP API; a
job that is the first on its agent unpacks the image there and is not counted. Latency is the
master's own: the job's `submittedAtMs` to the task's `runningAtMs` (as `tools/bench jobs`).
The yardstick, in the same run: a bare `runc run` of the agent's cached root filesystem with a
configuration like the agent's, `true`, from start to exit.

Tasks run as the user running the script (root here: cgroups and runc need it), so the cluster
starts with --allow-root-tasks. Checks are reported, not enforced: the script exits 0 when a
check fails and non-zero only when the run itself breaks."""
import glob
import gzip
import hashlib
import http.client
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tarfile
import threading
import time

import benchlib
from benchlib import COMMAND_TIMEOUT_SECONDS, percentile, process_cpu_seconds, run

MIB = 1024 * 1024
# Each transfer kind runs RUNS times; medians are compared.
RUNS = int(os.environ.get("STRATA_BENCH_RUNS", "3"))
# Counted container starts (jobs that are not the first on their agent), one at a time.
LAUNCHES = int(os.environ.get("STRATA_BENCH_LAUNCHES", "30"))
# Bare runc runs for the yardstick (a first one not counted).
RUNC_RUNS = int(os.environ.get("STRATA_BENCH_RUNC_RUNS", "30"))
# The image: three layers of make-logs.py output of this many MiB each (seeds 1, 2, 3), as tars
# gzip'd at this level; with the busybox layer about 200 MB of blobs.
LOG_LAYER_MIB = 224
LOG_LAYERS = 3
GZIP_LEVEL = 1
LAYOUT_VERSION = 1
# How often the cluster process's resident set is read while a large layer moves.
RSS_SAMPLE_SECONDS = 0.05
# The bound on the registry's memory growth while a 1 GiB layer moves.
RSS_GROWTH_BOUND = 100e6
# Every command the script runs has this long to finish.
BUSYBOX_APPLETS = ["sh", "true", "false", "cat", "echo", "grep", "head", "ls", "wc"]
LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
FSYNC_COPY = "fsync'd local copy"
SKOPEO_ALONE = "skopeo, no registry"
TRANSFER_KINDS = ("dfs put", "skopeo push", "registry PATCH uploads", "strata image push", "dfs get", "skopeo pull",
                  "skopeo pull to tmpfs", SKOPEO_ALONE, "registry GET, discarded", FSYNC_COPY, "strata image pull")


def sha256_of_file(path):
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        while chunk := file.read(MIB):
            digest.update(chunk)
    return digest.hexdigest()


# The image


class HashingWriter:
    """Writes through to `target`, hashing what passes (a layer's digest and its diff id)."""

    def __init__(self, target):
        self.target = target
        self.digest = hashlib.sha256()
        self.size = 0

    def write(self, data):
        self.digest.update(data)
        self.size += len(data)
        self.target.write(data)
        return len(data)

    def flush(self):
        pass


def tar_info(name, kind, size=0, mode=0o644, link=""):
    info = tarfile.TarInfo(name)
    info.type = kind
    info.size = size
    info.mode = mode
    info.linkname = link
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    info.mtime = 0
    return info


def write_layer(blobs, add_members):
    """A gzip'd tar layer: `add_members(tar)` fills it. Returns its descriptor and diff id."""
    partial = os.path.join(blobs, "layer.partial")
    with open(partial, "wb") as raw:
        compressed = HashingWriter(raw)
        with gzip.GzipFile(filename="", mode="wb", compresslevel=GZIP_LEVEL, fileobj=compressed, mtime=0) as gz:
            uncompressed = HashingWriter(gz)
            with tarfile.open(fileobj=uncompressed, mode="w|", format=tarfile.USTAR_FORMAT) as tar:
                add_members(tar)
    hex_digest = compressed.digest.hexdigest()
    os.replace(partial, os.path.join(blobs, hex_digest))
    descriptor = {"mediaType": LAYER_GZIP, "digest": f"sha256:{hex_digest}", "size": compressed.size}
    return descriptor, f"sha256:{uncompressed.digest.hexdigest()}"


def write_blob(blobs, data):
    hex_digest = hashlib.sha256(data).hexdigest()
    with open(os.path.join(blobs, hex_digest), "wb") as file:
        file.write(data)
    return hex_digest


def write_layout(directory, layers, diff_ids, tag):
    """An OCI image layout at `directory` (its blobs already in place) holding one image of
    `layers`, tagged `tag`; returns the manifest's digest."""
    blobs = os.path.join(directory, "blobs", "sha256")
    config = json.dumps({
        "architecture": "amd64", "os": "linux",
        "config": {"Env": ["PATH=/bin"], "Cmd": ["/bin/sh"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }, separators=(",", ":")).encode()
    config_hex = write_blob(blobs, config)
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": f"sha256:{config_hex}", "size": len(config)},
        "layers": layers,
    }, separators=(",", ":")).encode()
    manifest_hex = write_blob(blobs, manifest)
    index = {"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": f"sha256:{manifest_hex}", "size": len(manifest),
        "annotations": {"org.opencontainers.image.ref.name": tag}}]}
    with open(os.path.join(directory, "index.json"), "w") as file:
        json.dump(index, file)
    with open(os.path.join(directory, "oci-layout"), "w") as file:
        file.write('{"imageLayoutVersion":"1.0.0"}')
    return f"sha256:{manifest_hex}"


def build_images(workdir, generator):
    """The bench image (`layout`, tag 1) and the busybox image (`busybox-layout`, tag 1), and
    `blobs.bin`, every blob of the bench image one after another (the yardstick's file). Made
    once and reused while the parameters are the same: the same bytes every time."""
    stamp_path = os.path.join(workdir, "layout.stamp")
    parameters = {"version": LAYOUT_VERSION, "logLayerMiB": LOG_LAYER_MIB, "logLayers": LOG_LAYERS, "gzipLevel": GZIP_LEVEL}
    layout = os.path.join(workdir, "layout")
    busybox_layout = os.path.join(workdir, "busybox-layout")
    concatenated = os.path.join(workdir, "blobs.bin")
    try:
        with open(stamp_path) as file:
            if json.load(file) == parameters:
                return layout, busybox_layout, concatenated
    except (OSError, ValueError):
        pass
    for path in (stamp_path, concatenated):
        if os.path.exists(path):
            os.remove(path)
    for path in (layout, busybox_layout):
        shutil.rmtree(path, ignore_errors=True)
        os.makedirs(os.path.join(path, "blobs", "sha256"))
    blobs = os.path.join(layout, "blobs", "sha256")

    busybox = shutil.which("busybox") or "/usr/bin/busybox"
    if not os.path.isfile(busybox):
        sys.exit("busybox not found (tools/install-deps installs busybox-static)")

    def busybox_members(tar):
        tar.addfile(tar_info("bin", tarfile.DIRTYPE, mode=0o755))
        with open(busybox, "rb") as file:
            tar.addfile(tar_info("bin/busybox", tarfile.REGTYPE, os.path.getsize(busybox), 0o755), file)
        for applet in BUSYBOX_APPLETS:
            tar.addfile(tar_info(f"bin/{applet}", tarfile.SYMTYPE, mode=0o777, link="busybox"))

    print(f"building the image: a busybox layer and {LOG_LAYERS} layers of {LOG_LAYER_MIB} MiB of make-logs.py output"
          f" (gzip level {GZIP_LEVEL})", file=sys.stderr)
    layer, diff_id = write_layer(blobs, busybox_members)
    layers, diff_ids = [layer], [diff_id]
    for index in range(LOG_LAYERS):
        logs = os.path.join(workdir, f"layer-{index + 1}.log")
        run([sys.executable, generator, logs, str(LOG_LAYER_MIB), str(index + 1)])

        def log_members(tar, logs=logs, index=index):
            for directory in ("var", "var/log", "var/log/app"):
                tar.addfile(tar_info(directory, tarfile.DIRTYPE, mode=0o755))
            with open(logs, "rb") as file:
                tar.addfile(tar_info(f"var/log/app/access-{index + 1}.log", tarfile.REGTYPE, os.path.getsize(logs)), file)

        layer, diff_id = write_layer(blobs, log_members)
        os.remove(logs)
        layers.append(layer)
        diff_ids.append(diff_id)
    write_layout(layout, layers, diff_ids, "1")

    # The busybox image: the same busybox layer alone (a blob the two images share).
    busybox_blobs = os.path.join(busybox_layout, "blobs", "sha256")
    shutil.copy2(os.path.join(blobs, layers[0]["digest"].split(":")[1]), busybox_blobs)
    write_layout(busybox_layout, layers[:1], diff_ids[:1], "1")

    with open(concatenated + ".partial", "wb") as target:
        for name in sorted(os.listdir(blobs)):
            with open(os.path.join(blobs, name), "rb") as source:
                shutil.copyfileobj(source, target, MIB)
    os.replace(concatenated + ".partial", concatenated)
    with open(stamp_path, "w") as file:
        json.dump(parameters, file)
    return layout, busybox_layout, concatenated


def layout_blobs(layout):
    directory = os.path.join(layout, "blobs", "sha256")
    return {name: os.path.join(directory, name) for name in os.listdir(directory)}


def differing_blobs(layout, pulled):
    """How many of `layout`'s blobs `pulled` lacks or holds other bytes of."""
    have = layout_blobs(pulled)
    differing = 0
    for name, path in layout_blobs(layout).items():
        if name not in have or sha256_of_file(have[name]) != name or os.path.getsize(have[name]) != os.path.getsize(path):
            differing += 1
    return differing


# The cluster


class Cluster(benchlib.Cluster):
    """The benchmark's cluster, and how much disk it takes."""

    def allocated_bytes(self):
        total = 0
        for directory, _, files in os.walk(self.directory):
            for name in files:
                try:
                    total += os.lstat(os.path.join(directory, name)).st_blocks * 512
                except OSError:
                    pass
        return total

    def wait_for_deletions(self, timeout_seconds=30):
        # Removing an image deletes its blobs' files; the data nodes delete the replicas at their
        # next heartbeats. Wait until the cluster's disk use has stopped changing, so that the
        # deletions do not compete with the next transfer.
        deadline = time.monotonic() + timeout_seconds
        last, steady_since = self.allocated_bytes(), time.monotonic()
        while time.monotonic() < deadline:
            time.sleep(0.5)
            now = self.allocated_bytes()
            if now != last:
                last, steady_since = now, time.monotonic()
            elif time.monotonic() - steady_since >= 4:
                break
        os.sync()


# Transfers


class Measured:
    """The wall time of what runs inside it, after `sync`, and the CPU seconds (user and kernel)
    spent meanwhile by the cluster process and by the client (this script and the commands it
    ran and waited for)."""

    def __init__(self, cluster_pid):
        self.cluster_pid = cluster_pid

    def __enter__(self):
        # Start with no dirty pages left from the transfer before.
        os.sync()
        self.cluster_cpu = process_cpu_seconds(self.cluster_pid)
        self.client_cpu = client_cpu_seconds()
        self.started = time.monotonic()
        return self

    def __exit__(self, *_):
        self.seconds = time.monotonic() - self.started
        self.cluster_cpu = process_cpu_seconds(self.cluster_pid) - self.cluster_cpu
        self.client_cpu = client_cpu_seconds() - self.client_cpu


def client_cpu_seconds():
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


def transfers(cluster, layout, concatenated, workdir):
    size = os.path.getsize(concatenated)
    registry = cluster.registry
    pulled = os.path.join(workdir, "pulled")
    in_memory = os.path.join("/dev/shm", f"strata-bench-images-{os.getpid()}")
    got = os.path.join(workdir, "got.bin")
    runs = {kind: [] for kind in TRANSFER_KINDS}
    differing = {"skopeo pull": 0, "strata image pull": 0}
    cluster.strata_command("dfs", "mkdir", "-p", "/bench")

    def measure(kind, action):
        with Measured(cluster.process.pid) as measured:
            action()
        runs[kind].append(measured)

    # Each run writes new DFS files and removes the images it pushed (freeing their blobs), so
    # that every push sends every blob; the kinds take turns so that they share the machine's
    # state.
    for index in range(RUNS):
        print(f"transfers, run {index + 1} of {RUNS}", file=sys.stderr)
        # The yardstick and the registry take turns at going first, as whatever runs first after
        # the last run's deletions may find memory the other does not.
        put = lambda: measure("dfs put", lambda: run([cluster.strata, "dfs", "put", concatenated, f"/bench/blobs.{index}"], cluster.env))
        push = lambda: measure("skopeo push", lambda: run(
            ["skopeo", "copy", "--dest-tls-verify=false", f"oci:{layout}:1", f"docker://{registry}/bench/img:1"]))
        for action in ((put, push) if index % 2 == 0 else (push, put)):
            action()

        def get():
            if os.path.exists(got):
                os.remove(got)
            measure("dfs get", lambda: run([cluster.strata, "dfs", "get", f"/bench/blobs.{index}", got], cluster.env))
            if os.path.getsize(got) != size:
                sys.exit("strata dfs get gave a file of another size")
            os.remove(got)

        def pull():
            shutil.rmtree(pulled, ignore_errors=True)
            measure("skopeo pull", lambda: run(
                ["skopeo", "copy", "--src-tls-verify=false", f"docker://{registry}/bench/img:1", f"oci:{pulled}:1"]))
            differing["skopeo pull"] += differing_blobs(layout, pulled)
            shutil.rmtree(pulled)

        for action in ((get, pull) if index % 2 == 0 else (pull, get)):
            action()
        # Context for the pull: skopeo writing into memory (tmpfs) instead of the disk; the
        # registry serving every blob to a reader that keeps nothing; and what writing the blobs
        # into a layout costs here without the network or the registry (skopeo's oci:
        # destination writes each blob to a new file, fsyncs it and renames it).
        shutil.rmtree(in_memory, ignore_errors=True)
        measure("skopeo pull to tmpfs", lambda: run(
            ["skopeo", "copy", "--src-tls-verify=false", f"docker://{registry}/bench/img:1", f"oci:{in_memory}:1"]))
        shutil.rmtree(in_memory)
        # The client's own bound: skopeo copying the layout into the same place with no registry
        # and no network at all (oci: to oci:, every blob read, hashed, written and fsync'd).
        measure(SKOPEO_ALONE, lambda: run(["skopeo", "copy", f"oci:{layout}:1", f"oci:{pulled}:1"]))
        shutil.rmtree(pulled)
        measure("registry GET, discarded", lambda: get_blobs(cluster.registry_port, "bench/img", layout))
        measure(FSYNC_COPY, lambda: fsync_copy(layout, pulled))
        shutil.rmtree(pulled)
        cluster.strata_command("image", "rm", "bench/img:1")
        cluster.wait_for_deletions()

        # Context for the push: the registry taking every blob as skopeo sends one (POST, one
        # PATCH with the whole blob, PUT ?digest=) from a client that only reads the files.
        measure("registry PATCH uploads", lambda: upload_blobs(cluster.registry_port, "bench/img", layout))
        delete_blobs(cluster.registry_port, "bench/img", layout)
        cluster.wait_for_deletions()

        measure("strata image push", lambda: run([cluster.strata, "image", "push", layout, "--name", "bench/img:cli"], cluster.env))
        measure("strata image pull", lambda: run([cluster.strata, "image", "pull", "bench/img:cli", pulled], cluster.env))
        differing["strata image pull"] += differing_blobs(layout, pulled)
        shutil.rmtree(pulled)
        cluster.strata_command("image", "rm", "bench/img:cli")
        cluster.wait_for_deletions()
    for index in range(RUNS):
        cluster.strata_command("dfs", "rm", f"/bench/blobs.{index}")
    cluster.wait_for_deletions()
    return size, runs, differing


def get_blobs(port, name, layout):
    """Every blob of `layout` read from the registry into nothing, one GET after another on
    one connection."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=COMMAND_TIMEOUT_SECONDS)
    for digest in sorted(layout_blobs(layout)):
        connection.request("GET", f"/v2/{name}/blobs/sha256:{digest}")
        response = connection.getresponse()
        if response.status != 200:
            sys.exit(f"GET of blob {digest}: {response.status}")
        while response.read(MIB):
            pass
    connection.close()


def upload_blobs(port, name, layout):
    """Every blob of `layout` uploaded as skopeo uploads one: POST to start, one PATCH with the
    whole blob (streamed from its file a MiB at a time), PUT ?digest= to close."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=COMMAND_TIMEOUT_SECONDS)
    for digest, path in sorted(layout_blobs(layout).items()):
        connection.request("POST", f"/v2/{name}/blobs/uploads/", headers={"Content-Length": "0"})
        response = connection.getresponse()
        response.read()
        location = response.getheader("Location")
        if response.status != 202 or not location:
            sys.exit(f"starting an upload: {response.status}")
        size = os.path.getsize(path)
        connection.putrequest("PATCH", location)
        connection.putheader("Content-Type", "application/octet-stream")
        connection.putheader("Content-Length", str(size))
        connection.putheader("Content-Range", f"0-{size - 1}")
        connection.endheaders()
        with open(path, "rb") as file:
            while chunk := file.read(MIB):
                connection.send(chunk)
        response = connection.getresponse()
        response.read()
        if response.status != 202:
            sys.exit(f"PATCH of blob {digest}: {response.status}")
        separator = "&" if "?" in location else "?"
        connection.request("PUT", f"{location}{separator}digest=sha256:{digest}", headers={"Content-Length": "0"})
        response = connection.getresponse()
        response.read()
        if response.status != 201:
            sys.exit(f"closing the upload of blob {digest}: {response.status}")
    connection.close()


def delete_blobs(port, name, layout):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=COMMAND_TIMEOUT_SECONDS)
    for digest in sorted(layout_blobs(layout)):
        connection.request("DELETE", f"/v2/{name}/blobs/sha256:{digest}")
        response = connection.getresponse()
        response.read()
        if response.status != 202:
            sys.exit(f"DELETE of blob {digest}: {response.status}")
    connection.close()


def fsync_copy(layout, directory):
    """Every blob of `layout` copied into `directory` as skopeo's oci: destination writes one:
    a new file, fsync'd, renamed into place."""
    target_blobs = os.path.join(directory, "blobs", "sha256")
    os.makedirs(target_blobs)
    for name, path in sorted(layout_blobs(layout).items()):
        partial = os.path.join(directory, f"put-blob.{name}")
        with open(path, "rb") as source, open(partial, "wb") as target:
            shutil.copyfileobj(source, target, MIB)
            target.flush()
            os.fsync(target.fileno())
        os.rename(partial, os.path.join(target_blobs, name))


# Registry memory


class ResidentSetSampler:
    """Reads a process's VmRSS every RSS_SAMPLE_SECONDS on a thread of its own."""

    def __init__(self, pid):
        self.path = f"/proc/{pid}/status"
        self.samples = []
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self.sample, daemon=True)

    def read(self):
        with open(self.path) as file:
            for line in file:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        sys.exit(f"no VmRSS in {self.path}")

    def sample(self):
        while not self.stopping.is_set():
            self.samples.append(self.read())
            self.stopping.wait(RSS_SAMPLE_SECONDS)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *_):
        self.stopping.set()
        self.thread.join()
        self.samples.append(self.read())


def push_blob(port, name, path, digest):
    """One monolithic upload, the body streamed from `path` a MiB at a time."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=COMMAND_TIMEOUT_SECONDS)
    connection.putrequest("POST", f"/v2/{name}/blobs/uploads/?digest={digest}")
    connection.putheader("Content-Type", "application/octet-stream")
    connection.putheader("Content-Length", str(os.path.getsize(path)))
    connection.endheaders()
    with open(path, "rb") as file:
        while chunk := file.read(MIB):
            connection.send(chunk)
    response = connection.getresponse()
    body = response.read()
    connection.close()
    if response.status != 201:
        sys.exit(f"pushing the 1 GiB layer: {response.status} {body.decode(errors='replace')}")


def pull_blob(port, name, digest):
    """A GET of the blob, read a MiB at a time into nothing; returns its bytes' digest and size."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=COMMAND_TIMEOUT_SECONDS)
    connection.request("GET", f"/v2/{name}/blobs/{digest}")
    response = connection.getresponse()
    if response.status != 200:
        sys.exit(f"pulling the 1 GiB layer: {response.status} {response.read().decode(errors='replace')}")
    hasher = hashlib.sha256()
    size = 0
    while chunk := response.read(MIB):
        hasher.update(chunk)
        size += len(chunk)
    connection.close()
    return f"sha256:{hasher.hexdigest()}", size


def registry_memory(cluster, random_file):
    print("registry memory: digest of the 1 GiB layer", file=sys.stderr)
    digest = f"sha256:{sha256_of_file(random_file)}"
    size = os.path.getsize(random_file)
    pid = cluster.process.pid
    results = {}
    for direction in ("push", "pull"):
        print(f"registry memory: {direction} of the 1 GiB layer, VmRSS every {RSS_SAMPLE_SECONDS * 1000:.0f} ms", file=sys.stderr)
        os.sync()
        # The resident set before: the median of a second's samples with nothing moving.
        with ResidentSetSampler(pid) as idle:
            time.sleep(1)
        before = statistics.median(idle.samples)
        with Measured(pid) as measured, ResidentSetSampler(pid) as moving:
            if direction == "push":
                push_blob(cluster.registry_port, "bench/big", random_file, digest)
            else:
                got_digest, got_size = pull_blob(cluster.registry_port, "bench/big", digest)
                if (got_digest, got_size) != (digest, size):
                    sys.exit(f"the 1 GiB layer came back as {got_size} bytes of {got_digest}")
        results[direction] = {"before": before, "peak": max(moving.samples), "after": moving.samples[-1],
                              "samples": len(moving.samples), "seconds": measured.seconds, "cpu": measured.cluster_cpu}
    return size, results


# Container start


def container_starts(cluster, busybox_layout, workdir):
    cluster.strata_command("image", "push", busybox_layout, "--name", "bench/busybox:1")
    tiny = os.path.join(workdir, "tiny.txt")
    with open(tiny, "w") as file:
        file.write("one line\nanother line\n")
    cluster.strata_command("dfs", "put", tiny, "/bench/tiny")
    cluster.strata_command("dfs", "mkdir", "-p", "/bench/latency")
    # One job at a time: submit, wait for it to end, then the next. A job that is the first on
    # its agent unpacks the image into that agent's cache and is kept apart.
    samples, first_on_agent = [], []
    agents_seen = set()
    index = 0
    while len(samples) < LAUNCHES:
        if index >= LAUNCHES + 20:
            sys.exit(f"{index} jobs gave only {len(samples)} starts from a cached image")
        body = {"arguments": ["true"], "inputs": ["/bench/tiny"], "output": f"/bench/latency/image-{index}", "image": "bench/busybox:1"}
        sent_ms = time.time() * 1000
        view = cluster.submit(body)
        detail = cluster.wait_for_job(view["id"])
        index += 1
        job = detail["job"]
        if job["state"] != "FINISHED" or len(detail["tasks"]) != 1:
            sys.exit(f"image job {view['id']} ended {job['state']} with {len(detail['tasks'])} attempts: {job.get('message')}")
        attempt = detail["tasks"][0]["attempt"]
        submitted = job["submittedAtMs"]
        sample = {
            "running": attempt["runningAtMs"] - submitted,
            "staged": attempt["stagedAtMs"] - submitted,
            "launch": attempt["runningAtMs"] - attempt["stagedAtMs"],
            "finished": job["endedAtMs"] - submitted,
            "sent": attempt["runningAtMs"] - sent_ms,
            "local": attempt["isNodeLocal"],
        }
        if attempt["agentId"] in agents_seen:
            samples.append(sample)
        else:
            agents_seen.add(attempt["agentId"])
            first_on_agent.append(sample)
    return samples, first_on_agent


def cached_root_filesystem(cluster_dir):
    # The agents' caches: <cluster>/nodeN/agent/images/rootfs/<key>/rootfs; node1's if it has one.
    found = sorted(glob.glob(os.path.join(cluster_dir, "node*", "agent", "images", "rootfs", "*", "rootfs")))
    if not found:
        sys.exit("no agent has the image's root filesystem cached")
    return found[0]


def runc_config(root_filesystem, sandbox, cgroup_path):
    # What the agent gives runc (Sources/StrataAgent/Executor/OCIBundle.swift) for a task of the
    # default resources (0.1 cpus, 128 MB) from an image: read-only root, tmpfs /tmp.
    capabilities = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
    return {
        "ociVersion": "1.0.2",
        "process": {
            "terminal": False, "user": {"uid": os.getuid(), "gid": os.getgid(), "additionalGids": []},
            "args": ["true"], "env": ["PATH=/bin"], "cwd": "/",
            "capabilities": {"bounding": capabilities, "effective": capabilities, "permitted": capabilities},
            "noNewPrivileges": True,
        },
        "root": {"path": root_filesystem, "readonly": True},
        "hostname": socket.gethostname(),
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc", "options": []},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
             "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
            {"destination": "/mnt/sandbox", "type": "bind", "source": sandbox, "options": ["rbind", "rw"]},
            {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "nodev", "mode=1777"]},
        ],
        "linux": {
            "resources": {"devices": [{"allow": False, "access": "rwm"}], "memory": {"limit": 128 * MIB}, "cpu": {"shares": 102}},
            "cgroupsPath": cgroup_path,
            "namespaces": [{"type": kind} for kind in ("pid", "mount", "ipc", "uts")],
            "maskedPaths": ["/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list",
                            "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi"],
            "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"],
        },
    }


def bare_runc(root_filesystem, workdir):
    """`runc run` of `true` in `root_filesystem`, start to exit, RUNC_RUNS times after one not
    counted; seconds each."""
    runc = shutil.which("runc") or sys.exit("runc not found (tools/install-deps installs it)")
    bundle = os.path.join(workdir, "runc-bundle")
    state = os.path.join(workdir, "runc-state")
    sandbox = os.path.join(bundle, "sandbox")
    shutil.rmtree(bundle, ignore_errors=True)
    os.makedirs(sandbox)
    cgroup_parent = f"strata-bench-images-{os.getpid()}"
    samples = []
    try:
        for index in range(RUNC_RUNS + 1):
            container = f"bench-{os.getpid()}-{index}"
            with open(os.path.join(bundle, "config.json"), "w") as file:
                json.dump(runc_config(root_filesystem, sandbox, f"/{cgroup_parent}/{container}"), file)
            started = time.monotonic()
            result = subprocess.run([runc, "--root", state, "run", "--bundle", bundle, container], stdin=subprocess.DEVNULL,
                                    capture_output=True, text=True, timeout=60, cwd=bundle)
            seconds = time.monotonic() - started
            if result.returncode != 0:
                sys.exit(f"runc run failed ({result.returncode}): {result.stderr}")
            if index > 0:
                samples.append(seconds)
    finally:
        # runc removes each container's cgroup as it deletes the container; the parent is ours.
        for hierarchy in glob.glob(f"/sys/fs/cgroup/*/{cgroup_parent}") + glob.glob(f"/sys/fs/cgroup/{cgroup_parent}"):
            try:
                os.rmdir(hierarchy)
            except OSError:
                pass
        shutil.rmtree(bundle, ignore_errors=True)
        shutil.rmtree(state, ignore_errors=True)
    return samples


def main():
    strata, workdir, generator, random_file = sys.argv[1:5]
    os.makedirs(workdir, exist_ok=True)
    for tool in ("skopeo", "runc"):
        if not shutil.which(tool):
            sys.exit(f"{tool} not found (tools/install-deps --test installs it)")
    layout, busybox_layout, concatenated = build_images(workdir, generator)
    cluster_dir = os.path.join(workdir, "cluster")
    shutil.rmtree(cluster_dir, ignore_errors=True)

    print("starting the cluster: 3 data nodes, the master, 3 agents, the registry", file=sys.stderr)
    cluster = Cluster(strata, cluster_dir, os.path.join(workdir, "cluster.log"))
    try:
        cluster.wait_until_ready()
        image_bytes, runs, differing = transfers(cluster, layout, concatenated, workdir)
        layer_bytes, memory = registry_memory(cluster, random_file)
        print(f"container start: single-task jobs from bench/busybox:1 until {LAUNCHES} started from a cached image", file=sys.stderr)
        starts, first_starts = container_starts(cluster, busybox_layout, workdir)
        root_filesystem = cached_root_filesystem(cluster_dir)
        print(f"bare runc run of {root_filesystem}, {RUNC_RUNS + 1} times", file=sys.stderr)
        runc_seconds = bare_runc(root_filesystem, workdir)
    finally:
        cluster.stop()
    shutil.rmtree(cluster_dir, ignore_errors=True)

    with open(os.path.join(layout, "index.json")) as file:
        manifest_digest = json.load(file)["manifests"][0]["digest"]
    with open(os.path.join(layout, "blobs", "sha256", manifest_digest.split(":")[1])) as file:
        layer_sizes = [layer["size"] for layer in json.load(file)["layers"]]
    speeds = {kind: [image_bytes / measured.seconds for measured in values] for kind, values in runs.items()}
    median = {kind: statistics.median(values) for kind, values in speeds.items()}
    print(f"\nimage bench/img: {len(layer_sizes)} layers ({', '.join(f'{size / 1e6:.1f}' for size in layer_sizes)} MB: busybox, then"
          f" {LOG_LAYERS} tars of {LOG_LAYER_MIB} MiB of make-logs.py logs each, gzip level {GZIP_LEVEL}),"
          f" {image_bytes / 1e6:.1f} MB of blobs with config and manifest")
    print(f"transfers: replication 3, same cluster and run, each after sync; median of {RUNS} runs each;"
          " CPU: medians of user + kernel seconds in the cluster process and in the client")
    print(f"  {'':<26}{'runs, MB/s':<24}{'median':>11}{'cluster CPU':>14}{'client CPU':>12}")
    for kind, values in speeds.items():
        cluster_cpu = statistics.median(measured.cluster_cpu for measured in runs[kind])
        client_cpu = statistics.median(measured.client_cpu for measured in runs[kind])
        print(f"  {kind:<26}" + "".join(f"{value / 1e6:6.0f}" for value in values).ljust(24)
              + f"{median[kind] / 1e6:6.0f} MB/s{cluster_cpu:12.2f} s{client_cpu:10.2f} s")
    print(f"  yardstick: strata dfs put/get of one file holding every blob of the image, {image_bytes} bytes")
    print(f"  registry push (skopeo copy oci: -> docker://)       {median['skopeo push'] / median['dfs put']:.3f} of dfs put")
    print(f"  registry pull (skopeo copy docker:// -> oci:)       {median['skopeo pull'] / median['dfs get']:.3f} of dfs get")
    print(f"  context: strata image push                          {median['strata image push'] / median['dfs put']:.3f} of dfs put")
    print(f"  context: strata image pull                          {median['strata image pull'] / median['dfs get']:.3f} of dfs get")
    print(f"  context: registry PATCH uploads                     {median['registry PATCH uploads'] / median['dfs put']:.3f} of dfs put"
          " (every blob as skopeo sends it, POST, PATCH, PUT, from a client that only reads the files: the registry's taking alone)")
    print(f"  context: skopeo pull to tmpfs                       {median['skopeo pull to tmpfs'] / median['dfs get']:.3f} of dfs get"
          " (the same pull into /dev/shm: no disk)")
    print(f"  bound the client sets: skopeo oci: -> oci:, no registry {median[SKOPEO_ALONE] / median['dfs get']:.3f} of dfs get"
          f" (the same copy into the same directory without the registry or the network); the pull is"
          f" {median['skopeo pull'] / median[SKOPEO_ALONE]:.3f} of it")
    print(f"  context: registry GET of every blob, discarded      {median['registry GET, discarded'] / median['dfs get']:.3f} of dfs get"
          " (one GET after another on one connection: the registry's serving alone)")
    print(f"  context: fsync'd local copy of the blobs            {median[FSYNC_COPY] / median['dfs get']:.3f} of dfs get"
          " (from the layout into new files, each fsync'd and renamed, as skopeo's oci: destination writes;"
          " `strata dfs get` writes with direct I/O)")
    print(f"  blobs differing from the layout after a pull: skopeo {differing['skopeo pull']},"
          f" strata image pull {differing['strata image pull']} (of {len(layer_sizes) + 2} per pull, {RUNS} pulls each)")

    print(f"\nregistry memory: one {layer_bytes // MIB} MiB layer of random bytes, cluster process VmRSS every"
          f" {RSS_SAMPLE_SECONDS * 1000:.0f} ms (every service of the cluster is in that process)")
    for direction, label in (("push", "push: one POST ?digest=, streamed"), ("pull", "pull: GET, read into nothing")):
        result = memory[direction]
        print(f"  {label:<36} {result['seconds']:5.2f} s {layer_bytes / result['seconds'] / 1e6:5.0f} MB/s   RSS before"
              f" {result['before'] / MIB:5.0f} MiB, peak {result['peak'] / MIB:5.0f} MiB (+{(result['peak'] - result['before']) / 1e6:.1f} MB),"
              f" after {result['after'] / MIB:5.0f} MiB; {result['samples']} samples; cluster CPU {result['cpu']:.2f} s")

    running = [sample["running"] for sample in starts]
    first_running = [sample["running"] for sample in first_starts]
    runc_ms = [seconds * 1000 for seconds in runc_seconds]
    print(f"\ncontainer start from a cached image: {len(starts)} single-task jobs of `true` from bench/busybox:1 over a 2-line"
          f" file, one at a time ({len(first_starts)} more, the first on each agent, unpacked the image and are not counted)")
    print("  submitted (master) -> task RUNNING (master handles the agent's report); percentiles by nearest rank"
          f" (p99 of {len(starts)} is the largest)")
    print(f"  {'':<22}{'p50':>9}{'p99':>9}{'max':>9}   {'-> staged p50':>14}{'staged -> running p50':>23}{'-> job FINISHED p50':>21}  node-local")
    print(f"  {'cached image':<22}{percentile(running, 0.5):>6.0f} ms{percentile(running, 0.99):>6.0f} ms{max(running):>6.0f} ms"
          f"   {statistics.median(s['staged'] for s in starts):>11.0f} ms"
          f"{statistics.median(s['launch'] for s in starts):>20.0f} ms"
          f"{statistics.median(s['finished'] for s in starts):>18.0f} ms"
          f"  {sum(s['local'] for s in starts)}/{len(starts)}")
    print(f"  {'first on its agent':<22}{statistics.median(first_running):>6.0f} ms{'':>9}{max(first_running):>6.0f} ms"
          f"   (median and max of {len(first_running)}: reading the layer from the DFS and unpacking it)")
    sent = [sample["sent"] for sample in starts]
    print(f"  context: POST sent (client clock) -> RUNNING p50 {percentile(sent, 0.5):.0f} ms, p99 {percentile(sent, 0.99):.0f} ms"
          " (adds the HTTP request and resolving the image, which the master does before it stamps the job)")
    print(f"  yardstick: bare `runc run` of the same root filesystem, `true`, start to exit: p50 {percentile(runc_ms, 0.5):.0f} ms,"
          f" p99 {percentile(runc_ms, 0.99):.0f} ms (of {len(runc_ms)}; the agent's configuration, read-only root)")
    print(f"  cached image p50 / bare runc p50   {percentile(running, 0.5) / percentile(runc_ms, 0.5):.2f}")

    checks = [
        ("registry push / dfs put", median["skopeo push"] / median["dfs put"], ">=", 0.7),
        ("registry pull / dfs get", median["skopeo pull"] / median["dfs get"], ">=", 0.7),
        ("pulled blobs differing from pushed", differing["skopeo pull"] + differing["strata image pull"], "<=", 0),
        ("RSS growth, 1 GiB layer pushed, MB", (memory["push"]["peak"] - memory["push"]["before"]) / 1e6, "<", RSS_GROWTH_BOUND / 1e6),
        ("RSS growth, 1 GiB layer pulled, MB", (memory["pull"]["peak"] - memory["pull"]["before"]) / 1e6, "<", RSS_GROWTH_BOUND / 1e6),
        ("container start, cached image, p50 ms", percentile(running, 0.5), "<=", 300),
    ]
    print(f"\n{'check':<40}{'value':>10}  target")
    for label, value, relation, target in checks:
        ok = {">=": value >= target, "<=": value <= target, "<": value < target}[relation]
        print(f"{label:<40}{value:>10.3f}  {relation} {target:<8} {'PASS' if ok else 'FAIL'}")
    print("\ntasks ran as the invoking user (root) on a cluster started with --allow-root-tasks")


if __name__ == "__main__":
    main()
