#!/usr/bin/env python3
"""`tools/bench webhdfs`: upload and download 1 GiB of make-logs.py output through WebHDFS (curl,
following the name node's redirect to a data node) and with the native `strata dfs put/get`, in
the same run on the same cluster, and print WebHDFS speed as a ratio to native speed.

The download is measured twice: curl discarding the bytes (the server's speed: what the check
uses) and curl writing them to a file (what a user sees, bounded by how curl writes files: through
the page cache, in small writes; `curl file copy` shows that bound). `strata dfs get` writes its
file with direct I/O, which curl cannot be asked to do."""
import getpass
import os
import shutil
import signal
import socket
import subprocess
import statistics
import sys
import time


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def timed(args, env):
    os.sync()
    started = time.monotonic()
    result = subprocess.run(args, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"failed: {' '.join(args)}\n{result.stdout}\n{result.stderr}")
    return time.monotonic() - started


RUNS = int(os.environ.get("STRATA_BENCH_RUNS", "3"))


def main():
    strata, workdir, logs = sys.argv[1:4]
    size = os.path.getsize(logs)
    os.makedirs(workdir, exist_ok=True)
    cluster_dir = os.path.join(workdir, "cluster")
    shutil.rmtree(cluster_dir, ignore_errors=True)
    port, http = free_port(), free_port()
    user = getpass.getuser()
    env = dict(os.environ, STRATA_NAMENODE=f"127.0.0.1:{port}", STRATA_USER=user)
    log = open(os.path.join(workdir, "cluster.log"), "w")
    cluster = subprocess.Popen(
        [strata, "cluster", "up", "--no-compute", "--data", cluster_dir, "--port", str(port), "--http-port", str(http)], stdout=log, stderr=log)
    base = f"http://127.0.0.1:{http}/webhdfs/v1"
    try:
        for _ in range(300):
            if "OFF" in subprocess.run([strata, "dfsadmin", "safemode", "get"], env=env, capture_output=True, text=True).stdout:
                break
            time.sleep(0.2)
        else:
            sys.exit("cluster did not start")
        subprocess.run([strata, "dfs", "mkdir", "-p", "/bench"], env=env, check=True, capture_output=True)
        out = os.path.join(workdir, "copy")
        # Each transfer runs RUNS times, the four kinds taking turns so that they share the
        # machine's state; the median of each is compared.
        speeds = {"native put": [], "native get": [], "web put": [], "web get": [], "web get to file": [], "curl file copy": []}
        # Each run writes new files: replacing the last ones would have the data nodes delete
        # their replicas while the next transfer is measured.
        for index in range(RUNS):
            speeds["native put"].append(size / timed([strata, "dfs", "put", logs, f"/bench/native.{index}"], env))
            if os.path.exists(out):
                os.remove(out)
            speeds["native get"].append(size / timed([strata, "dfs", "get", f"/bench/native.{index}", out], env))
            os.remove(out)
            speeds["web put"].append(size / timed(
                ["curl", "-sS", "-f", "-L", "-X", "PUT", "-T", logs, "-H", "Content-Type: application/octet-stream",
                 f"{base}/bench/web.{index}?op=CREATE&user.name={user}"], env))
            speeds["web get"].append(size / timed(["curl", "-sS", "-f", "-L", "-o", "/dev/null", f"{base}/bench/web.{index}?op=OPEN&user.name={user}"], env))
            speeds["web get to file"].append(size / timed(["curl", "-sS", "-f", "-L", "-o", out, f"{base}/bench/web.{index}?op=OPEN&user.name={user}"], env))
            if subprocess.run(["cmp", "-s", logs, out]).returncode != 0:
                sys.exit("WebHDFS download differs from the uploaded file")
            os.remove(out)
            # The client's own limit: curl copying the same file from the page cache to disk.
            speeds["curl file copy"].append(size / timed(["curl", "-sS", "-o", out, "file://" + os.path.abspath(logs)], env))
            os.remove(out)
        native_put, native_get, web_put, web_get, web_get_file, curl_copy = (
            statistics.median(speeds[key]) for key in ("native put", "native get", "web put", "web get", "web get to file", "curl file copy"))
    finally:
        cluster.send_signal(signal.SIGINT)
        cluster.wait(timeout=60)
        shutil.rmtree(cluster_dir, ignore_errors=True)

    print(f"\n{size >> 20} MiB of logs, replication 3, same cluster and run; median of {RUNS} runs each")
    for key, values in speeds.items():
        print(f"  {key:<16} " + "  ".join(f"{value / 1e6:6.0f}" for value in values) + " MB/s")
    print(f"  native put  {native_put / 1e6:8.0f} MB/s    WebHDFS CREATE  {web_put / 1e6:8.0f} MB/s")
    print(f"  native get  {native_get / 1e6:8.0f} MB/s    WebHDFS OPEN    {web_get / 1e6:8.0f} MB/s (curl discards the bytes)")
    print(f"                                 WebHDFS OPEN    {web_get_file / 1e6:8.0f} MB/s (curl writes a file:"
          f" {web_get_file / native_get:.3f} of native get)")
    print(f"  curl alone, file:// copy of the same file to the same disk  {curl_copy / 1e6:8.0f} MB/s"
          f"  (WebHDFS OPEN to a file is {web_get_file / curl_copy:.3f} of it)")
    checks = [("WebHDFS upload / native put", web_put / native_put), ("WebHDFS download (discarded) / native get", web_get / native_get)]
    print(f"\n{'check':<42}{'ratio':>8}  target")
    failed = 0
    for label, value in checks:
        ok = value >= 0.7
        failed += 0 if ok else 1
        print(f"{label:<42}{value:>8.3f}  >= 0.7    {'PASS' if ok else 'FAIL'}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
