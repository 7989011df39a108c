"""Starts a whole Strata cluster (`strata cluster up`: name node, data nodes, the master, agents,
the registry, the service launcher and the cron service) on free loopback ports for the Chronos
client tests."""

import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from strata_cluster import cluster_up, free_port  # noqa: E402


@pytest.fixture(scope="session")
def cron():
    ports = {name: free_port() for name in ("port", "http-port", "master-port", "registry-port", "launcher-port", "cron-port")}
    # Every agent offers 8 cpus (more than the machine has, as Mesos' --resources allows) and
    # its measured memory and disk.
    arguments = ["--agent-port", "0", "--agent-resources", "cpus:8"]
    for name, port in ports.items():
        arguments += [f"--{name}", str(port)]
    with cluster_up("strata-chronos-", arguments, timeout=120) as running:
        yield {"server": f"127.0.0.1:{ports['cron-port']}", "master": f"http://127.0.0.1:{ports['master-port']}",
               "log": os.path.join(running["directory"], "cluster.log")}
