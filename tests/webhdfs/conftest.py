"""Starts a Strata cluster (`strata cluster up`) on free loopback ports for the WebHDFS client tests."""

import getpass
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import pytest


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def cluster():
    binary = os.environ.get("STRATA_BIN", os.path.join(os.path.dirname(__file__), "..", "..", ".build", "debug", "strata"))
    data = tempfile.mkdtemp(prefix="strata-webhdfs-")
    rpc_port, http_port = free_port(), free_port()
    log = open(os.path.join(data, "cluster.log"), "w+")
    process = subprocess.Popen(
        [binary, "cluster", "up", "--no-compute", "--data", os.path.join(data, "dfs"), "--port", str(rpc_port), "--http-port", str(http_port)],
        stdout=log, stderr=subprocess.STDOUT)
    deadline = time.time() + 60
    while True:
        log.seek(0)
        if "Press Ctrl-C" in log.read():
            break
        if process.poll() is not None or time.time() > deadline:
            log.seek(0)
            raise RuntimeError("strata cluster up did not start:\n" + log.read())
        time.sleep(0.1)
    try:
        yield {"url": f"http://127.0.0.1:{http_port}", "port": http_port, "user": getpass.getuser(), "pid": process.pid}
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()
        shutil.rmtree(data, ignore_errors=True)
