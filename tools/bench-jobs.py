#!/usr/bin/env python3
"""`tools/bench jobs`: a local cluster (`strata cluster up`: name node, three data nodes, the
master and an agent beside each data node) running data-local jobs, end to end.

Launch latency: single-task jobs over a tiny input file, submitted one at a time to the master's
HTTP API (each waited for before the next), as plain processes and as runc containers from a
busybox root filesystem the script builds. Latency is the master's own wall-clock timestamps:
the job's `submittedAtMs` (taken when the master starts handling the submission) to the task's
`runningAtMs` (taken when the master handles the agent's RUNNING report, which the agent sends
once the process has started or runc has made the container; not when the command started).

grep throughput: 1 GiB of make-logs.py logs put into the DFS (128 MiB blocks, so one task per
block), then `strata job submit --wait -- grep -c ERROR` timed from before the CLI starts until it
returns with the job FINISHED (the CLI watches the job: the master answers at each change). The
yardstick, measured in the same run: `grep -c ERROR` over the same file on local disk, in the
page cache, with the environment a task gets (PATH only, so the C locale). The job's summed parts
must equal the local count. Printed beside it, from the same run: raw libzstd decoding of the
logs' frames on one core, and the bound it sets on any job over compressed blocks (decode and
grep CPU time spread perfectly over the cores).

Context, to see where the job's time goes: the master's per-task timestamps (staged: placed;
running: the split has been read into the sandbox and the command started; ended: the command
exited and its part was committed), the cluster process's CPU (user and kernel) and its reaped
tasks' CPU during the job, the machine's busy share (other builds count), one 128 MiB block's
task alone, a `dd` of the logs into a new local file through the page cache (what copying every
split into a sandbox asks of the machine), and one client's `strata dfs cat` of the file.
STRATA_BENCH_PROFILE=FILE records `perf record -g` of the cluster process during the job.

Tasks run as the user running the script (root here: cgroups and runc need it), so the cluster
starts with --allow-root-tasks. Checks are reported, not enforced: the script exits 0 when a
check fails and non-zero only when the run itself breaks."""
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import time

from benchlib import Cluster, percentile, run

MIB = 1024 * 1024
# Jobs per kind for the launch latency, one at a time.
LAUNCHES = int(os.environ.get("STRATA_BENCH_LAUNCHES", "30"))
# Local grep runs; the median is the yardstick.
RUNS = int(os.environ.get("STRATA_BENCH_RUNS", "3"))
# A file to record the cluster process's profile in during the grep job (`perf record -g`), to
# see where its time goes; none by default.
PROFILE = os.environ.get("STRATA_BENCH_PROFILE")
# The PATH an agent gives a task (ChildProcess.defaultPath), and nothing else of the locale.
TASK_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
BUSYBOX_APPLETS = ["sh", "cat", "grep", "true", "echo", "wc", "head"]


def busybox_root_filesystem(directory):
    # The static busybox of the busybox-static package, and links to the applets tasks may run;
    # readable by every user, as the agents' runc containers need.
    busybox = shutil.which("busybox") or "/usr/bin/busybox"
    if not os.path.isfile(busybox):
        sys.exit("busybox not found (tools/install-deps installs busybox-static)")
    shutil.rmtree(directory, ignore_errors=True)
    os.makedirs(os.path.join(directory, "bin"))
    shutil.copy2(busybox, os.path.join(directory, "bin", "busybox"))
    for applet in BUSYBOX_APPLETS:
        os.symlink("busybox", os.path.join(directory, "bin", applet))
    os.chmod(directory, 0o755)
    os.chmod(os.path.join(directory, "bin"), 0o755)
    return directory


