#!/usr/bin/env python3
"""`tools/bench cron`: a local cluster (`strata cluster up`: name node, three data nodes, the
master, an agent beside each data node and the cron service) running many scheduled jobs at once.

The benchmark (issue 16): STRATA_BENCH_CRON_JOBS jobs (1,000) added through Chronos' API
(`POST /v1/scheduler/iso8601`), each `R<minutes>/<start>/PT1M` with the same start, so all of
them fire at the same instants once a minute for STRATA_BENCH_CRON_MINUTES minutes (3). Each run
is the command `true` (`/bin/sh -c true`) with 0.01 cpus and 16 MB. The lateness of a run's start
is the master's `runningAtMs` of its task (taken when the master handles the agent's RUNNING
report) minus the run's scheduled time (from the master job's `strata.cron.run` label). Every job
times every scheduled time must have exactly one master job: a run without one is missed, a run
with more than one (or a master job of a time that was not scheduled) is doubled.

The yardstick, measured in the same run before the cron jobs are added: the master's own launch
latency of the same tasks submitted directly to `POST /api/v1/jobs`, as many at once as the cron
service submits per minute, through as many connections as the cron service's HTTP client keeps
to the master (AsyncHTTPClient's default, 8): `submittedAtMs` to `runningAtMs`, as
`tools/bench jobs` measures launch latency. Printed beside it as context: the same burst from
the instant the client started it (what a client that has all the runs due at one instant can
get), and single jobs one at a time (the master unloaded).

The machine's floor for the same runs, measured in the same run before the cluster's yardstick:
the runs as bare processes with no master, agent or cron service in between. As many
`/bin/sh -c true` as the agents' offers hold at once are started ahead and held (a shell waiting
on a pipe, as an agent holds a run placed ahead of its time), released at one instant, and the
rest are started one by one as slots free (each as a held one ends). A run's start is its release,
or the return of its `posix_spawn`; best of FLOOR_ROUNDS rounds by p99. No scheduler can start the
runs sooner on this machine than its exec and exit of the same processes allow. A second floor
gives each run the isolation an agent gives a task, with still no scheduler: cgroups of its own in
every hierarchy an agent uses (a cpu share and a memory limit), joined by a shell before the
command, a sandbox with stdout and stderr files, and the cgroups removed once it ended (after the
next run is started, as an agent reports an end before it removes the cgroups).

To tell the cron service's part from the master's, each run's lateness is split at the master's
timestamps: scheduled -> submitted (the cron service: its tick, logging the runs' start on the
DFS, the HTTP call), submitted -> staged (the master: logging the job, placement) and staged ->
running (the agent starting the process and reporting it). The cron service submits a run of an
`Allow` job (these are) ahead of its time with the scheduled time as the master job's
`notBefore` (docs/cron.md "Starting on time"), so scheduled -> submitted is then negative; the
runs are also counted by whether their task was staged (placed on an agent) before the
scheduled time, and the lateness of each group is printed: a run staged after its time waited
for an agent's resources (the agents' cpus hold fewer of these tasks than fire at once) and is
started when placed. Per fire time: the first and last submission and the spread of lateness. The cluster process's CPU and the machine's busy share
over the window are printed too (the machine is shared).

Agents: `strata cluster up` offers what the machine has on every agent (all cores, memory less
1 GB, the free disk less 5 GB). A cron job's `disk` of 0 means Chronos' default (256 MB), and
1,000 runs of that are more disk than three agents offer here, so the jobs ask for a disk of
1e-15 MB (the master compares resources with a tolerance of 1e-9), and the yardstick's tasks ask
for the same. STRATA_BENCH_CRON_AGENT_RESOURCES (e.g. `cpus:4`) makes a context run with agents
that offer that instead (`cluster up --agent-resources`); the check is made without it.

STRATA_BENCH_PROFILE=FILE records `perf record -g` of the cluster process over the cron window.

Tasks run as the user running the script (root here), so the cluster starts with
--allow-root-tasks. Checks are reported, not enforced: the script exits 0 when a check fails and
non-zero only when the run itself breaks."""
import calendar
import concurrent.futures
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

from benchlib import Cluster, free_port, http_json, percentile, process_cpu_seconds


def whole_number(name, default):
    text = os.environ.get(name, str(default))
    if not text.isdigit() or int(text) < 1:
        sys.exit(f"{name} must be a whole number of at least 1, not '{text}'")
    return int(text)


