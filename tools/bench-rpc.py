#!/usr/bin/env python3
"""`tools/bench rpc`: Hadoop's native protocols against a Strata cluster, with the hdfs-native
client (PyPI; Hadoop RPC to the name node, Hadoop's data transfer protocol to the data nodes),
beside Strata's own client in the same run on the same cluster (`strata cluster up --no-compute`:
a name node and three data nodes, replication 3).

Transfers (issue 17): 1 GiB of make-logs.py output written through hdfs-native (4 MiB per write
call, `create` with overwrite) and read back through it, against `strata dfs put` and `strata dfs
get` of the same file. The read is measured twice: hdfs-native discarding the bytes (the
servers' speed: what the check uses, as `tools/bench webhdfs` does for curl) and hdfs-native
writing a file through Python (what a user of the client sees; Python writes through the page
cache, where `strata dfs get` writes with direct I/O). Each transfer runs RUNS times, the kinds
taking turns, each after `sync`, every one to a new path; medians are compared. Every file read
back through hdfs-native must equal the source byte for byte, and every file written through it
must read back identical through `strata dfs get`.

Metadata: getFileInfo of one file from 16 client processes at once (each its own hdfs-native
client and connection), for STRATA_BENCH_RPC_SECONDS (5) seconds, all starting at one wall-clock
instant; calls per second summed. Beside it, Strata's own RPC in the same run: `strata debug
metadata-bench --clients 16` (16 connections from one process), whose stat rate is what the
name node answers when the client costs little. The clients share the machine's cores with the
cluster.

Beside each transfer's speed, the CPU seconds it took (the client process and the cluster
process, user and system) and the speed those would allow with every core busy: the machine's
limit for that transfer's work, done as that client and the servers do it (hdfs-native checks a
software CRC32C per 512 bytes and sends raw bytes the first data node compresses; Strata's client
compresses itself and sends frames). And the best hdfs-native could do on this machine: its own
client's CPU seconds (which Strata cannot change) plus every CPU second Strata's own client and
cluster spend on the same transfer (the same frames compressed or decoded, stored or read), with
every core busy.

Checks are reported, not enforced: the script exits 0 when a check fails and non-zero only when
the run itself breaks."""
import hashlib
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time

import benchlib
from benchlib import COMMAND_TIMEOUT_SECONDS, run

RUNS = int(os.environ.get("STRATA_BENCH_RUNS", "3"))
STAT_CLIENTS = 16
STAT_SECONDS = float(os.environ.get("STRATA_BENCH_RPC_SECONDS", "5"))
CLIENT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "bench-rpc-client.py")


