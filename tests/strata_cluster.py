"""`strata cluster up` for the Python client tests: started on free loopback ports, waited for,
and stopped with Ctrl-C (SIGINT) afterwards. Each test directory's conftest.py uses it."""

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def cluster_up(prefix, arguments, timeout=60):
    """Runs `strata cluster up --data DIR ARGUMENTS...` until the block ends; yields the
    temporary directory it keeps its data and `cluster.log` in. The directory is open to
    other users (tasks run as `nobody` reach their sandboxes in it by path). The cron service
    takes a free port unless `--cron-port` is among the arguments (its default, 4400, may be
    taken)."""
    if "--cron-port" not in arguments:
        arguments = [*arguments, "--cron-port", str(free_port())]
    binary = os.environ.get("STRATA_BIN", os.path.join(os.path.dirname(__file__), "..", ".build", "debug", "strata"))
    data = tempfile.mkdtemp(prefix=prefix)
    os.chmod(data, 0o755)
    log = open(os.path.join(data, "cluster.log"), "w+")
    process = subprocess.Popen([binary, "cluster", "up", "--data", os.path.join(data, "cluster"), *arguments],
                               stdout=log, stderr=subprocess.STDOUT)
    deadline = time.time() + timeout
    while True:
        log.seek(0)
        if "Press Ctrl-C" in log.read():
            break
        if process.poll() is not None or time.time() > deadline:
            log.seek(0)
            process.kill()
            raise RuntimeError("strata cluster up did not start:\n" + log.read())
        time.sleep(0.1)
    try:
        yield {"directory": data, "pid": process.pid}
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()
        shutil.rmtree(data, ignore_errors=True)
