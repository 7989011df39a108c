"""Starts a Strata cluster (`strata cluster up`) on free loopback ports for the tests of the
hdfs-native client, which speaks Hadoop RPC to the name node's RPC port."""

import getpass
import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from strata_cluster import cluster_up, free_port  # noqa: E402


@pytest.fixture(scope="session")
def cluster():
    rpc_port, http_port = free_port(), free_port()
    with cluster_up("strata-hdfs-native-", ["--no-compute", "--port", str(rpc_port), "--http-port", str(http_port)]) as running:
        yield {
            "url": f"hdfs://127.0.0.1:{rpc_port}",
            "namenode": f"127.0.0.1:{rpc_port}",
            "user": getpass.getuser(),
            "binary": os.environ.get(
                "STRATA_BIN", os.path.join(os.path.dirname(__file__), "..", "..", ".build", "debug", "strata")),
        }


@pytest.fixture(scope="session")
def client(cluster):
    from hdfs_native import Client

    return Client(cluster["url"])
