#!/usr/bin/env python3
"""`tools/bench launcher`: the service launcher on a local cluster (`strata cluster up`: name node,
three data nodes, the master, an agent beside each data node, the launcher), end to end.

Replacement: an app of 3 instances of `python3 -m http.server` with an HTTP health check every
second; one instance's process at a time is killed with SIGKILL (found by its task's cgroups),
and the time from the kill to a new instance shown healthy by the launcher's API
(`/v2/apps/{id}/tasks`, polled every 10 ms) is taken, the app settled again before the next kill.
A killed process is a failed task, which the app's backoff delays: run once with Marathon's
first delay, `backoffSeconds` 1 (with `backoffFactor` 1, so the N kills within five minutes do
not compound it: with Marathon's 1.15 the 20th would wait 14 s), and once with `backoffSeconds` 0
(context: the launcher's own part). The yardstick, measured in the same run: the master's launch
of the same service task submitted to it directly (submit -> RUNNING by the master's
timestamps), plus one health-check interval. Context from the master's timestamps per kill: the
kill until the master records the task's end, that end until the replacement is submitted,
submitted until RUNNING, and RUNNING until the launcher's API shows it healthy.

Deployment: an app of 100 instances of `sleep 3600` (0.01 cpus, 16 MB, one port each), from the
POST until the launcher's API shows 100 running and no deployment (client clock, polled every
20 ms), then deleted. The yardstick, in the same run: one batch job of 100 tasks of the same
command and resources submitted to the master (a file of 100 one-KiB blocks, one task per block),
from the POST until the master shows 100 running, then killed. Rounds alternate which goes first.

Tasks run as the user running the script (root here), so the cluster starts with
--allow-root-tasks. Checks are reported, not enforced: the script exits 0 when a check fails and
non-zero only when the run itself breaks."""
import json
import os
import shutil
import signal
import statistics
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

from benchlib import Cluster, percentile

# Kills per backoff setting.
KILLS = int(os.environ.get("STRATA_BENCH_KILLS", "20"))
# Instances of the deployed app, and tasks of the batch job beside it.
INSTANCES = int(os.environ.get("STRATA_BENCH_INSTANCES", "100"))
# Rounds of the deployment and its yardstick.
ROUNDS = int(os.environ.get("STRATA_BENCH_ROUNDS", "3"))
# Direct submissions of the service task for the launch yardstick.
LAUNCHES = int(os.environ.get("STRATA_BENCH_LAUNCHES", "10"))
HEALTH_INTERVAL_SECONDS = 1
SERVE = "exec python3 -m http.server $PORT0 --bind 127.0.0.1"
# How long one wait may take before the run is given up.
WAIT_SECONDS = 120


def request(method, url, body=None):
    # (status, JSON body or None); HTTP errors are answers too.
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as response:
            text = response.read()
            status = response.status
    except urllib.error.HTTPError as error:
        text = error.read()
        status = error.code
    try:
        return status, json.loads(text)
    except ValueError:
        return status, None


def expect(method, url, body=None, statuses=(200, 201)):
    status, reply = request(method, url, body)
    if status not in statuses:
        sys.exit(f"{method} {url}: {status} {reply}")
    return reply


def wait_for(condition, what, timeout=WAIT_SECONDS, interval=0.02):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    sys.exit(f"timed out after {timeout} s waiting for {what}")


def cgroup_roots():
    # The unified hierarchy on cgroup v2; each mounted hierarchy on v1.
    root = "/sys/fs/cgroup"
    if os.path.exists(os.path.join(root, "cgroup.controllers")):
        return [root]
    roots = []
    for name in sorted(os.listdir(root)):
        real = os.path.realpath(os.path.join(root, name))
        if os.path.exists(os.path.join(real, "cgroup.procs")) and real not in roots:
            roots.append(real)
    return roots


