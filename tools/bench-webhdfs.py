#!/usr/bin/env python3
"""`tools/bench webhdfs`: upload and download 1 GiB of make-logs.py output through WebHDFS (curl,
following the name node's redirect to a data node) and with the native `strata dfs put/get`, in
the same run on the same cluster, and print WebHDFS speed as a ratio to native speed."""
import getpass
import os
import shutil
import signal
import socket
import subprocess
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
        [strata, "cluster", "up", "--data", cluster_dir, "--port", str(port), "--http-port", str(http)], stdout=log, stderr=log)
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
        native_put = size / timed([strata, "dfs", "put", logs, "/bench/native"], env)
        if os.path.exists(out):
            os.remove(out)
        native_get = size / timed([strata, "dfs", "get", "/bench/native", out], env)
        os.remove(out)
        web_put = size / timed(
            ["curl", "-sS", "-f", "-L", "-X", "PUT", "-T", logs, "-H", "Content-Type: application/octet-stream",
             f"{base}/bench/web?op=CREATE&user.name={user}"], env)
        web_get = size / timed(["curl", "-sS", "-f", "-L", "-o", out, f"{base}/bench/web?op=OPEN&user.name={user}"], env)
        if subprocess.run(["cmp", "-s", logs, out]).returncode != 0:
            sys.exit("WebHDFS download differs from the uploaded file")
        os.remove(out)
    finally:
        cluster.send_signal(signal.SIGINT)
        cluster.wait(timeout=60)
        shutil.rmtree(cluster_dir, ignore_errors=True)

    print(f"\n{size >> 20} MiB of logs, replication 3, same cluster and run")
    print(f"  native put  {native_put / 1e6:8.0f} MB/s    WebHDFS CREATE  {web_put / 1e6:8.0f} MB/s")
    print(f"  native get  {native_get / 1e6:8.0f} MB/s    WebHDFS OPEN    {web_get / 1e6:8.0f} MB/s")
    checks = [("WebHDFS upload / native put", web_put / native_put), ("WebHDFS download / native get", web_get / native_get)]
    print(f"\n{'check':<36}{'ratio':>8}  target")
    failed = 0
    for label, value in checks:
        ok = value >= 0.7
        failed += 0 if ok else 1
        print(f"{label:<36}{value:>8.3f}  >= 0.7    {'PASS' if ok else 'FAIL'}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