# Cron jobs, each firing once a minute, all at the same instants.
JOBS = whole_number("STRATA_BENCH_CRON_JOBS", 1000)
# Minutes they fire in (R<minutes>: one run per minute).
MINUTES = whole_number("STRATA_BENCH_CRON_MINUTES", 3)
# Single jobs one at a time for the unloaded launch latency (context).
SINGLE_LAUNCHES = 30
CPUS = 0.01
MEM_MB = 16
# Not 0: a cron job's 0 means Chronos' 256 MB, and 1,000 of those are more disk than the agents offer.
DISK_MB = 1e-15
# Rounds of the machine's floor (bare processes); the best p99 is kept.
FLOOR_ROUNDS = 3
# The cron service submits through AsyncHTTPClient's pool: at most 8 connections to one host.
SUBMIT_CONNECTIONS = 8
# Connections adding the cron jobs (their stores are batched into the cron service's DFS log).
ADD_CONNECTIONS = 16
# The first fire time is at least this long after the jobs start being added, and the jobs must
# all be stored this long before it.
FIRST_FIRE_MARGIN_SECONDS = max(20, JOBS // 25)
STORED_BEFORE_FIRST_FIRE_SECONDS = 3
# After the last fire time: how long the runs may take to reach the master and end (the runs'
# epsilon is Chronos' 60 s; a run later than that is recorded as missed).
DRAIN_SECONDS = 90
CRON_LABEL = "strata.cron=cron"
BENCH_LABEL = "strata.bench"
# The cron service's default lead (CronConfiguration.submitAheadMs): runs are submitted this
# long before their time, so the measured window starts this much earlier too.
SUBMIT_AHEAD_SECONDS = 10
# A file to record the cluster process's profile in over the cron window (`perf record -g`);
# none by default.
PROFILE = os.environ.get("STRATA_BENCH_PROFILE")
# What every agent offers instead of what it measures (`cluster up --agent-resources`), for a
# context run: with `cpus:4` the three agents hold 1,200 of these tasks, every run of a minute.
# The benchmark's own check is made with the measured offers (unset).
AGENT_RESOURCES = os.environ.get("STRATA_BENCH_CRON_AGENT_RESOURCES")


class CronCluster(Cluster):
    """benchlib's cluster with the cron service on a free port (`--cron-port`) rather than
    Chronos' 4400, which another cluster on this machine may hold."""

    def __init__(self, strata, directory, log_path):
        self.cron_port = free_port()
        self.cron = f"http://127.0.0.1:{self.cron_port}"
        real_popen = subprocess.Popen

        def popen_with_cron_port(args, **kwargs):
            extra = ["--agent-resources", AGENT_RESOURCES] if AGENT_RESOURCES else []
            return real_popen([*args, "--cron-port", str(self.cron_port), *extra], **kwargs)

        subprocess.Popen = popen_with_cron_port
        try:
            super().__init__(strata, directory, log_path)
        finally:
            subprocess.Popen = real_popen

    def wait_until_ready(self):
        super().wait_until_ready()
        for _ in range(300):
            try:
                with urllib.request.urlopen(f"{self.cron}/ping", timeout=2) as response:
                    if response.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.2)
        sys.exit("the cron service did not answer within 60 s")


def cron_call(cluster, method, path, body=None):
    # The cron service answers changes with 204 and no body (Chronos' way).
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(f"{cluster.cron}{path}", data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            text = response.read()
            return json.loads(text) if text else None
    except urllib.error.HTTPError as error:
        sys.exit(f"{method} {path}: {error.code} {error.read().decode(errors='replace')}")


def cron_metrics(cluster):
    return prometheus(f"{cluster.cron}/metrics")


def master_jobs(cluster, label):
    return http_json("GET", f"{cluster.master}/api/v1/jobs?label={urllib.parse.quote(label, safe='')}")


def attempts_by_job(cluster):
    attempts = {}
    for task in http_json("GET", f"{cluster.master}/api/v1/tasks"):
        attempts.setdefault(task["attempt"]["jobId"], []).append(task["attempt"])
    return attempts


def wall_ms():
    return time.time_ns() // 1_000_000


def iso_utc(ms):
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms / 1000)) + f".{ms % 1000:03d}Z"