def task_processes(agent_id, task_id):
    # The processes in a task's cgroups (`strata/<agent id>/<task id>` in each hierarchy).
    pids = set()
    for root in cgroup_roots():
        try:
            with open(os.path.join(root, "strata", agent_id, task_id, "cgroup.procs")) as file:
                pids.update(int(line) for line in file if line.strip())
        except OSError:
            pass
    return pids


class Launcher:
    def __init__(self, cluster):
        self.cluster = cluster
        self.url = f"http://127.0.0.1:{cluster.launcher_port}"

    def wait_until_serving(self):
        def serving():
            try:
                with urllib.request.urlopen(f"{self.url}/ping", timeout=2) as response:
                    return response.status == 200
            except OSError:
                return False
        wait_for(serving, "the launcher to serve", interval=0.2)

    def tasks(self, app_id):
        return expect("GET", f"{self.url}/v2/apps{app_id}/tasks")["tasks"]

    def deployments(self):
        return expect("GET", f"{self.url}/v2/deployments")

    def services(self, app_id, active=False):
        label = urllib.parse.quote(f"marathon.app={app_id}", safe="")
        reply = expect("GET", f"{self.cluster.master}/api/v1/services?label={label}" + ("&active=true" if active else ""))
        return reply["services"]

    def delete(self, app_id):
        expect("DELETE", f"{self.url}/v2/apps{app_id}")

        def gone():
            status, _ = request("GET", f"{self.url}/v2/apps{app_id}")
            return status == 404 and not self.services(app_id, active=True) and not self.deployments()
        wait_for(gone, f"{app_id} to be removed and its tasks ended", interval=0.1)


def healthy(task):
    results = task.get("healthCheckResults") or []
    return task["state"] == "TASK_RUNNING" and results and all(result["alive"] for result in results)


def instance_of(service):
    return service["job"]["service"]["labels"]["marathon.instance"]


def web_app(app_id, backoff_seconds):
    return {
        "id": app_id, "cmd": SERVE, "cpus": 0.1, "mem": 64, "instances": 3,
        "backoffSeconds": backoff_seconds, "backoffFactor": 1,
        "healthChecks": [{"protocol": "HTTP", "path": "/", "portIndex": 0, "intervalSeconds": HEALTH_INTERVAL_SECONDS,
                          "timeoutSeconds": 1, "gracePeriodSeconds": 15, "maxConsecutiveFailures": 3}],
    }


def settled(launcher, app_id, count):
    tasks = launcher.tasks(app_id)
    return len(tasks) == count and all(healthy(task) for task in tasks) and not launcher.deployments() and tasks


def replacements(launcher, app_id, backoff_seconds):
    # KILLS times: kill the oldest instance's process, time until a new instance is healthy.
    expect("POST", f"{launcher.url}/v2/apps", web_app(app_id, backoff_seconds))
    samples = []
    for _ in range(KILLS):
        tasks = wait_for(lambda: settled(launcher, app_id, 3), f"{app_id} to settle with 3 healthy instances")
        victim = min(tasks, key=lambda task: (task["stagedAt"], task["id"]))
        service = next((s for s in launcher.services(app_id, active=True) if instance_of(s) == victim["id"]), None)
        if service is None or not service.get("task"):
            sys.exit(f"the master shows no task of {victim['id']}")
        attempt = service["task"]["attempt"]
        pids = task_processes(attempt["agentId"], attempt["taskId"])
        if not pids:
            sys.exit(f"no process in the cgroups of task {attempt['taskId']} on {attempt['agentId']}")
        known = {task["id"] for task in tasks}
        killed_ms = time.time() * 1000
        started = time.monotonic()
        for pid in pids:
            os.kill(pid, signal.SIGKILL)

        def replacement():
            fresh = [task for task in launcher.tasks(app_id) if task["id"] not in known and healthy(task)]
            return fresh[0] if fresh else None
        new = wait_for(replacement, f"a healthy replacement of {victim['id']}", interval=0.01)
        seconds = time.monotonic() - started
        healthy_ms = killed_ms + seconds * 1000
        by_instance = {instance_of(s): s for s in launcher.services(app_id)}
        old_attempt = by_instance[victim["id"]]["task"]["attempt"]
        new_service = by_instance[new["id"]]
        new_attempt = new_service["task"]["attempt"]
        ended_ms = old_attempt.get("endedAtMs") or by_instance[victim["id"]]["job"]["endedAtMs"]
        samples.append({
            "seconds": seconds,
            "ended": ended_ms - killed_ms,
            "submitted": new_service["job"]["submittedAtMs"] - ended_ms,
            "running": new_attempt["runningAtMs"] - new_service["job"]["submittedAtMs"],
            "healthy": healthy_ms - new_attempt["runningAtMs"],
            "ended_state": old_attempt["state"],
        })
    launcher.delete(app_id)
    return samples


