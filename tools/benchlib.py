"""What the end-to-end benchmarks share: running commands, the master's JSON API, percentiles,
and a `strata cluster up` process (name node, three data nodes, the master, an agent beside each
data node and the registry) with its ports chosen free."""
import json
import os
import pwd
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

# How long one command may take before the run is given up.
COMMAND_TIMEOUT_SECONDS = 600


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(args, env=None):
    try:
        result = subprocess.run(args, env=env, capture_output=True, text=True, timeout=COMMAND_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        sys.exit(f"timed out after {COMMAND_TIMEOUT_SECONDS} s: {' '.join(args)}")
    if result.returncode != 0:
        sys.exit(f"failed: {' '.join(args)}\n{result.stdout}\n{result.stderr}")
    return result.stdout


def http_json(method, url, body=None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as error:
        sys.exit(f"{method} {url}: {error.code} {error.read().decode(errors='replace')}")


def percentile(values, fraction):
    # Nearest rank: the smallest value with at least `fraction` of the values at or below it.
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * fraction // 1))
    return ordered[int(rank) - 1]


def process_cpu_seconds(pid):
    # User and kernel CPU seconds of a process's threads.
    with open(f"/proc/{pid}/stat") as file:
        fields = file.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Cluster:
    """`strata cluster up --allow-root-tasks` on free ports, its output in `log_path`."""

    def __init__(self, strata, directory, log_path):
        self.strata = strata
        self.directory = directory
        self.name_node_port = free_port()
        self.master_port = free_port()
        self.registry_port = free_port()
        self.launcher_port = free_port()
        self.master = f"http://127.0.0.1:{self.master_port}"
        self.registry = f"127.0.0.1:{self.registry_port}"
        self.env = dict(os.environ, STRATA_NAMENODE=f"127.0.0.1:{self.name_node_port}", STRATA_MASTER=f"127.0.0.1:{self.master_port}")
        self.user = pwd.getpwuid(os.getuid()).pw_name
        self.log = open(log_path, "w")
        self.process = subprocess.Popen(
            [strata, "cluster", "up", "--nodes", "3", "--data", directory, "--port", str(self.name_node_port), "--http-port", "0",
             "--datanode-http-port", "0", "--master-port", str(self.master_port), "--agent-port", "0",
             "--registry-port", str(self.registry_port), "--launcher-port", str(self.launcher_port), "--allow-root-tasks"],
            stdout=self.log, stderr=self.log)

    def wait_until_ready(self):
        for _ in range(600):
            if self.process.poll() is not None:
                sys.exit(f"the cluster exited with status {self.process.returncode}; see {self.log.name}")
            try:
                with urllib.request.urlopen(f"{self.master}/master/state", timeout=2) as response:
                    agents = json.loads(response.read())["activated_agents"]
                with urllib.request.urlopen(f"http://{self.registry}/v2/", timeout=2) as response:
                    registry_up = response.status == 200
                if agents == 3 and registry_up:
                    probe = subprocess.run([self.strata, "dfsadmin", "safemode", "get"], env=self.env, capture_output=True, text=True)
                    if "OFF" in probe.stdout:
                        return
            except (OSError, ValueError):
                pass
            time.sleep(0.2)
        sys.exit("the cluster did not start within 120 s")

    def strata_command(self, *args):
        return run([self.strata, *args], self.env)

    def dfs(self, *args):
        return self.strata_command("dfs", *args)

    def submit(self, body):
        return http_json("POST", f"{self.master}/api/v1/jobs?user.name={self.user}", body)

    def job(self, job_id):
        return http_json("GET", f"{self.master}/api/v1/jobs/{job_id}")

    def wait_for_job(self, job_id, timeout_seconds=120):
        deadline = time.monotonic() + timeout_seconds
        while time.monotonic() < deadline:
            detail = self.job(job_id)
            if detail["job"]["state"] in ("FINISHED", "FAILED", "KILLED"):
                return detail
            time.sleep(0.005)
        sys.exit(f"job {job_id} did not end within {timeout_seconds} s")

    def stop(self):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()