def scheduled_ms_of_run(run_id):
    # `<job>@<yyyyMMddTHHmmss[.SSS]Z>` (docs/cron.md "Run ids").
    name, stamp = run_id.rsplit("@", 1)
    stamp = stamp.rstrip("Z")
    whole, _, fraction = stamp.partition(".")
    seconds = calendar.timegm(time.strptime(whole, "%Y%m%dT%H%M%S"))
    return name, seconds * 1000 + (int(fraction.ljust(3, "0")) if fraction else 0)


def task_submission(label_value, index):
    # What the cron service submits for a run of a job with `"command": "true"` (CronScheduler
    # +Master's `submission`): a one-task service job with no ports, run once.
    return {
        "arguments": ["/bin/sh", "-c", "true"], "inputs": [], "output": "",
        "cpus": CPUS, "memMB": MEM_MB, "diskMB": DISK_MB, "maxAttempts": 1,
        "service": {"portCount": 0, "labels": {}},
        "environment": {"CHRONOS_JOB_NAME": f"direct-{index:04d}", "STRATA_CRON_SCHEDULED_MS": "0"},
        "labels": {BENCH_LABEL: label_value},
    }


def prometheus(url):
    with urllib.request.urlopen(url, timeout=30) as response:
        values = {}
        for line in response.read().decode().splitlines():
            if line and not line.startswith("#"):
                name, value = line.rsplit(" ", 1)
                values[name] = float(value)
        return values


def master_jobs_by_state(cluster):
    # From the master's /metrics: a count, where listing the jobs (GET /api/v1/jobs) builds a view
    # of every job and so loads the master this benchmark measures.
    metrics = prometheus(f"{cluster.master}/metrics")
    return {state: int(metrics.get(f'strata_master_jobs{{state="{state}"}}', 0))
            for state in ("RUNNING", "COMMITTING", "FINISHED", "FAILED", "KILLED")}


def wait_until_master_idle(cluster, ended_at_least, timeout_seconds):
    # Until at least `ended_at_least` jobs have ended and none is running.
    deadline = time.monotonic() + timeout_seconds
    while True:
        states = master_jobs_by_state(cluster)
        ended = states["FINISHED"] + states["FAILED"] + states["KILLED"]
        if ended >= ended_at_least and states["RUNNING"] + states["COMMITTING"] == 0:
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.5)


def single_launches(cluster):
    # One at a time, each waited for; the first is a warm-up and not counted.
    samples = []
    for index in range(SINGLE_LAUNCHES + 1):
        view = cluster.submit(task_submission("single", index))
        detail = cluster.wait_for_job(view["id"])
        if detail["job"]["state"] != "FINISHED":
            sys.exit(f"job {view['id']} ended {detail['job']['state']}: {detail['job'].get('message')}")
        attempt = detail["tasks"][0]["attempt"]
        if index > 0:
            samples.append(attempt["runningAtMs"] - detail["job"]["submittedAtMs"])
    return samples


def burst(cluster):
    # JOBS submissions at once through SUBMIT_CONNECTIONS connections, as the cron service
    # submits a minute's runs.
    started_ms = wall_ms()
    with concurrent.futures.ThreadPoolExecutor(SUBMIT_CONNECTIONS) as pool:
        views = list(pool.map(lambda index: cluster.submit(task_submission("burst", index)), range(JOBS)))
    submitted_ms = wall_ms()
    ended_before = sum(master_jobs_by_state(cluster).values()) - JOBS
    if not wait_until_master_idle(cluster, ended_before + JOBS, 300):
        sys.exit(f"the {JOBS} yardstick jobs did not all end within 300 s")
    jobs = master_jobs(cluster, f"{BENCH_LABEL}=burst")
    attempts = attempts_by_job(cluster)
    samples = []
    for job in jobs:
        running = [a["runningAtMs"] for a in attempts.get(job["id"], []) if a.get("runningAtMs") is not None]
        if not running:
            sys.exit(f"yardstick job {job['id']} never ran: {job['state']} {job.get('message')}")
        samples.append({"submitted": job["submittedAtMs"], "running": min(running),
                        "staged": min(a["stagedAtMs"] for a in attempts[job["id"]])})
    return {"started": started_ms, "submitted": submitted_ms, "samples": samples, "failed": sum(job["state"] != "FINISHED" for job in jobs),
            "count": len(views)}