def direct_launches(cluster, launcher):
    # The yardstick: the app's service task submitted to the master directly, one at a time;
    # submit -> RUNNING by the master's timestamps. The first is a warm-up, not counted.
    samples = []
    for index in range(LAUNCHES + 1):
        body = {"arguments": ["/bin/sh", "-c", SERVE], "inputs": [], "output": "", "cpus": 0.1, "memMB": 64, "maxAttempts": 1,
                "service": {"portCount": 1, "labels": {"bench": "direct"}}}
        job = cluster.submit(body)

        def running():
            detail = cluster.job(job["id"])
            attempts = [task["attempt"] for task in detail["tasks"] if task["attempt"].get("runningAtMs")]
            return (detail, attempts[0]) if attempts else None
        detail, attempt = wait_for(running, f"direct service task {job['id']} to run", interval=0.005)
        if index > 0:
            samples.append(attempt["runningAtMs"] - detail["job"]["submittedAtMs"])
        expect("POST", f"{cluster.master}/api/v1/jobs/{job['id']}/kill?user.name={cluster.user}")
        wait_for(lambda: all(t["attempt"]["state"] not in ("TASK_STAGING", "TASK_STARTING", "TASK_RUNNING")
                             for t in cluster.job(job["id"])["tasks"]), f"direct task {job['id']} to end", interval=0.05)
    return samples


def deploy_round(launcher, app_id):
    # POST -> 100 running and no deployment, by the client's clock; the master's timestamps
    # for context. Then the app is deleted and its tasks waited for.
    body = {"id": app_id, "cmd": "sleep 3600", "cpus": 0.01, "mem": 16, "instances": INSTANCES}
    posted_ms = time.time() * 1000
    started = time.monotonic()
    expect("POST", f"{launcher.url}/v2/apps", body)
    post_seconds = time.monotonic() - started

    def all_running():
        app = expect("GET", f"{launcher.url}/v2/apps{app_id}")["app"]
        return app["tasksRunning"] == INSTANCES and not app["deployments"]
    wait_for(all_running, f"{INSTANCES} running instances of {app_id}")
    seconds = time.monotonic() - started
    services = launcher.services(app_id, active=True)
    if len(services) != INSTANCES:
        sys.exit(f"the master runs {len(services)} tasks of {app_id}, not {INSTANCES}")
    submitted = [s["job"]["submittedAtMs"] for s in services]
    running = [s["task"]["attempt"]["runningAtMs"] for s in services]
    context = {"post": post_seconds, "first submitted": min(submitted) - posted_ms, "last submitted": max(submitted) - posted_ms,
               "last running": max(running) - posted_ms}
    launcher.delete(app_id)
    return seconds, context


