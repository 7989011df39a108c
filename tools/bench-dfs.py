#!/usr/bin/env python3
"""`tools/bench dfs`: one name node and three data nodes on this machine (replication 3).

Puts and gets 1 GiB of make-logs.py output and 1 GiB of random bytes, runs the metadata
benchmark (create, stat, list, delete 10,000 empty files with 16 concurrent clients) and the
name node memory measurement (1,000,000 files), and measures in the same run the machine's own
limits: single-core libzstd level 1 compress/decompress on the same data, and what the disk
takes of the work a replication-3 put gives it (right after each random get, as the disk's speed
drifts): three `dd` writers started together, each copying the random file to a new file on the
same disk, fsync'd, once through the page cache and once with O_DIRECT. Every result is printed
as a ratio to those limits."""
import json
import os
import re
import shutil
import signal
import statistics
import socket
import subprocess
import sys
import time

MIB = 1024 * 1024


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(args, env=None, capture=True):
    result = subprocess.run(args, env=env, capture_output=capture, text=True)
    if result.returncode != 0:
        sys.exit(f"failed: {' '.join(args)}\n{result.stdout}\n{result.stderr}")
    return result.stdout


def timed(args, env):
    # Start each transfer with no dirty pages left from the one before: writeback of earlier
    # gigabytes would otherwise compete with this one for the disk and the page cache.
    os.sync()
    started = time.monotonic()
    run(args, env)
    return time.monotonic() - started


# Each transfer and each single-core codec measurement runs RUNS times; medians are compared.
RUNS = int(os.environ.get("STRATA_BENCH_RUNS", "3"))


def median_codec_speed(strata, path):
    samples = [json.loads(run([strata, "debug", "codec-speed", path])) for _ in range(RUNS)]
    return {key: statistics.median(sample[key] for sample in samples) for key in ("compressMBps", "decompressMBps")}


def dd_copy_speed(source, directory, flag, copies=1):
    # `copies` dd runs one after another, each copying `source` to a new file on the disk under
    # test (`conv=fsync` or `oflag=direct`); bytes per second over all of them. The files stay
    # until the last run ends, as a put's replicas do.
    targets = [os.path.join(directory, f"dd.{index}.tmp") for index in range(copies)]
    copied = 0
    seconds = 0.0
    try:
        for target in targets:
            result = subprocess.run(["dd", f"if={source}", f"of={target}", "bs=4M", flag], capture_output=True, text=True)
            match = re.search(r"(\d+) bytes .* copied, ([\d.]+) s", result.stderr)
            if not match:
                sys.exit(f"cannot parse dd output: {result.stderr}")
            copied += int(match.group(1))
            seconds += float(match.group(2))
    finally:
        for target in targets:
            if os.path.exists(target):
                os.remove(target)
    return copied / seconds