def launch_latencies(cluster, kind, root_filesystem):
    # One job at a time: submit, wait for it to end, then the next. The first job of each kind
    # is a warm-up (the agents' first task client, runc's first start) and is not counted.
    samples = []
    for index in range(LAUNCHES + 1):
        output = f"/bench/latency/{kind}-{index}"
        body = {"arguments": ["true"], "inputs": ["/bench/tiny"], "output": output}
        if root_filesystem:
            body["rootFilesystem"] = root_filesystem
        view = cluster.submit(body)
        detail = cluster.wait_for_job(view["id"])
        job = detail["job"]
        if job["state"] != "FINISHED" or len(detail["tasks"]) != 1:
            sys.exit(f"{kind} job {view['id']} ended {job['state']} with {len(detail['tasks'])} attempts: {job.get('message')}")
        attempt = detail["tasks"][0]["attempt"]
        if index == 0:
            continue
        submitted = job["submittedAtMs"]
        samples.append({
            "running": attempt["runningAtMs"] - submitted,
            "staged": attempt["stagedAtMs"] - submitted,
            "launch": attempt["runningAtMs"] - attempt["stagedAtMs"],
            "finished": job["endedAtMs"] - submitted,
            "local": attempt["isNodeLocal"],
        })
    return samples


def page_cache_copy_speed(source, directory):
    # What the agents' sandbox copies ask of the machine: the file's bytes written to a new local
    # file through the page cache (no fsync), as a task's input is; bytes per second.
    target = os.path.join(directory, "copy.tmp")
    try:
        result = subprocess.run(["dd", f"if={source}", f"of={target}", "bs=1M"], capture_output=True, text=True)
        match = re.search(r"(\d+) bytes .* copied, ([\d.]+) s", result.stderr)
        if result.returncode != 0 or not match:
            sys.exit(f"dd failed: {result.stderr}")
        return int(match.group(1)) / float(match.group(2))
    finally:
        if os.path.exists(target):
            os.remove(target)


def local_grep(path):
    # The same command a task runs, with the environment a task gets (PATH only: C locale).
    started = time.monotonic()
    result = subprocess.run(["grep", "-c", "ERROR", path], env={"PATH": TASK_PATH}, capture_output=True, text=True)
    seconds = time.monotonic() - started
    if result.returncode != 0:
        sys.exit(f"local grep failed: {result.stderr}")
    return int(result.stdout.strip()), seconds


def phases(detail):
    # Where a job's time went, from the master's timestamps (all wall-clock ms on the master).
    job = detail["job"]
    attempts = [task["attempt"] for task in detail["tasks"] if task["attempt"]["state"] == "TASK_FINISHED"]
    submitted = job["submittedAtMs"]
    return {
        "submit to first staged": min(a["stagedAtMs"] for a in attempts) - submitted,
        "staged to running (median task)": statistics.median(a["runningAtMs"] - a["stagedAtMs"] for a in attempts),
        "staged to running (slowest task)": max(a["runningAtMs"] - a["stagedAtMs"] for a in attempts),
        "running to ended (median task)": statistics.median(a["endedAtMs"] - a["runningAtMs"] for a in attempts),
        "running to ended (slowest task)": max(a["endedAtMs"] - a["runningAtMs"] for a in attempts),
        "last task ended to job FINISHED": job["endedAtMs"] - max(a["endedAtMs"] for a in attempts),
        "submit to job FINISHED": job["endedAtMs"] - submitted,
    }, attempts


def most_at_once(attempts, start_key, end_key):
    events = sorted([(a[start_key], 1) for a in attempts] + [(a[end_key], -1) for a in attempts], key=lambda e: (e[0], e[1]))
    current = best = 0
    for _, change in events:
        current += change
        best = max(best, current)
    return best


def process_cpu_times(pid):
    # CPU seconds of a process's own threads (user, kernel), and of its children it has reaped
    # (here: the tasks, which the agents in the cluster process spawn and wait for).
    with open(f"/proc/{pid}/stat") as file:
        fields = file.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    utime, stime, cutime, cstime = (int(value) / ticks for value in fields[11:15])
    return utime, stime, cutime + cstime


def cpu_spent(before, after):
    return tuple(after[index] - before[index] for index in range(3))


def machine_cpu_ticks():
    # The machine's CPU time so far, all cores: (busy, idle, iowait) in clock ticks.
    with open("/proc/stat") as file:
        values = [int(value) for value in file.readline().split()[1:]]
    user, nice, system, idle, iowait, irq, softirq, steal = values[:8]
    return user + nice + system + irq + softirq + steal, idle, iowait