def batch_round(cluster, index):
    # One job of INSTANCES tasks over the file of INSTANCES blocks: POST -> all running.
    body = {"arguments": ["sleep", "3600"], "inputs": ["/bench/launcher/blocks"], "output": f"/bench/launcher/out-{index}",
            "cpus": 0.01, "memMB": 16, "maxAttempts": 1}
    posted_ms = time.time() * 1000
    started = time.monotonic()
    job = cluster.submit(body)
    if job["tasks"] != INSTANCES:
        sys.exit(f"the batch job has {job['tasks']} tasks, not {INSTANCES}")
    # The job's `runningTasks` counts placed tasks (staging too): the attempts' states tell.
    wait_for(lambda: sum(task["attempt"]["state"] == "TASK_RUNNING" for task in cluster.job(job["id"])["tasks"]) == INSTANCES,
             f"{INSTANCES} running tasks of {job['id']}")
    seconds = time.monotonic() - started
    detail = cluster.job(job["id"])
    last_running = max(task["attempt"]["runningAtMs"] for task in detail["tasks"])
    context = {"last running": last_running - posted_ms, "by the master": last_running - detail["job"]["submittedAtMs"]}
    expect("POST", f"{cluster.master}/api/v1/jobs/{job['id']}/kill?user.name={cluster.user}")
    wait_for(lambda: all(t["attempt"]["state"] not in ("TASK_STAGING", "TASK_STARTING", "TASK_RUNNING")
                         for t in cluster.job(job["id"])["tasks"]), f"the batch job {job['id']}'s tasks to end", interval=0.1)
    return seconds, context


