#!/usr/bin/env python3
"""`tools/bench recovery`: how fast the cluster heals after a data node dies.

Real processes: a name node with `--heartbeat-timeout 30` and four data nodes (heartbeats every
3 s, the default), replication 3. Puts the make-logs.py output as eight files and times the put
(the put rate, measured as `tools/bench dfs` does: sync first, one `strata dfs put`). Then kills
with SIGKILL the data node holding the most blocks and polls the name node:

  time to detect   kill -> `dfsadmin report --json` shows the node "dead"
  time to healthy  kill -> `fsck / --json` is HEALTHY with no under-replicated block

The re-replication rate is the raw bytes of the blocks the dead node held (each of them is copied
once) over (healthy - detect), printed as a ratio to the put rate of the same run. Meanwhile the
survivors' directories are watched every 20 ms, which shows when each copy began (its replica
file appeared) and was finished, so a slow phase can be told from a slow copy. The target:
healthy again within 60 s of the kill with a 30 s timeout. Afterwards every file is read back and
compared with its source.

Usage: bench-recovery.py STRATA WORKDIR LOGS_FILE [--files N]
"""
import argparse
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

MIB = 1024 * 1024
HEARTBEAT_TIMEOUT_SECONDS = 30
TARGET_HEALTHY_SECONDS = 60
DATA_NODES = 4
POLL_SECONDS = 0.2


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Cluster:
    """A name node and data nodes as separate processes, stopped (all of them) by `stop`."""

    def __init__(self, strata, directory):
        self.strata = strata
        self.directory = directory
        self.port = free_port()
        self.env = dict(os.environ, STRATA_NAMENODE=f"127.0.0.1:{self.port}")
        self.processes = {}
        self.logs = []

    def launch(self, name, args):
        log = open(os.path.join(self.directory, f"{name}.log"), "w")
        self.logs.append(log)
        self.processes[name] = subprocess.Popen([self.strata] + args, stdout=log, stderr=subprocess.STDOUT)

    def start(self):
        os.makedirs(self.directory)
        self.launch("namenode", [
            "namenode", "--dir", os.path.join(self.directory, "namenode"), "--port", str(self.port), "--http-port", "0",
            "--heartbeat-timeout", str(HEARTBEAT_TIMEOUT_SECONDS)])
        for index in range(1, DATA_NODES + 1):
            self.launch(f"node{index}", [
                "datanode", "--dir", self.node_directory(index), "--port", "0", "--http-port", "0",
                "--namenode", f"127.0.0.1:{self.port}"])

    def node_directory(self, index):
        return os.path.join(self.directory, f"node{index}")

    def node_id(self, index):
        with open(os.path.join(self.node_directory(index), "node-id")) as handle:
            return handle.read().strip()

    def kill(self, name):
        process = self.processes.pop(name)
        process.kill()
        process.wait()

    def stop(self):
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes.values():
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.processes = {}
        for log in self.logs:
            log.close()

    def run(self, args, check=True):
        result = subprocess.run([self.strata] + args, env=self.env, capture_output=True, text=True, timeout=600)
        if check and result.returncode != 0:
            sys.exit(f"failed: strata {' '.join(args)}\n{result.stdout}\n{result.stderr}")
        return result

    def nodes(self):
        """{node id: report entry} from `dfsadmin report --json`, or None while it does not answer."""
        result = self.run(["dfsadmin", "report", "--json"], check=False)
        if result.returncode != 0:
            return None
        try:
            return {node["nodeId"]: node for node in json.loads(result.stdout)}
        except (ValueError, KeyError):
            return None

    def fsck(self):
        # Exit status 1 means CORRUPT; the JSON is printed either way.
        result = self.run(["fsck", "/", "--json"], check=False)
        try:
            return json.loads(result.stdout)
        except ValueError:
            return None


def count(report, key):
    # Protobuf JSON leaves out fields that are zero.
    return int(report.get(key, 0))


def is_healthy(report):
    return (report is not None and report.get("healthy", False) and count(report, "underReplicatedBlocks") == 0
            and count(report, "missingBlocks") == 0 and count(report, "corruptBlocks") == 0)


def wait_for(description, timeout, condition):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(POLL_SECONDS)
    sys.exit(f"timed out after {timeout} s waiting for {description}")


def split(logs, directory, parts):
    """Cuts LOGS into PARTS files of (nearly) equal size; returns their paths and sizes."""
    size = os.path.getsize(logs)
    files = []
    with open(logs, "rb") as source:
        for index in range(parts):
            part = size // parts + (1 if index < size % parts else 0)
            path = os.path.join(directory, f"logs-{index + 1:02d}.log")
            with open(path, "wb") as out:
                remaining = part
                while remaining:
                    chunk = source.read(min(remaining, 16 * MIB))
                    out.write(chunk)
                    remaining -= len(chunk)
            files.append((path, part))
    return files


def sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(16 * MIB):
            digest.update(chunk)
    return digest.hexdigest()


def replica_files(directories, only=None):
    """{block id: [finished?, ...]}: the replica files of each block under the data node directories."""
    found = {block: [] for block in only} if only is not None else {}
    for directory in directories:
        for folder, finished in ((os.path.join(directory, "current", "finalized"), True), (os.path.join(directory, "current", "rbw"), False)):
            for _, _, names in os.walk(folder):
                for name in names:
                    parts = name.split("_")
                    if len(parts) != 3 or parts[0] != "blk":
                        continue
                    block = int(parts[1])
                    if only is None or block in only:
                        found.setdefault(block, []).append(finished)
    return found


def raw_bytes_of_replicas(strata, directory):
    """(replica count, raw bytes, stored bytes) of the finished replica files under a data node's directory."""
    replicas, raw, stored = 0, 0, 0
    finalized = os.path.join(directory, "current", "finalized")
    for root, _, names in os.walk(finalized):
        for name in names:
            if not name.startswith("blk_"):
                continue
            path = os.path.join(root, name)
            result = subprocess.run([strata, "debug", "block", "--json", path], capture_output=True, text=True)
            if result.returncode != 0:
                sys.exit(f"replica {path} is damaged:\n{result.stdout}{result.stderr}")
            report = json.loads(result.stdout)
            replicas += 1
            raw += report["rawBytes"]
            stored += report["fileBytes"]
    return replicas, raw, stored


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("strata")
    parser.add_argument("workdir")
    parser.add_argument("logs")
    parser.add_argument("--files", type=int, default=8, help="how many files the logs are put as")
    args = parser.parse_args()
    strata = args.strata
    size = os.path.getsize(args.logs)
    os.makedirs(args.workdir, exist_ok=True)
    cluster_dir = os.path.join(args.workdir, "cluster")
    parts_dir = os.path.join(args.workdir, "parts")
    for directory in (cluster_dir, parts_dir):
        shutil.rmtree(directory, ignore_errors=True)
    os.makedirs(parts_dir)
    files = split(args.logs, parts_dir, max(1, min(args.files, size // MIB)))

    cluster = Cluster(strata, cluster_dir)
    print(f"starting a name node (heartbeat timeout {HEARTBEAT_TIMEOUT_SECONDS} s) and {DATA_NODES} data nodes", file=sys.stderr)
    cluster.start()
    try:
        def started():
            nodes = cluster.nodes()
            return (nodes is not None and sum(node.get("state") == "live" for node in nodes.values()) == DATA_NODES
                    and "OFF" in cluster.run(["dfsadmin", "safemode", "get"], check=False).stdout)
        wait_for("the cluster to start", 60, started)
        cluster.run(["dfs", "mkdir", "-p", "/bench"])

        print(f"put {size // MIB} MiB as {len(files)} files", file=sys.stderr)
        os.sync()
        started = time.monotonic()
        cluster.run(["dfs", "put"] + [path for path, _ in files] + ["/bench/"])
        put_seconds = time.monotonic() - started
        put_rate = size / put_seconds
        def fully_replicated():
            report = cluster.fsck()
            return is_healthy(report) and float(report.get("averageReplication", 0)) == 3.0
        wait_for("every block at 3 replicas", 60, fully_replicated)
        before = cluster.fsck()

        # The node holding the most blocks: the most to copy.
        nodes = cluster.nodes()
        by_id = {cluster.node_id(index): index for index in range(1, DATA_NODES + 1)}
        victim_id = max(nodes, key=lambda node_id: int(nodes[node_id].get("blockCount", 0)))
        victim = by_id[victim_id]
        lost = set(replica_files([cluster.node_directory(victim)]))
        os.sync()
        print(f"kill -9 data node {victim} ({nodes[victim_id].get('blockCount', 0)} blocks)", file=sys.stderr)
        killed = time.monotonic()
        cluster.kill(f"node{victim}")

        def dead():
            nodes = cluster.nodes()
            return nodes is not None and nodes.get(victim_id, {}).get("state") == "dead"
        wait_for("the node to be reported dead", HEARTBEAT_TIMEOUT_SECONDS + 60, dead)
        detect_seconds = time.monotonic() - killed
        print(f"reported dead after {detect_seconds:.1f} s; waiting for fsck HEALTHY", file=sys.stderr)
        # Before the node is declared dead the name node still counts its replicas, so fsck only
        # means something from here on. The survivors' disks show when the copies start (a
        # replica file of a lost block appears) and when they are all written.
        survivors = [cluster.node_directory(index) for index in range(1, DATA_NODES + 1) if index != victim]
        # fsck runs in the background while the disks are looked at every 20 ms.
        copies_started = copies_written = None
        copy_started, copy_finished = {}, {}
        deadline = time.monotonic() + 600
        fsck = None
        while True:
            now = time.monotonic() - killed
            holders = replica_files(survivors, lost)
            for block, replicas in holders.items():
                if len(replicas) > 2:
                    copy_started.setdefault(block, now)
                if sum(finished for finished in replicas) >= 3:
                    copy_finished.setdefault(block, now)
            if copies_started is None and copy_started:
                copies_started = now
            if copies_written is None and len(copy_finished) == len(lost):
                copies_written = now
            if fsck is None:
                fsck = subprocess.Popen([strata, "fsck", "/", "--json"], env=cluster.env, stdout=subprocess.PIPE,
                                        stderr=subprocess.DEVNULL, text=True)
            elif fsck.poll() is not None:
                output = fsck.stdout.read()
                fsck.stdout.close()
                fsck = None
                try:
                    if is_healthy(json.loads(output)):
                        break
                except ValueError:
                    pass
            if time.monotonic() > deadline:
                sys.exit("timed out after 600 s waiting for fsck HEALTHY with no under-replicated block")
            time.sleep(0.02)
        healthy_seconds = time.monotonic() - killed
        after = cluster.fsck()

        print("reading every file back", file=sys.stderr)
        mismatched = []
        for path, _ in files:
            name = os.path.basename(path)
            copy = os.path.join(args.workdir, "copy.tmp")
            if os.path.exists(copy):
                os.remove(copy)
            cluster.run(["dfs", "get", f"/bench/{name}", copy])
            if sha256(copy) != sha256(path):
                mismatched.append(name)
            os.remove(copy)
    finally:
        cluster.stop()

    # What had to be copied: every replica the dead node held (its directory is as the kill left it).
    lost_replicas, lost_raw, lost_stored = raw_bytes_of_replicas(strata, cluster.node_directory(victim))
    copy_seconds = healthy_seconds - detect_seconds
    copy_rate = lost_raw / copy_seconds if copy_seconds > 0 else float("inf")
    shutil.rmtree(cluster_dir, ignore_errors=True)
    shutil.rmtree(parts_dir, ignore_errors=True)

    def mbps(value):
        return f"{value / 1e6:8.0f} MB/s"

    print(f"\nrecovery ({size // MIB} MiB in {len(files)} files, {count(before, 'totalBlocks')} blocks, replication 3, "
          f"{DATA_NODES} data nodes, heartbeat timeout {HEARTBEAT_TIMEOUT_SECONDS} s)")
    print(f"  put rate                                {mbps(put_rate)}  ({put_seconds:.1f} s)")
    print(f"  dead node's replicas                    {lost_replicas} ({lost_raw / MIB:.0f} MiB raw, {lost_stored / MIB:.0f} MiB stored)")
    print(f"  time to detect (kill -> dead)           {detect_seconds:8.1f} s")
    print(f"  time to healthy (kill -> fsck HEALTHY)  {healthy_seconds:8.1f} s")
    print(f"  copy phase (dead -> HEALTHY)            {copy_seconds:8.1f} s")
    print(f"    kill -> first copy on a survivor's disk  {copies_started if copies_started is not None else float('nan'):5.1f} s")
    print(f"    kill -> every copy written               {copies_written if copies_written is not None else float('nan'):5.1f} s")
    if copy_started and copy_finished:
        longest = max(copy_finished[block] - copy_started.get(block, copy_finished[block]) for block in copy_finished)
        print(f"    copies began over {max(copy_started.values()) - min(copy_started.values()):.1f} s "
              f"(sources hear of them in heartbeat answers); longest single copy {longest:.1f} s")
    print(f"  re-replication rate (raw bytes)         {mbps(copy_rate)}")
    print(f"  after: {count(after, 'liveDatanodes')} live / {count(after, 'deadDatanodes')} dead nodes, "
          f"average replication {float(after.get('averageReplication', 0)):.1f}, "
          f"over-replicated {count(after, 'overReplicatedBlocks')}")

    checks = [
        ("re-replication rate / put rate", copy_rate / put_rate, None, None),
        ("seconds from kill to HEALTHY", healthy_seconds, "<=", TARGET_HEALTHY_SECONDS),
        ("files read back different", len(mismatched), "<=", 0),
    ]
    print(f"\n{'check':<44}{'value':>10}  target")
    failed = 0
    for label, value, relation, target in checks:
        if relation is None:
            print(f"{label:<44}{value:>10.3f}")
            continue
        ok = value <= target if relation == "<=" else value >= target
        failed += 0 if ok else 1
        print(f"{label:<44}{value:>10.3f}  {relation} {target:<8} {'PASS' if ok else 'FAIL'}")
    if mismatched:
        print(f"files that read back different: {', '.join(mismatched)}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