def slots_offered(offers):
    # How many of one run's task the agents' offers hold at once (the master's tolerance of 1e-9).
    def fits(available, need):
        return int((available + 1e-9) // need) if need > 0 else JOBS
    return sum(min(fits(offer.get("cpus", 0), CPUS), fits(offer.get("memMB", 0), MEM_MB), fits(offer.get("diskMB", 0), DISK_MB))
               for offer in offers)


def release(held):
    # Lets the held shells (pid, write end of the pipe each waits on) go, all at one instant after
    # a pause for the machine to settle. Returns that instant and each one's start after it (s).
    time.sleep(0.5)
    starts = []
    released = time.monotonic()
    for _, write_end in held:
        os.write(write_end, b"go\n")
        os.close(write_end)
        starts.append(time.monotonic() - released)
    return released, starts


def floor_round(slots):
    # One round of the machine's floor: `slots` held shells released at once, the other runs
    # started as held ones end. Returns each run's start, in ms after the release.
    held = []
    for _ in range(min(slots, JOBS)):
        read_end, write_end = os.pipe()
        pid = os.posix_spawn("/bin/sh", ["/bin/sh", "-c", "read gate <&3; exec 3<&-; exec /bin/sh -c true"], {},
                             file_actions=[(os.POSIX_SPAWN_DUP2, read_end, 3)])
        os.close(read_end)
        held.append((pid, write_end))
    released, starts = release(held)
    running = {pid for pid, _ in held}
    left = JOBS - len(held)
    while running:
        pid, _ = os.wait()
        running.discard(pid)
        if left:
            running.add(os.posix_spawn("/bin/sh", ["/bin/sh", "-c", "true"], {}))
            starts.append(time.monotonic() - released)
            left -= 1
    return [start * 1000 for start in starts]


def machine_floor(slots, isolated=False):
    rounds = [(isolated_floor_round if isolated else floor_round)(slots) for _ in range(FLOOR_ROUNDS)]
    return min(rounds, key=lambda starts: percentile(starts, 0.99))


CGROUP_ROOT = "/sys/fs/cgroup"


def cgroup_hierarchies():
    # The hierarchies an agent puts a task in (TaskCgroup): the unified one on v2; on v1 memory,
    # cpu, cpuacct, pids and freezer, each mounted (cgroup.procs there), once per mount.
    if os.path.exists(f"{CGROUP_ROOT}/cgroup.controllers"):
        return [CGROUP_ROOT]
    found, seen = [], set()
    for controller in ("memory", "cpu", "cpuacct", "pids", "freezer"):
        path = f"{CGROUP_ROOT}/{controller}"
        if os.path.exists(f"{path}/cgroup.procs") and os.path.realpath(path) not in seen:
            seen.add(os.path.realpath(path))
            found.append(path)
    return found


def isolated_floor_round(slots):
    # The floor with an agent's isolation for every run (see the module's text). Only under
    # mounted hierarchies, in a parent of its own that is removed at the end.
    hierarchies = cgroup_hierarchies()
    parent = f"strata-bench-floor-{os.getpid()}"
    sandboxes = os.path.join(os.environ.get("TMPDIR", "/tmp"), parent)
    for hierarchy in hierarchies:
        os.mkdir(f"{hierarchy}/{parent}")
    os.mkdir(sandboxes)
    join = 'for procs do echo $$ > "$procs" || exit 125; done; '

    def prepare(index):
        directories = [f"{hierarchy}/{parent}/r{index}" for hierarchy in hierarchies]
        for directory in directories:
            os.mkdir(directory)
            if directory.startswith(f"{CGROUP_ROOT}/cpu/"):
                with open(f"{directory}/cpu.shares", "w") as file:
                    file.write(str(max(2, round(CPUS * 1024))))
            if directory.startswith(f"{CGROUP_ROOT}/memory/"):
                with open(f"{directory}/memory.limit_in_bytes", "w") as file:
                    file.write(str(int(MEM_MB * 1048576)))
        sandbox = f"{sandboxes}/r{index}"
        os.mkdir(sandbox)
        output = os.open(f"{sandbox}/stdout", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        error = os.open(f"{sandbox}/stderr", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        return directories, [f"{directory}/cgroup.procs" for directory in directories], output, error

    def spawn(script, procs, output, error, extra=()):
        pid = os.posix_spawn("/bin/sh", ["/bin/sh", "-c", script, "strata-floor", *procs], {},
                             file_actions=[(os.POSIX_SPAWN_DUP2, output, 1), (os.POSIX_SPAWN_DUP2, error, 2), *extra])
        os.close(output)
        os.close(error)
        return pid

    cgroups = {}
    try:
        held = []
        for index in range(min(slots, JOBS)):
            directories, procs, output, error = prepare(index)
            read_end, write_end = os.pipe()
            pid = spawn(join + "read gate <&3; exec 3<&-; exec /bin/sh -c true", procs, output, error,
                        [(os.POSIX_SPAWN_DUP2, read_end, 3)])
            os.close(read_end)
            cgroups[pid] = directories
            held.append((pid, write_end))
        released, starts = release(held)
        running = set(cgroups)
        next_index = len(held)
        while running:
            pid, _ = os.wait()
            running.discard(pid)
            if next_index < JOBS:
                directories, procs, output, error = prepare(next_index)
                started = spawn(join + "exec /bin/sh -c true", procs, output, error)
                starts.append(time.monotonic() - released)
                cgroups[started] = directories
                running.add(started)
                next_index += 1
            for directory in cgroups.pop(pid):
                os.rmdir(directory)
        return [start * 1000 for start in starts]
    finally:
        for directories in cgroups.values():
            for directory in directories:
                try:
                    os.rmdir(directory)
                except OSError:
                    pass
        for hierarchy in hierarchies:
            os.rmdir(f"{hierarchy}/{parent}")
        shutil.rmtree(sandboxes, ignore_errors=True)


def machine_cpu_ticks():
    # The machine's CPU time so far, all cores: (busy, idle and iowait) in clock ticks.
    with open("/proc/stat") as file:
        values = [int(value) for value in file.readline().split()[1:]]
    user, nice, system, idle, iowait, irq, softirq, steal = values[:8]
    return user + nice + system + irq + softirq + steal, idle + iowait


def load_average():
    with open("/proc/loadavg") as file:
        return " ".join(file.read().split()[:3])


def spread(values):
    return f"{percentile(values, 0.5):>7.0f}{percentile(values, 0.99):>7.0f}{max(values):>7.0f}"


def main():
    strata, workdir = sys.argv[1:3]
    os.makedirs(workdir, exist_ok=True)
    cluster_dir = os.path.join(workdir, "cluster")
    shutil.rmtree(cluster_dir, ignore_errors=True)

    print("starting the cluster: 3 data nodes, the master, 3 agents, the cron service", file=sys.stderr)
    cluster = CronCluster(strata, cluster_dir, os.path.join(workdir, "cluster.log"))
    try:
        cluster.wait_until_ready()
        agents = http_json("GET", f"{cluster.master}/api/v1/agents")
        offered = [agent["info"]["resources"] for agent in agents]
        slots = slots_offered(offered)
        print(f"machine floor: {JOBS} bare runs, {min(slots, JOBS)} held and released at once, the rest as slots free"
              f" ({FLOOR_ROUNDS} rounds)", file=sys.stderr)
        floor = machine_floor(slots)
        isolated_floor = machine_floor(slots, isolated=True) if os.geteuid() == 0 and cgroup_hierarchies() else None

        print(f"yardstick: {SINGLE_LAUNCHES} single jobs one at a time, then {JOBS} at once through {SUBMIT_CONNECTIONS} connections",
              file=sys.stderr)
        single = single_launches(cluster)
        direct = burst(cluster)

        # The jobs all start at the same whole second, far enough ahead for all of them to be
        # stored first.
        first_fire_ms = (wall_ms() + FIRST_FIRE_MARGIN_SECONDS * 1000 + 999) // 1000 * 1000
        schedule = f"R{MINUTES}/{iso_utc(first_fire_ms)}/PT1M"
        fire_times = [first_fire_ms + minute * 60_000 for minute in range(MINUTES)]
        names = [f"bench-{index:04d}" for index in range(JOBS)]
        print(f"adding {JOBS} cron jobs, schedule {schedule}, through {ADD_CONNECTIONS} connections", file=sys.stderr)
        adding_started = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(ADD_CONNECTIONS) as pool:
            list(pool.map(lambda name: cron_call(cluster, "POST", "/v1/scheduler/iso8601", {
                "name": name, "command": "true", "schedule": schedule, "cpus": CPUS, "mem": MEM_MB, "disk": DISK_MB,
                "retries": 0, "owner": "bench@example.com"}), names))
        adding_seconds = time.monotonic() - adding_started
        left_ms = first_fire_ms - wall_ms()
        if left_ms < STORED_BEFORE_FIRST_FIRE_SECONDS * 1000:
            sys.exit(f"adding {JOBS} jobs took {adding_seconds:.1f} s, leaving {left_ms} ms before the first fire time; "
                     "the run is not valid (raise FIRST_FIRE_MARGIN_SECONDS)")
        stored = len(cron_call(cluster, "GET", "/v1/scheduler/jobs"))
        if stored != JOBS:
            sys.exit(f"the cron service has {stored} jobs, not {JOBS}")

        print(f"waiting {left_ms / 1000:.0f} s for the first fire time, then {MINUTES} minute(s) of runs", file=sys.stderr)
        profiler = None
        if PROFILE:
            profiler = subprocess.Popen(
                ["perf", "record", "-g", "-o", PROFILE, "-p", str(cluster.process.pid)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(max(0, first_fire_ms - 1000 - SUBMIT_AHEAD_SECONDS * 1000 - wall_ms()) / 1000)
        load_before = load_average()
        cpu_before = process_cpu_seconds(cluster.process.pid)
        machine_before = machine_cpu_ticks()
        window_started = time.monotonic()
        expected = JOBS * MINUTES
        # Until every run has ended (or DRAIN_SECONDS after the last fire time).
        time.sleep(max(0, fire_times[-1] + 2000 - wall_ms()) / 1000)
        ended_before_window = SINGLE_LAUNCHES + 1 + JOBS
        while True:
            metrics = cron_metrics(cluster)
            if (wait_until_master_idle(cluster, ended_before_window + expected, 0)
                    and metrics.get("strata_cron_runs_in_flight", 0) == 0):
                break
            if wall_ms() > fire_times[-1] + DRAIN_SECONDS * 1000:
                print(f"after {DRAIN_SECONDS} s: master jobs {master_jobs_by_state(cluster)}, cron runs in flight"
                      f" {metrics.get('strata_cron_runs_in_flight', 0):.0f}; reporting what there is", file=sys.stderr)
                break
            time.sleep(0.5)
        window_seconds = time.monotonic() - window_started
        if profiler:
            profiler.send_signal(signal.SIGINT)
            profiler.wait(timeout=60)
        cpu_seconds = process_cpu_seconds(cluster.process.pid) - cpu_before
        machine_after = machine_cpu_ticks()
        busy = machine_after[0] - machine_before[0]
        machine_busy = busy / max(1, busy + machine_after[1] - machine_before[1])
        jobs = master_jobs(cluster, CRON_LABEL)
        attempts = attempts_by_job(cluster)
        cron_jobs = cron_call(cluster, "GET", "/v1/scheduler/jobs")
        metrics = cron_metrics(cluster)
        missed_jobs = {}
        for job in cron_jobs:
            if job.get("errorCount", 0) or job.get("successCount", 0) != MINUTES:
                missed_jobs[job["name"]] = job
        histories = {name: cron_call(cluster, "GET", f"/v1/scheduler/job/{urllib.parse.quote(name)}/history")
                     for name in sorted(missed_jobs)[:20]}
    finally:
        cluster.stop()
    shutil.rmtree(cluster_dir, ignore_errors=True)

    # Runs: (job name, scheduled ms) -> the master jobs that ran it.
    expected_runs = {(name, fire) for name in names for fire in fire_times}
    runs = {}
    for job in jobs:
        labels = job.get("labels") or {}
        runs.setdefault(scheduled_ms_of_run(labels["strata.cron.run"]), []).append(job)
    missed = sorted(expected_runs - runs.keys())
    doubled = {run: found for run, found in runs.items() if len(found) > 1}
    unexpected = sorted(runs.keys() - expected_runs)
    samples = []
    never_ran = []
    for (name, scheduled), found in runs.items():
        if (name, scheduled) not in expected_runs:
            continue
        job = min(found, key=lambda j: j["submittedAtMs"])
        tries = attempts.get(job["id"], [])
        running = [a["runningAtMs"] for a in tries if a.get("runningAtMs") is not None]
        if not running:
            never_ran.append((job["id"], job["state"], job.get("message")))
            continue
        ended = [a["endedAtMs"] for a in tries if a.get("endedAtMs") is not None]
        samples.append({
            "scheduled": scheduled, "submitted": job["submittedAtMs"], "staged": min(a["stagedAtMs"] for a in tries),
            "running": min(running), "ended": max(ended) if ended else None, "finished": job["state"] == "FINISHED"})

    def ms_line(label, values, note=""):
        print(f"  {label:<44}{spread(values)} ms{note}")

    print(f"\ncron: {JOBS} jobs `true` ({CPUS} cpus, {MEM_MB} MB), schedule R{MINUTES}/<start>/PT1M, all the same start:"
          f" {expected} runs scheduled at {', '.join(iso_utc(fire)[11:19] for fire in fire_times)} UTC")
    print(f"  agents offer (each of 3): {json.dumps(offered[0]) if offered else '?'}; jobs added in {adding_seconds:.1f} s"
          f" ({JOBS / adding_seconds:.0f}/s, {ADD_CONNECTIONS} connections), {left_ms / 1000:.1f} s before the first fire time")
    print(f"  master jobs of cron runs {len(jobs)}; runs that reached RUNNING {len(samples)}; FINISHED"
          f" {sum(s['finished'] for s in samples)}; never RUNNING {len(never_ran)}")
    # strata_cron_runs_ended_total{outcome="succeeded"} 3000
    ended_by_outcome = ", ".join(key.split(chr(34))[1] + f" {value:.0f}" for key, value in sorted(metrics.items())
                                 if key.startswith("strata_cron_runs_ended_total"))
    print(f"  cron service: submissions {metrics.get('strata_cron_submissions_total', 0):.0f}, refused by the master"
          f" {metrics.get('strata_cron_submission_failures_total', 0):.0f}, runs ended: {ended_by_outcome or 'none'}")
    if not samples:
        sys.exit("no cron run reached RUNNING; see the cluster log")

    lateness = [s["running"] - s["scheduled"] for s in samples]
    print(f"\nstart lateness (ms; p50 p99 max by nearest rank over {len(samples)} runs)        p50    p99    max")
    ms_line("scheduled -> task RUNNING (the benchmark)", lateness)
    ms_line("  scheduled -> submitted (cron service)", [s["submitted"] - s["scheduled"] for s in samples])
    ms_line("  submitted -> staged (master: log, place)", [s["staged"] - s["submitted"] for s in samples])
    ms_line("  staged -> RUNNING (agent: start, report)", [s["running"] - s["staged"] for s in samples])
    ahead = [s for s in samples if s["staged"] < s["scheduled"]]
    behind = [s for s in samples if s["staged"] >= s["scheduled"]]
    if ahead:
        ms_line(f"staged ahead of the scheduled time ({len(ahead)} runs)", [s["running"] - s["scheduled"] for s in ahead])
        ms_line("  scheduled -> staged (how far ahead, negative)", [s["staged"] - s["scheduled"] for s in ahead])
        ahead_ended = [s["ended"] - s["running"] for s in ahead if s["ended"] is not None]
        if ahead_ended:
            # What frees their resources for the runs that could not be placed ahead.
            ms_line("  RUNNING -> ended (agent: run, clean up, report)", ahead_ended)
    if behind:
        ms_line(f"staged at or after it ({len(behind)} runs)", [s["running"] - s["scheduled"] for s in behind])
        ms_line("  scheduled -> staged", [s["staged"] - s["scheduled"] for s in behind])
        ms_line("  staged -> RUNNING", [s["running"] - s["staged"] for s in behind])
    print("\nper fire time (ms after the scheduled time)")
    print(f"  {'fire time (UTC)':<16}{'runs':>6}{'first submitted':>17}{'last submitted':>16}{'RUNNING p50':>13}{'p99':>7}{'max':>7}")
    for fire in fire_times:
        these = [s for s in samples if s["scheduled"] == fire]
        if not these:
            print(f"  {iso_utc(fire)[11:23]:<16}{0:>6}")
            continue
        late = [s["running"] - fire for s in these]
        print(f"  {iso_utc(fire)[11:23]:<16}{len(these):>6}{min(s['submitted'] for s in these) - fire:>17}"
              f"{max(s['submitted'] for s in these) - fire:>16}{percentile(late, 0.5):>13.0f}{percentile(late, 0.99):>7.0f}{max(late):>7.0f}")

    burst_running = [s["running"] - s["submitted"] for s in direct["samples"]]
    burst_from_start = [s["running"] - direct["started"] for s in direct["samples"]]
    print(f"\nyardstick (same run, before the cron jobs): the master's launch latency of the same task submitted directly")
    print(f"  {'':<44}    p50    p99    max")
    ms_line(f"{JOBS} at once: submitted -> RUNNING", burst_running,
            f"   ({SUBMIT_CONNECTIONS} connections; all submitted in {direct['submitted'] - direct['started']} ms; failed {direct['failed']})")
    ms_line("  submitted -> staged", [s["staged"] - s["submitted"] for s in direct["samples"]])
    ms_line("  staged -> RUNNING", [s["running"] - s["staged"] for s in direct["samples"]])
    ms_line(f"{JOBS} at once: burst started -> RUNNING", burst_from_start, "   (context: the client's instant, as a run's scheduled time)")
    ms_line("one at a time: submitted -> RUNNING", single, f"   (context: {SINGLE_LAUNCHES} jobs, the master unloaded)")

    print(f"\nthe machine's floor (same run, before the cluster's yardstick): the same {JOBS} runs as bare processes, no scheduler")
    ms_line(f"{min(slots, JOBS)} held, released at once; the rest as slots free", floor,
            f"   (best of {FLOOR_ROUNDS} rounds by p99; the offers hold {slots} at once)")
    if isolated_floor:
        ms_line("the same, each with a task's isolation", isolated_floor,
                f"   (cgroups in {len(cgroup_hierarchies())} hierarchies, sandbox files; best of {FLOOR_ROUNDS} rounds by p99)")
    else:
        print("  (the floor with a task's isolation needs root and a cgroup file system; not measured)")

    print(f"\nduring the cron window ({window_seconds:.0f} s from {SUBMIT_AHEAD_SECONDS + 1} s before the first fire time until every run ended)")
    print(f"  cluster process CPU {cpu_seconds:.1f} s (master, agents, cron service, DFS); machine {machine_busy:.0%} busy on"
          f" {os.cpu_count()} cores (every process, other builds too); load average before {load_before}")

    if missed or doubled or unexpected or never_ran:
        print("\nruns missing, doubled or not run (at most 10 of each)")
        for name, scheduled in missed[:10]:
            print(f"  missed  {name}@{iso_utc(scheduled)}")
        for (name, scheduled), found in list(doubled.items())[:10]:
            print(f"  doubled {name}@{iso_utc(scheduled)}: {', '.join(job['id'] for job in found)}")
        for name, scheduled in unexpected[:10]:
            print(f"  not scheduled {name}@{iso_utc(scheduled)}")
        for job_id, state, message in never_ran[:10]:
            print(f"  never RUNNING {job_id}: {state} {message}")
        for name, history in histories.items():
            print(f"  cron history {name}: {json.dumps(history)[:400]}")

    p50 = percentile(lateness, 0.5)
    p99 = percentile(lateness, 0.99)
    checks = [
        ("cron start lateness p99, ms", p99, "<=", 500),
        ("runs missed (no master job)", len(missed), "<=", 0),
        ("runs doubled (more than one master job)", len(doubled) + len(unexpected), "<=", 0),
    ]
    print(f"\n{'check':<44}{'value':>10}  target")
    for label, value, relation, target in checks:
        ok = value >= target if relation == ">=" else value <= target
        print(f"{label:<44}{value:>10.0f}  {relation} {target:<8} {'PASS' if ok else 'FAIL'}")
    print(f"\ncontext: cron lateness / master launch latency of {JOBS} at once: p50 {p50 / max(1, percentile(burst_running, 0.5)):.2f},"
          f" p99 {p99 / max(1, percentile(burst_running, 0.99)):.2f}"
          f"; against the burst's start: p50 {p50 / max(1, percentile(burst_from_start, 0.5)):.2f},"
          f" p99 {p99 / max(1, percentile(burst_from_start, 0.99)):.2f}")
    print(f"context: cron lateness / the machine's floor for the same runs: p50 {p50 / max(1, percentile(floor, 0.5)):.2f},"
          f" p99 {p99 / max(1, percentile(floor, 0.99)):.2f} (the floor's p99 is {percentile(floor, 0.99):.0f} ms)")
    if isolated_floor:
        print(f"context: cron lateness / the floor with a task's isolation: p50 {p50 / max(1, percentile(isolated_floor, 0.5)):.2f},"
              f" p99 {p99 / max(1, percentile(isolated_floor, 0.99)):.2f} (its p99 is {percentile(isolated_floor, 0.99):.0f} ms)")
    if AGENT_RESOURCES:
        print(f"\nCONTEXT RUN: every agent offered --agent-resources {AGENT_RESOURCES} instead of what it measures;"
              " the benchmark's check is made with the measured offers")
    print("\ntasks ran as the invoking user (root) on a cluster started with --allow-root-tasks")


if __name__ == "__main__":
    main()