def machine_cpu_share(before, after):
    busy, idle, iowait = (after[i] - before[i] for i in range(3))
    total = max(1, busy + idle + iowait)
    return busy / total, iowait / total


def load_average():
    with open("/proc/loadavg") as file:
        return " ".join(file.read().split()[:3])


def main():
    strata, workdir, logs = sys.argv[1:4]
    size = os.path.getsize(logs)
    os.makedirs(workdir, exist_ok=True)
    cluster_dir = os.path.join(workdir, "cluster")
    shutil.rmtree(cluster_dir, ignore_errors=True)
    root_filesystem = busybox_root_filesystem(os.path.join(workdir, "rootfs"))

    print("starting the cluster: 3 data nodes, the master, 3 agents", file=sys.stderr)
    cluster = Cluster(strata, cluster_dir, os.path.join(workdir, "cluster.log"))
    try:
        cluster.wait_until_ready()
        cluster.dfs("mkdir", "-p", "/bench/latency")
        tiny = os.path.join(workdir, "tiny.txt")
        with open(tiny, "w") as file:
            file.write("one line\nanother line\n")
        cluster.dfs("put", tiny, "/bench/tiny")

        latency = {}
        for kind, rootfs in (("process", None), ("runc", root_filesystem)):
            print(f"launch latency: {LAUNCHES} single-task {kind} jobs, one at a time", file=sys.stderr)
            latency[kind] = launch_latencies(cluster, kind, rootfs)

        print(f"putting {size // MIB} MiB of logs into the DFS", file=sys.stderr)
        os.sync()
        started = time.monotonic()
        cluster.dfs("put", logs, "/bench/logs")
        put_seconds = time.monotonic() - started
        # Let the put's writeback finish before anything is timed.
        os.sync()

        print(f"local grep -c ERROR over the same file, {RUNS} times (page cache)", file=sys.stderr)
        local_grep(logs)  # brings the file into the page cache; not counted
        local_runs = [local_grep(logs) for _ in range(RUNS)]
        local_count = local_runs[0][0]
        if any(count != local_count for count, _ in local_runs):
            sys.exit("local grep counted differently from run to run")
        local_seconds = statistics.median(seconds for _, seconds in local_runs)
        print("raw libzstd decoding of the logs' frames on one core (strata debug codec-speed)", file=sys.stderr)
        codec = json.loads(run([strata, "debug", "codec-speed", logs]))
        print("dd of the logs to a new local file, through the page cache", file=sys.stderr)
        copy_speed = page_cache_copy_speed(logs, workdir)
        os.sync()

        print("job: strata job submit --input /bench/logs --output /bench/out --wait -- grep -c ERROR", file=sys.stderr)
        load_before = load_average()
        cpu_before = process_cpu_times(cluster.process.pid)
        machine_before = machine_cpu_ticks()
        profiler = None
        if PROFILE:
            profiler = subprocess.Popen(
                ["perf", "record", "-g", "-o", PROFILE, "-p", str(cluster.process.pid)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(1)
        started = time.monotonic()
        final = json.loads(run(
            [strata, "job", "submit", "--input", "/bench/logs", "--output", "/bench/out", "--wait", "--json", "--", "grep", "-c", "ERROR"],
            cluster.env))
        job_seconds = time.monotonic() - started
        cpu_after = process_cpu_times(cluster.process.pid)
        if profiler:
            profiler.send_signal(signal.SIGINT)
            profiler.wait(timeout=60)
        machine_busy, machine_iowait = machine_cpu_share(machine_before, machine_cpu_ticks())
        job_cpu = cpu_spent(cpu_before, cpu_after)
        if final["state"] != "FINISHED":
            sys.exit(f"the grep job ended {final['state']}: {final.get('message')}")
        detail = cluster.job(final["id"])
        job_phases, attempts = phases(detail)
        parts = [int(cluster.dfs("cat", f"/bench/out/part-{index:05d}").strip()) for index in range(final["tasks"])]
        job_count = sum(parts)

        # Context: one block's task alone (the first 128 MiB of the logs as a file of one block),
        # to tell a task's own cost from what eight tasks at once on this machine's cores cost.
        block_file = os.path.join(workdir, "block.log")
        with open(logs, "rb") as source, open(block_file, "wb") as target:
            target.write(source.read(128 * MIB))
        cluster.dfs("put", block_file, "/bench/block")
        os.remove(block_file)
        os.sync()
        single_cpu_before = process_cpu_times(cluster.process.pid)
        single_view = cluster.submit({"arguments": ["grep", "-c", "ERROR"], "inputs": ["/bench/block"], "output": "/bench/out-block"})
        single = cluster.wait_for_job(single_view["id"])
        single_cpu_after = process_cpu_times(cluster.process.pid)
        single_cpu = cpu_spent(single_cpu_before, single_cpu_after)
        if single["job"]["state"] != "FINISHED":
            sys.exit(f"the one-block grep job ended {single['job']['state']}: {single['job'].get('message')}")
        single_phases, single_attempts = phases(single)

        # Context: one client reading the whole file out of the DFS (over TCP, decompressing),
        # what the tasks together do from local disk before grep sees a byte.
        started = time.monotonic()
        with open(os.devnull, "w") as devnull:
            if subprocess.run([strata, "dfs", "cat", "/bench/logs"], env=cluster.env, stdout=devnull).returncode != 0:
                sys.exit("strata dfs cat /bench/logs failed")
        cat_seconds = time.monotonic() - started
    finally:
        cluster.stop()
    shutil.rmtree(cluster_dir, ignore_errors=True)

    def ms(value):
        return f"{value:7.0f} ms"

    print(f"\nlaunch latency: {LAUNCHES} single-task jobs of `true` per kind over a 2-line file, one at a time"
          " (a first job of each kind not counted)")
    print("  submitted (master) -> task RUNNING (master handles the agent's report); percentiles by nearest rank"
          f" (p99 of {LAUNCHES} is the largest)")
    print(f"  {'kind':<10}{'p50':>9}{'p99':>9}{'max':>9}   {'-> staged p50':>14}{'staged -> running p50':>23}{'-> job FINISHED p50':>21}  node-local")
    for kind, samples in latency.items():
        running = [s["running"] for s in samples]
        print(f"  {kind:<10}{percentile(running, 0.5):>6.0f} ms{percentile(running, 0.99):>6.0f} ms{max(running):>6.0f} ms"
              f"   {statistics.median(s['staged'] for s in samples):>11.0f} ms"
              f"{statistics.median(s['launch'] for s in samples):>20.0f} ms"
              f"{statistics.median(s['finished'] for s in samples):>18.0f} ms"
              f"  {sum(s['local'] for s in samples)}/{len(samples)}")

    local_throughput = size / local_seconds
    job_throughput = size / job_seconds
    master_seconds = job_phases["submit to job FINISHED"] / 1000
    print(f"\nmachine yardstick (same run)")
    print(f"  local grep -c ERROR, page cache      {local_throughput / 1e6:8.0f} MB/s   (median of {RUNS}, {size // MIB} MiB;"
          f" runs: {', '.join(f'{seconds:.2f}' for _, seconds in local_runs)} s)")
    # The most any job over zstd blocks can reach on this machine: its input must be decoded
    # (raw libzstd at the blocks' level and frame size) and then grepped, and the two together
    # cannot take less than their CPU time spread perfectly over every core, with no reading,
    # checksums, pipes or task launches at all.
    decode_throughput = codec["decompressMBps"] * 1e6
    cores = os.cpu_count()
    bound_seconds = (size / decode_throughput + local_seconds) / cores
    bound_throughput = size / bound_seconds
    print(f"  raw libzstd decode, one core         {decode_throughput / 1e6:8.0f} MB/s   (level 1, {codec['bytes'] / codec['compressedBytes']:.2f}x,"
          " the blocks' frame size: the work every task's input needs before its command sees it)")
    print(f"  decode + grep on {cores} cores, at best     {bound_throughput / 1e6:8.0f} MB/s   = {bound_throughput / local_throughput:.3f}x local grep"
          " (their CPU times summed and spread perfectly over the cores: an upper bound for any job over compressed blocks)")
    print(f"  dd of the logs to a new local file   {copy_speed / 1e6:8.0f} MB/s   (page cache, no fsync: what copying every"
          " split into a sandbox asks of the machine; context, right before the job)")
    print(f"\ngrep job: {size // MIB} MiB in {len(attempts)} tasks (128 MiB blocks), replication 3")
    print(f"  strata job submit --wait, wall time  {job_seconds:8.2f} s   {job_throughput / 1e6:6.0f} MB/s"
          " (CLI start to return; the CLI watches the job)")
    print(f"  by the master's timestamps           {master_seconds:8.2f} s   {size / master_seconds / 1e6:6.0f} MB/s")
    for name, value in job_phases.items():
        if name != "submit to job FINISHED":
            print(f"    {name:<36}{ms(value)}")
    print(f"    tasks staged at once / running at once  {most_at_once(attempts, 'stagedAtMs', 'endedAtMs')} / "
          f"{most_at_once(attempts, 'runningAtMs', 'endedAtMs')}")
    print(f"  CPU during the job: cluster process {job_cpu[0]:.1f} s user + {job_cpu[1]:.1f} s kernel"
          f" (DFS reads into sandboxes, agents, master, data nodes), tasks {job_cpu[2]:.1f} s,"
          f" over {job_seconds:.1f} s wall on {os.cpu_count()} cores")
    print(f"  the machine's CPUs meanwhile         {machine_busy:.0%} busy (every process, other builds too), {machine_iowait:.0%} iowait")
    print(f"  load average before the job          {load_before}")
    print(f"  node-local tasks                     {final['nodeLocalTasks']} of {final['tasks']} ({final['remoteTasks']} remote)")
    print(f"  input bytes read locally / remotely  {final['bytesReadLocal']} / {final['bytesReadRemote']}")
    print(f"  count: job parts {job_count} (parts: {', '.join(str(p) for p in parts)}), local grep {local_count}")
    print(f"\ncontext (same run)")
    print(f"  one block's task alone (128 MiB)     staged -> running {single_phases['staged to running (median task)']:.0f} ms,"
          f" running -> ended {single_phases['running to ended (median task)']:.0f} ms,"
          f" node-local {single_attempts[0]['isNodeLocal']}; cluster process CPU {single_cpu[0]:.2f} s user + {single_cpu[1]:.2f} s kernel")
    print(f"  strata dfs put of the logs           {size / put_seconds / 1e6:8.0f} MB/s")
    print(f"  strata dfs cat of the logs > /dev/null {size / cat_seconds / 1e6:6.0f} MB/s   (one client, over TCP)")

    process_running = [s["running"] for s in latency["process"]]
    runc_running = [s["running"] for s in latency["runc"]]
    checks = [
        ("process task launch p50, ms", percentile(process_running, 0.5), "<=", 50),
        ("runc task launch p50, ms", percentile(runc_running, 0.5), "<=", 150),
        ("grep job / local grep throughput", job_throughput / local_throughput, ">=", 0.5),
        ("job count - local grep count", abs(job_count - local_count), "<=", 0),
    ]
    print(f"\n{'check':<40}{'value':>10}  target")
    for label, value, relation, target in checks:
        ok = value >= target if relation == ">=" else value <= target
        print(f"{label:<40}{value:>10.3f}  {relation} {target:<8} {'PASS' if ok else 'FAIL'}")
    print(f"\ncontext: grep job / decode+grep bound  {job_throughput / bound_throughput:.3f}"
          f"   (the 0.5 target is {0.5 / (bound_throughput / local_throughput):.2f}x the bound)")
    print("\ntasks ran as the invoking user (root) on a cluster started with --allow-root-tasks")


if __name__ == "__main__":
    main()
