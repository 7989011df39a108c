"""Starts a Strata cluster (`strata cluster up`) on free loopback ports for the WebHDFS client tests."""

import getpass
import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from strata_cluster import cluster_up, free_port  # noqa: E402


@pytest.fixture(scope="session")
def cluster():
    rpc_port, http_port = free_port(), free_port()
    with cluster_up("strata-webhdfs-", ["--no-compute", "--port", str(rpc_port), "--http-port", str(http_port)]) as running:
        yield {"url": f"http://127.0.0.1:{http_port}", "port": http_port, "user": getpass.getuser(), "pid": running["pid"]}
