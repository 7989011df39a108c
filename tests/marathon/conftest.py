"""Starts a whole Strata cluster (`strata cluster up`: name node, data nodes, the master, agents,
the registry and the service launcher) on free loopback ports for the Marathon client tests."""

import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from strata_cluster import cluster_up, free_port  # noqa: E402


@pytest.fixture(scope="session")
def launcher():
    ports = {name: free_port() for name in ("port", "http-port", "master-port", "registry-port", "launcher-port")}
    arguments = ["--agent-port", "0"]
    for name, port in ports.items():
        arguments += [f"--{name}", str(port)]
    with cluster_up("strata-marathon-", arguments, timeout=120) as running:
        yield {"url": f"http://127.0.0.1:{ports['launcher-port']}", "master": f"http://127.0.0.1:{ports['master-port']}",
               "log": os.path.join(running["directory"], "cluster.log")}