def main():
    strata, workdir = sys.argv[1:3]
    os.makedirs(workdir, exist_ok=True)
    cluster_dir = os.path.join(workdir, "cluster")
    shutil.rmtree(cluster_dir, ignore_errors=True)
    print("starting the cluster: 3 data nodes, the master, 3 agents, the launcher", file=sys.stderr)
    cluster = Cluster(strata, cluster_dir, os.path.join(workdir, "cluster.log"))
    started = time.monotonic()
    try:
        cluster.wait_until_ready()
        launcher = Launcher(cluster)
        launcher.wait_until_serving()
        # INSTANCES blocks of one KiB, one line each: one batch task per block.
        blocks = os.path.join(workdir, "blocks.txt")
        with open(blocks, "w") as file:
            file.write(("x" * 1023 + "\n") * INSTANCES)
        cluster.dfs("mkdir", "-p", "/bench/launcher")
        cluster.dfs("put", "--block-size", "1k", blocks, "/bench/launcher/blocks")

        print(f"yardstick: {LAUNCHES} service tasks submitted to the master directly", file=sys.stderr)
        direct = direct_launches(cluster, launcher)
        kills = {}
        for backoff in (1, 0):
            print(f"replacement: {KILLS} kills of an instance's process, backoffSeconds {backoff}", file=sys.stderr)
            kills[backoff] = replacements(launcher, f"/bench/web-backoff-{backoff}", backoff)
        deploys, batches = [], []
        for round_index in range(ROUNDS):
            print(f"deployment round {round_index + 1} of {ROUNDS}: {INSTANCES} instances, and a batch job of {INSTANCES} tasks",
                  file=sys.stderr)
            order = ("batch", "launcher") if round_index % 2 == 0 else ("launcher", "batch")
            for kind in order:
                if kind == "batch":
                    batches.append(batch_round(cluster, round_index))
                else:
                    deploys.append(deploy_round(launcher, f"/bench/sleepers-{round_index}"))
    finally:
        cluster.stop()
    shutil.rmtree(cluster_dir, ignore_errors=True)
    run_seconds = time.monotonic() - started

    direct_p50 = percentile(direct, 0.5)
    yardstick = direct_p50 / 1000 + HEALTH_INTERVAL_SECONDS
    print(f"\nreplacement: kill -9 of an instance's process -> a new instance healthy in the launcher's API; app of 3 instances of"
          f" `python3 -m http.server`,\n  HTTP health check every {HEALTH_INTERVAL_SECONDS} s; {KILLS} kills per row, one at a time,"
          " the app settled between; percentiles by nearest rank")
    print(f"  {'app backoff':<26}{'p50':>8}{'p99':>8}{'max':>8}   median phases (master's timestamps): kill -> task ended"
          " -> replacement submitted -> RUNNING -> healthy seen")
    for backoff, samples in kills.items():
        seconds = [s["seconds"] for s in samples]
        label = f"backoffSeconds {backoff}" + (" (factor 1)" if backoff else " (context)")
        phases = " -> ".join(f"{statistics.median(s[key] for s in samples):.0f} ms" for key in ("ended", "submitted", "running", "healthy"))
        states = sorted({s["ended_state"] for s in samples})
        print(f"  {label:<26}{percentile(seconds, 0.5):>6.2f} s{percentile(seconds, 0.99):>6.2f} s{max(seconds):>6.2f} s   {phases}"
              f"  (killed tasks ended {', '.join(states)})")
    print(f"  yardstick: the same service task submitted to the master directly, submit -> RUNNING p50 {direct_p50:.0f} ms"
          f" (p99 {percentile(direct, 0.99):.0f} ms, {len(direct)} tasks), + one {HEALTH_INTERVAL_SECONDS} s health-check interval"
          f" = {yardstick:.2f} s")
    print(f"  replacement p50 with a 1 s backoff / yardstick   {percentile([s['seconds'] for s in kills[1]], 0.5) / yardstick:.2f}")

    deploy_seconds = [seconds for seconds, _ in deploys]
    batch_seconds = [seconds for seconds, _ in batches]
    print(f"\ndeployment: {INSTANCES} instances of `sleep 3600` (0.01 cpus, 16 MB, one port each), POST -> {INSTANCES} running"
          f" and no deployment (client clock); {ROUNDS} rounds")
    # Beside the client's figure, the master's: POST (client clock) -> the last task's RUNNING
    # stamped by the master (same machine clock), which a loaded machine's scheduling does not
    # delay the way it delays the client's polls.
    print(f"  {'':<36}{'seen by the client, per round':<31}{'median':>8}   {'last RUNNING (master), per round':<34}{'median':>8}")
    for label, rounds in (("launcher app (POST /v2/apps)", deploys), ("yardstick: one batch job (master)", batches)):
        seen = [seconds for seconds, _ in rounds]
        stamped = [context["last running"] / 1000 for _, context in rounds]
        print(f"  {label:<36}{'  '.join(f'{v:5.2f}' for v in seen):<31}{statistics.median(seen):>6.2f} s"
              f"   {'  '.join(f'{v:5.2f}' for v in stamped):<34}{statistics.median(stamped):>6.2f} s")
    context = {name: statistics.median(c[name] for _, c in deploys) for name in ("post", "first submitted", "last submitted", "last running")}
    print(f"    launcher (medians): POST answered after {context['post'] * 1000:.0f} ms; by the master's clock, POST -> first instance"
          f" submitted {context['first submitted']:.0f} ms, -> last submitted {context['last submitted']:.0f} ms,"
          f" -> last RUNNING {context['last running']:.0f} ms")
    print(f"    batch job (medians): POST -> last task RUNNING {statistics.median(c['last running'] for _, c in batches):.0f} ms"
          f" (by the master's clock; its own submit -> last RUNNING {statistics.median(c['by the master'] for _, c in batches):.0f} ms)")
    print(f"  launcher / batch job (medians)   {statistics.median(deploy_seconds) / statistics.median(batch_seconds):.2f}")

    replacement_p50 = percentile([s["seconds"] for s in kills[1]], 0.5)
    checks = [
        ("replacement healthy p50 (1 s backoff), s", replacement_p50, "<=", 2),
        (f"deploy {INSTANCES} instances, median s", statistics.median(deploy_seconds), "<=", 20),
    ]
    print(f"\n{'check':<44}{'value':>8}  target")
    for label, value, relation, target in checks:
        ok = value <= target
        print(f"{label:<44}{value:>8.2f}  {relation} {target:<6} {'PASS' if ok else 'FAIL'}")
    print(f"\nrun time {run_seconds:.0f} s; tasks ran as the invoking user ({cluster.user}) on a cluster started with --allow-root-tasks;"
          f" load average {' '.join(open('/proc/loadavg').read().split()[:3])}")


if __name__ == "__main__":
    main()
