"""Starts a whole Strata cluster (`strata cluster up`: name node, data nodes, the master, agents,
the registry and the service launcher) on free loopback ports for the Marathon client tests."""

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
def launcher():
    binary = os.environ.get("STRATA_BIN", os.path.join(os.path.dirname(__file__), "..", "..", ".build", "debug", "strata"))
    data = tempfile.mkdtemp(prefix="strata-marathon-")
    # Tasks run as `nobody` in sandboxes under it: reachable by path, as an agent's work
    # directory must be for its tasks' users (mkdtemp makes it 0700).
    os.chmod(data, 0o755)
    ports = {name: free_port() for name in ("port", "http-port", "master-port", "registry-port", "launcher-port")}
    log = open(os.path.join(data, "cluster.log"), "w+")
    arguments = [binary, "cluster", "up", "--data", os.path.join(data, "cluster"), "--agent-port", "0"]
    for name, port in ports.items():
        arguments += [f"--{name}", str(port)]
    process = subprocess.Popen(arguments, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.time() + 120
    while True:
        log.seek(0)
        if "Press Ctrl-C" in log.read():
            break
        if process.poll() is not None or time.time() > deadline:
            log.seek(0)
            raise RuntimeError("strata cluster up did not start:\n" + log.read())
        time.sleep(0.1)
    try:
        yield {"url": f"http://127.0.0.1:{ports['launcher-port']}", "master": f"http://127.0.0.1:{ports['master-port']}",
               "log": os.path.join(data, "cluster.log")}
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()
        shutil.rmtree(data, ignore_errors=True)
