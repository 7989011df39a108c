"""The `chronos-python` client from PyPI, unmodified, against Strata's cron service: add a scheduled
job and a job that depends on it, list and search them, see the dependent job run after its
parent succeeds, run the parent by hand (the child follows again), read a job's stats and the
dependency graph, delete both."""

import datetime
import json
import time
import urllib.request

import pytest
from chronos import ChronosClient

PARENT = "extract"
CHILD = "load"


def master_jobs(cron, name):
    with urllib.request.urlopen(f"{cron['master']}/api/v1/jobs?label=strata.cron.job={name}", timeout=10) as response:
        return [(job["id"], job["state"]) for job in json.load(response)]


def failed_attempts(cron, name):
    """A job's runs whose attempt failed and that wait to be retried (Strata's history endpoint;
    Chronos' counts show a failure only once the retries are spent, minutes later), each with
    what the cluster's log says of it."""
    with urllib.request.urlopen(f"http://{cron['server']}/v1/scheduler/job/{name}/history", timeout=10) as response:
        history = json.load(response)
    waiting = [run["runId"] for run in history["inFlight"] if run["state"] == "waitingToRetry"]
    with open(cron["log"]) as log:
        lines = log.read().splitlines()
    return {run: [line for line in lines if run in line] for run in waiting}


def wait_for_counts(client, cron, counts, timeout=90):
    """Polls `list()` until every job in `counts` has at least that many successes; fails at
    once when one of their runs failed an attempt."""
    deadline = time.time() + timeout
    while True:
        jobs = {job["name"]: job for job in client.list()}
        if all(jobs.get(name, {}).get("successCount", 0) >= count for name, count in counts.items()):
            return jobs
        failed = {name: failed_attempts(cron, name) for name in counts}
        if any(failed.values()):
            raise AssertionError(f"runs failed: {failed}")
        if time.time() > deadline:
            seen = {name: (job["successCount"], job["errorCount"]) for name, job in jobs.items()}
            raise AssertionError(f"wanted successes {counts}, have (successes, errors) {seen}; "
                                 f"the master's jobs: {[master_jobs(cron, name) for name in counts]}")
        time.sleep(0.2)


def job(name, command, **fields):
    # Chronos' client insists on command, name, owner and disabled. Runs run as nobody (agents
    # refuse root tasks) and ask for little, so they fit any agent.
    return {"name": name, "command": command, "owner": "ops@example.com", "disabled": False, "runAsUser": "nobody",
            "cpus": 0.1, "mem": 32, "disk": 1, **fields}


def test_scheduled_and_dependent_jobs(cron):
    client = ChronosClient(cron["server"])

    # The parent fires once, a few seconds from now (time to add its child), then hourly.
    start = (datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=3)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert client.add(job(PARENT, "echo extracting", schedule=f"R/{start}/PT1H", epsilon="PT30S")) is None
    assert client.add(job(CHILD, "echo loading", parents=[PARENT])) is None

    listed = {job["name"]: job for job in client.list()}
    assert sorted(listed) == sorted([PARENT, CHILD])
    assert listed[PARENT]["schedule"] == f"R/{start}/PT1H" and listed[PARENT]["owner"] == "ops@example.com"
    assert listed[CHILD]["parents"] == [PARENT]
    assert [found["name"] for found in client.search(name="loa")] == [CHILD]
    assert [found["name"] for found in client.search(command="extracting")] == [PARENT]

    # The child runs once its parent has succeeded, and after it.
    jobs = wait_for_counts(client, cron, {PARENT: 1, CHILD: 1})
    assert jobs[PARENT]["errorCount"] == 0 and jobs[CHILD]["errorCount"] == 0
    assert jobs[CHILD]["lastSuccess"] >= jobs[PARENT]["lastSuccess"]

    # A run by hand counts as the parent's success too: the child follows it again.
    assert client.run(PARENT) is None
    jobs = wait_for_counts(client, cron, {PARENT: 2, CHILD: 2})
    assert jobs[CHILD]["lastSuccess"] >= jobs[PARENT]["lastSuccess"]

    stats = client.job_stat(PARENT)
    assert stats["histogram"]["count"] == 2
    assert [task["status"] for task in stats["taskStatHistory"]] == ["Success", "Success"]
    assert all(task["jobName"] == PARENT for task in stats["taskStatHistory"])

    graph = client.scheduler_graph()
    assert f"node,{PARENT},success,idle" in graph and f"node,{CHILD},success,idle" in graph
    assert f"link,{PARENT},{CHILD}" in graph

    # An update keeps the counts; deleting both leaves nothing.
    assert client.update(job(PARENT, "echo extracting again", schedule=f"R/{start}/PT1H")) is None
    updated = {job["name"]: job for job in client.list()}[PARENT]
    assert updated["command"] == "echo extracting again" and updated["successCount"] == 2
    assert client.delete(CHILD) is None
    assert client.delete(PARENT) is None
    assert client.list() == []


def test_agents_offer_the_cpus_given_and_measure_the_rest(cron):
    """`strata cluster up --agent-resources cpus:8`: each agent offers 8 cpus, and memory and
    disk measured on the machine (Mesos' --resources replaces only the amounts it gives), so a
    Chronos job with the default disk (256 MB) can be placed."""
    with urllib.request.urlopen(f"{cron['master']}/master/state", timeout=10) as response:
        agents = json.load(response)["agents"]
    assert agents, "no agent registered"
    for agent in agents:
        resources = agent["info"]["resources"]
        assert resources["cpus"] == 8, agent
        assert resources["memMB"] > 0 and resources["diskMB"] >= 256, agent