def dd_concurrent_speed(source, directory, flags, writers=3):
    # `writers` dd runs started together, each copying `source` to its own new file on the disk
    # under test: what a replication-3 put asks of a disk its three data nodes share. Combined
    # bytes over the wall time until the last one finishes.
    targets = [os.path.join(directory, f"dd.together.{index}.tmp") for index in range(writers)]
    try:
        started = time.monotonic()
        processes = [
            subprocess.Popen(
                ["dd", f"if={source}", f"of={target}", "bs=4M", *flags], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            for target in targets
        ]
        # dd writes to stderr only when it ends, so waiting for each in turn cannot stall another.
        outputs = [(process.communicate()[1], process.returncode) for process in processes]
        seconds = time.monotonic() - started
        copied = 0
        for stderr, returncode in outputs:
            match = re.search(r"(\d+) bytes .* copied", stderr)
            if returncode != 0 or not match:
                sys.exit(f"dd {' '.join(flags)} failed: {stderr}")
            copied += int(match.group(1))
    finally:
        for target in targets:
            if os.path.exists(target):
                os.remove(target)
    return copied / seconds


# The two ways three writers can give the disk a put's bytes: through the page cache, as the data
# nodes write, and with direct I/O; each fsync'd at the end, as a replica is when it closes.
CONCURRENT_DD_FLAGS = {"fsync": ["conv=fsync"], "direct": ["oflag=direct", "conv=fsync"]}


def dd_speed(source, directory, copies):
    # The random file's bytes, not /dev/zero: a virtual disk may store runs of zeros for less.
    return dd_copy_speed(source, directory, "conv=fsync", copies)


def direct_copy_speed(source, directory):
    # What the disk takes for the get's own writes: the same bytes copied to a new file with
    # direct I/O (context for the get figures, not a target).
    return dd_copy_speed(source, directory, "oflag=direct")


def main():
    strata, workdir, logs, random_file = sys.argv[1:5]
    size = os.path.getsize(logs)
    os.makedirs(workdir, exist_ok=True)
    cluster_dir = os.path.join(workdir, "cluster")
    shutil.rmtree(cluster_dir, ignore_errors=True)
    port = free_port()
    env = dict(os.environ, STRATA_NAMENODE=f"127.0.0.1:{port}")

    print("measuring the machine: single-core zstd-1 (dd runs beside the transfers)", file=sys.stderr)
    codec_logs = median_codec_speed(strata, logs)
    codec_random = median_codec_speed(strata, random_file)

    print("starting the cluster", file=sys.stderr)
    log = open(os.path.join(workdir, "cluster.log"), "w")
    cluster = subprocess.Popen([strata, "cluster", "up", "--no-compute", "--data", cluster_dir, "--port", str(port)], stdout=log, stderr=log)
    try:
        for _ in range(300):
            probe = subprocess.run([strata, "dfsadmin", "safemode", "get"], env=env, capture_output=True, text=True)
            if "OFF" in probe.stdout:
                break
            time.sleep(0.2)
        else:
            sys.exit("cluster did not start")
        run([strata, "dfs", "mkdir", "-p", "/bench"], env)
        results = {}
        runs = {}
        for name, path in (("logs", logs), ("random", random_file)):
            print(f"put/get {name}, {RUNS} times", file=sys.stderr)
            out = os.path.join(workdir, f"{name}.copy")
            # Each run writes a new file: replacing the last one would have the data nodes
            # delete its replicas while the next transfer is measured.
            for index in range(RUNS):
                target = f"/bench/{name}" if index == 0 else f"/bench/{name}.{index}"
                # Every transfer starts with the disk idle, as the dd runs do: sync waits for the
                # writes and discards (the root fs here is mounted with `discard`) of files the
                # last steps wrote and removed.
                os.sync()
                runs.setdefault(f"{name} put", []).append(size / timed([strata, "dfs", "put", path, target], env))
                if os.path.exists(out):
                    os.remove(out)
                os.sync()
                runs.setdefault(f"{name} get", []).append(size / timed([strata, "dfs", "get", target, out], env))
                if subprocess.run(["cmp", "-s", path, out]).returncode != 0:
                    sys.exit(f"get of {name} returned different bytes")
                os.remove(out)
                # The disk's own speed, measured right after the transfers it bounds: it varies
                # from minute to minute on a virtual disk, so one early sample misleads.
                os.sync()
                if name == "logs":
                    runs.setdefault("direct copy", []).append(direct_copy_speed(path, workdir))
                else:
                    # A replication-3 put has its three data nodes write the file at once to
                    # this one disk, so the yardstick is three writers started together; the
                    # faster of page-cache and direct writes is what the disk can take. Which
                    # of the two goes first alternates, so neither always meets a disk still
                    # busy with the other. Three copies one after another (the yardstick until
                    # 2026-12-03) and one copy alone are measured too, as context.
                    kinds = ["fsync", "direct"] if index % 2 == 0 else ["direct", "fsync"]
                    for kind in kinds:
                        runs.setdefault(f"dd together {kind}", []).append(
                            dd_concurrent_speed(path, workdir, CONCURRENT_DD_FLAGS[kind]))
                        os.sync()
                    runs.setdefault("dd fsync", []).append(dd_speed(path, workdir, copies=3))
                    os.sync()
                    runs.setdefault("dd fsync one copy", []).append(dd_speed(path, workdir, copies=1))
        direct_copy = statistics.median(runs.pop("direct copy"))
        together_runs = {kind: runs.pop(f"dd together {kind}") for kind in CONCURRENT_DD_FLAGS}
        together = {kind: statistics.median(values) for kind, values in together_runs.items()}
        dd_kind = max(together, key=together.get)
        dd = together[dd_kind]
        sequential_runs = runs.pop("dd fsync")
        sequential = statistics.median(sequential_runs)
        dd_one_runs = runs.pop("dd fsync one copy")
        dd_one = statistics.median(dd_one_runs)
        results = {key: statistics.median(values) for key, values in runs.items()}
        du = json.loads(run([strata, "dfs", "du", "--json", "/bench/logs"], env))
        stored = du[0]["storedBytes"]
        print("metadata: 10,000 files, 16 clients", file=sys.stderr)
        metadata = json.loads(run([strata, "debug", "metadata-bench", "--files", "10000", "--clients", "16"], env))
    finally:
        cluster.send_signal(signal.SIGINT)
        cluster.wait(timeout=60)
    print("name node memory: 1,000,000 files", file=sys.stderr)
    memory = json.loads(run([strata, "debug", "namespace-memory", "--files", "1000000"]))
    shutil.rmtree(cluster_dir, ignore_errors=True)

    def mbps(value):
        return f"{value / 1e6:8.0f} MB/s"

    print(f"\nmachine limits (same run)")
    print(f"  zstd-1 compress, one core, logs     {codec_logs['compressMBps']:8.0f} MB/s")
    print(f"  zstd-1 decompress, one core, logs   {codec_logs['decompressMBps']:8.0f} MB/s")
    labels = {"fsync": "conv=fsync", "direct": "oflag=direct conv=fsync"}
    print(f"  dd random file, 3 writers together  {mbps(dd)}   (the random put's yardstick: the faster of the two below,"
          f" {labels[dd_kind]})")
    for kind, label in labels.items():
        print(f"    {label:<32}{mbps(together[kind])}   (median of {RUNS}, one after each random get;"
              f" runs: {', '.join(f'{v / 1e6:.0f}' for v in together_runs[kind])})")
    print(f"  dd conv=fsync, random file x 3 in turn {mbps(sequential)}   (context: the yardstick until 2026-12-03;"
          f" runs: {', '.join(f'{v / 1e6:.0f}' for v in sequential_runs)})")
    print(f"  dd conv=fsync, random file x 1    {mbps(dd_one)}   (context; runs: {', '.join(f'{v / 1e6:.0f}' for v in dd_one_runs)})")
    print(f"  dd oflag=direct, logs to a new file {mbps(direct_copy)}   (median of {RUNS}, one after each log get)")
    print(f"\nresults ({size // MIB} MiB each, replication 3; median of {RUNS} runs)")
    for name, value in results.items():
        print(f"  {name:<34} {mbps(value)}   (runs: {', '.join(f'{v / 1e6:.0f}' for v in runs[name])})")
    print(f"  logs stored on disk (3 replicas)   {stored} bytes ({stored / (size * 3):.3f} of raw x 3)")
    print(f"  create / stat / delete per second  {metadata['createPerSecond']:.0f} / {metadata['statPerSecond']:.0f} / {metadata['deletePerSecond']:.0f}")
    print(f"  create + close (2 calls) per second {metadata['createAndClosePerSecond']:.0f}")
    print(f"  list {int(metadata['listedEntries']):,} entries                {metadata['listSeconds'] * 1000:.0f} ms")
    print(f"  name node heap per file            {memory['bytesPerFile']:.0f} bytes")

    checks = [
        ("log put / single-core zstd-1 compress", results["logs put"] / (codec_logs["compressMBps"] * 1e6), ">=", 1.0),
        ("log get / single-core zstd-1 decompress", results["logs get"] / (codec_logs["decompressMBps"] * 1e6), ">=", 1.0),
        ("random put / (3-writer dd / 3)", results["random put"] / (dd / 3), ">=", 0.8),
        ("logs stored bytes / (raw x replication)", stored / (size * 3), "<=", 0.3),
        ("creates per second", metadata["createPerSecond"], ">=", 5000),
        ("stats per second", metadata["statPerSecond"], ">=", 20000),
        ("name node bytes per file", memory["bytesPerFile"], "<=", 250),
    ]
    print(f"\ncontext: log get / dd oflag=direct of the same file  {results['logs get'] / direct_copy:.3f}"
          " (a get writes every byte to this disk)")
    print(f"context: random put / (sequential 3-copy dd / 3)  {results['random put'] / (sequential / 3):.3f}"
          " (three copies one after another: the yardstick until 2026-12-03)")
    print(f"context: random put / (one-copy dd / 3)           {results['random put'] / (dd_one / 3):.3f}"
          " (a dd of one copy: a third of the put's bytes)")
    print(f"\n{'check':<44}{'value':>10}  target")
    failed = 0
    for label, value, relation, target in checks:
        ok = value >= target if relation == ">=" else value <= target
        failed += 0 if ok else 1
        print(f"{label:<44}{value:>10.3f}  {relation} {target:<8} {'PASS' if ok else 'FAIL'}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