def sha256_of(path):
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        while chunk := file.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def process_cpu_seconds(pid):
    """User and system CPU seconds of a process (all its threads) so far."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def process_written_bytes(pid):
    """Bytes a process has written so far through write calls, to files and sockets alike
    (`wchar` of /proc/PID/io)."""
    with open(f"/proc/{pid}/io") as io:
        return next(int(line.split()[1]) for line in io if line.startswith("wchar:"))


def children_cpu_seconds():
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(args, env=None, cluster_pid=None):
    """Wall seconds, output, the CPU seconds the client and the cluster spent meanwhile, and the
    bytes the cluster wrote meanwhile."""
    os.sync()
    cluster_before = process_cpu_seconds(cluster_pid) if cluster_pid else 0.0
    written_before = process_written_bytes(cluster_pid) if cluster_pid else 0
    client_before = children_cpu_seconds()
    started = time.monotonic()
    output = run(args, env)
    seconds = time.monotonic() - started
    client = children_cpu_seconds() - client_before
    cluster = process_cpu_seconds(cluster_pid) - cluster_before if cluster_pid else 0.0
    written = process_written_bytes(cluster_pid) - written_before if cluster_pid else 0
    return seconds, output, (client, cluster), written


def wait_for_cluster(strata, env, process, log_path):
    for _ in range(600):
        if process.poll() is not None:
            sys.exit(f"the cluster exited with status {process.returncode}; see {log_path}")
        probe = subprocess.run([strata, "dfsadmin", "safemode", "get"], env=env, capture_output=True, text=True)
        if "OFF" in probe.stdout:
            return
        time.sleep(0.2)
    sys.exit("the cluster did not start within 120 s")


def stat_rate(python, url, path):
    # All clients start at one instant a little ahead, once every process has connected.
    start = time.time() + 2.0 + STAT_CLIENTS * 0.1
    end = start + STAT_SECONDS
    processes = [
        subprocess.Popen([python, CLIENT, url, "stat", path, str(start), str(end)], stdout=subprocess.PIPE, text=True)
        for _ in range(STAT_CLIENTS)]
    calls = 0
    for process in processes:
        output, _ = process.communicate(timeout=COMMAND_TIMEOUT_SECONDS)
        if process.returncode != 0:
            sys.exit("a getFileInfo client failed")
        calls += json.loads(output)["calls"]
    return calls / STAT_SECONDS


def main():
    strata, python, workdir, logs = sys.argv[1:5]
    size = os.path.getsize(logs)
    source_digest = sha256_of(logs)
    os.makedirs(workdir, exist_ok=True)
    cluster_dir = os.path.join(workdir, "cluster")
    shutil.rmtree(cluster_dir, ignore_errors=True)
    port, http = benchlib.free_port(), benchlib.free_port()
    env = dict(os.environ, STRATA_NAMENODE=f"127.0.0.1:{port}")
    url = f"hdfs://127.0.0.1:{port}"
    log_path = os.path.join(workdir, "cluster.log")
    log = open(log_path, "w")
    cluster = subprocess.Popen(
        [strata, "cluster", "up", "--no-compute", "--nodes", "3", "--data", cluster_dir, "--port", str(port), "--http-port", str(http)],
        stdout=log, stderr=log)
    out = os.path.join(workdir, "copy")
    kinds = ("dfs put", "hdfs-native write", "dfs get", "hdfs-native read, discarded", "hdfs-native read to file")
    speeds = {key: [] for key in kinds}
    cpu_seconds = {key: [] for key in kinds}
    client_cpu_seconds = {key: [] for key in kinds}
    cluster_written = {key: [] for key in kinds}
    try:
        wait_for_cluster(strata, env, cluster, log_path)
        run([strata, "dfs", "mkdir", "-p", "/bench"], env)
        def measure(key, args, environment=None):
            seconds, _, (client, servers), written = timed(args, environment, cluster.pid)
            cluster_written[key].append(written)
            speeds[key].append(size / seconds)
            cpu_seconds[key].append(client + servers)
            client_cpu_seconds[key].append(client)

        for index in range(RUNS):
            measure("dfs put", [strata, "dfs", "put", logs, f"/bench/native.{index}"], env)
            measure("hdfs-native write", [python, CLIENT, url, "put", logs, f"/bench/rpc.{index}"])
            if os.path.exists(out):
                os.remove(out)
            measure("dfs get", [strata, "dfs", "get", f"/bench/native.{index}", out], env)
            os.remove(out)
            measure("hdfs-native read, discarded", [python, CLIENT, url, "get", f"/bench/native.{index}", "-"])
            measure("hdfs-native read to file", [python, CLIENT, url, "get", f"/bench/native.{index}", out])
            if sha256_of(out) != source_digest:
                sys.exit("a file read through hdfs-native differs from the source")
            os.remove(out)
            # What hdfs-native wrote reads back identical through Strata's own client.
            run([strata, "dfs", "get", f"/bench/rpc.{index}", out], env)
            if sha256_of(out) != source_digest:
                sys.exit("a file written through hdfs-native reads back different through strata dfs get")
            os.remove(out)
        run([strata, "dfs", "touchz", "/bench/stat-me"], env)
        stats_per_second = stat_rate(python, url, "/bench/stat-me")
        strata_own = json.loads(run([strata, "debug", "metadata-bench", "--files", "10000", "--clients", str(STAT_CLIENTS)], env))
    finally:
        cluster.send_signal(2)
        try:
            cluster.wait(timeout=60)
        except subprocess.TimeoutExpired:
            cluster.kill()
            cluster.wait()
        log.close()
        shutil.rmtree(cluster_dir, ignore_errors=True)

    medians = {key: statistics.median(values) for key, values in speeds.items()}
    print(f"\n{size >> 20} MiB of make-logs.py output, replication 3, same cluster and run; median of {RUNS} runs each, each after sync")
    for key, values in speeds.items():
        print(f"  {key:<28} " + "  ".join(f"{value / 1e6:6.0f}" for value in values) + f"    median {medians[key] / 1e6:6.0f} MB/s")
    # The machine's limit for each transfer as its client and servers do it: every core busy for
    # the CPU seconds it took (client process plus cluster process, user and system).
    cores = os.cpu_count()
    cpu_medians = {key: statistics.median(values) for key, values in cpu_seconds.items()}
    client_medians = {key: statistics.median(values) for key, values in client_cpu_seconds.items()}
    bounds = {key: size / (cpu_medians[key] / cores) for key in kinds}
    print(f"\nCPU seconds per transfer, client and cluster processes (user and system), and the speed if all {cores} cores were busy:")
    for key in kinds:
        print(f"  {key:<28} " + "  ".join(f"{value:6.2f}" for value in cpu_seconds[key])
              + f"    median {cpu_medians[key]:5.2f} s (client {client_medians[key]:5.2f})"
              + f"    bound {bounds[key] / 1e6:6.0f} MB/s    reached {medians[key] / bounds[key]:.2f}")
    # The best hdfs-native could do here: its own client's CPU (fixed: it checks a software
    # CRC32C per 512 bytes) plus all that Strata's client and cluster spend on the same transfer
    # (which compresses or decompresses the same frames and stores or reads them), every core busy.
    write_floor = (client_medians["hdfs-native write"] + cpu_medians["dfs put"]) / cores
    read_floor = (client_medians["hdfs-native read, discarded"] + cpu_medians["dfs get"]) / cores
    print(f"  hdfs-native write at best: its client's CPU + all of dfs put's, on {cores} cores: "
          f"{size / write_floor / 1e6:6.0f} MB/s = {size / write_floor / medians['dfs put']:.3f} of dfs put")
    print(f"  hdfs-native read at best: its client's CPU + all of dfs get's, on {cores} cores: "
          f"{size / read_floor / 1e6:6.0f} MB/s = {size / read_floor / medians['dfs get']:.3f} of dfs get")
    for key in ("dfs put", "hdfs-native write"):
        print(f"  {key}: the cluster process wrote {statistics.median(cluster_written[key]) / size:.2f} bytes per byte of the file"
              " (files and sockets: its replicas and the pipeline; /proc/PID/io wchar)")
    write_ratio = medians["hdfs-native write"] / medians["dfs put"]
    read_ratio = medians["hdfs-native read, discarded"] / medians["dfs get"]
    print(f"  hdfs-native write                 {write_ratio:.3f} of dfs put")
    print(f"  hdfs-native read, discarded       {read_ratio:.3f} of dfs get (the servers' speed)")
    print(f"  hdfs-native read to file          {medians['hdfs-native read to file'] / medians['dfs get']:.3f} of dfs get"
          " (Python writing through the page cache; dfs get writes with direct I/O)")
    print(f"\ngetFileInfo: {STAT_CLIENTS} hdfs-native client processes, {STAT_SECONDS:.0f} s from one instant, one connection each")
    print(f"  hdfs-native getFileInfo           {stats_per_second:8.0f} calls/s")
    print(f"  context: Strata's own RPC, {STAT_CLIENTS} connections from one process (strata debug metadata-bench): "
          f"{strata_own['statPerSecond']:.0f} stats/s")
    checks = [
        ("hdfs-native write / dfs put", write_ratio, 0.7),
        ("hdfs-native read / dfs get", read_ratio, 0.7),
        ("getFileInfo calls/s, 16 clients", stats_per_second, 20000),
    ]
    print(f"\n{'check':<36}{'value':>10}  target")
    for label, value, target in checks:
        print(f"{label:<36}{value:>10.3f}  >= {target:<8} {'PASS' if value >= target else 'FAIL'}")


if __name__ == "__main__":
    main()
