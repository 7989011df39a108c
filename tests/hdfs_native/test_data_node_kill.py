"""kill -9 of a data node while hdfs-native writes through it: the client recovers its pipeline
(Hadoop's updateBlockForPipeline, OP_WRITE_BLOCK recovery stages, updatePipeline) and no byte it
wrote is lost. The name node and five data nodes run as processes of their own here, so one data
node can be killed alone. Five, so that a pipeline that still names the killed node (the name
node notices a dead node only after its heartbeat timeout) can still be given a replacement."""

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from hdfs_native import Client, WriteOptions

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from strata_cluster import free_port  # noqa: E402

BLOCK = 16 * 1024 * 1024
CHUNK = 1024 * 1024


def wait_for(condition, what, timeout=60):
    deadline = time.time() + timeout
    while not condition():
        if time.time() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.1)


@contextlib.contextmanager
def separate_processes(binary, data_nodes):
    data = tempfile.mkdtemp(prefix="strata-hdfs-native-kill-")
    port, http = free_port(), free_port()
    processes = []
    environment = dict(os.environ, STRATA_NAMENODE=f"127.0.0.1:{port}")

    def start(name, arguments):
        log = open(os.path.join(data, f"{name}.log"), "w")
        process = subprocess.Popen([binary, *arguments], stdout=log, stderr=subprocess.STDOUT)
        processes.append(process)
        return process

    def live_nodes():
        report = subprocess.run([binary, "dfsadmin", "report", "--live"], env=environment, capture_output=True, text=True)
        return report.stdout.count("Name: ")

    def safe_mode_off():
        probe = subprocess.run([binary, "dfsadmin", "safemode", "get"], env=environment, capture_output=True, text=True)
        return "OFF" in probe.stdout

    try:
        start("namenode", ["namenode", "--dir", os.path.join(data, "namenode"), "--port", str(port), "--http-port", str(http)])
        nodes = []
        for index in range(data_nodes):
            directory = os.path.join(data, f"datanode{index}")
            process = start(f"datanode{index}", [
                "datanode", "--dir", directory, "--port", "0", "--http-port", "0", "--namenode", f"127.0.0.1:{port}",
                "--namenode-http-port", str(http), "--heartbeat-interval", "1"])
            nodes.append({"process": process, "directory": directory})
        wait_for(safe_mode_off, "safe mode off")
        wait_for(lambda: live_nodes() == data_nodes, f"{data_nodes} live data nodes")
        yield {"url": f"hdfs://127.0.0.1:{port}", "nodes": nodes, "environment": environment}
    finally:
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGINT)
        for process in processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
        if not os.environ.get("STRATA_KEEP"):
            shutil.rmtree(data, ignore_errors=True)


def writing_a_replica(directory):
    # A node of the write's pipeline holds the block being written under current/rbw.
    being_written = os.path.join(directory, "current", "rbw")
    return os.path.isdir(being_written) and any(name.startswith("blk_") for name in os.listdir(being_written))


def test_a_data_node_killed_mid_write_loses_no_written_byte(cluster, tmp_path):
    data = os.urandom(2 * BLOCK + 6 * CHUNK + 12345)
    with separate_processes(cluster["binary"], data_nodes=5) as running:
        client = Client(running["url"])
        writer = client.create("/killed-mid-write", WriteOptions(block_size=BLOCK, replication=3))
        offset = 0
        # Into the last block, then kill one node of its pipeline. (In the last block: hdfs-native
        # gives up when a later addBlock still names the killed node, which the name node holds
        # live until its heartbeat timeout, where Hadoop's Java client abandons the block and asks
        # again without it.)
        while offset < 2 * BLOCK + 2 * CHUNK:
            writer.write(data[offset:offset + CHUNK])
            offset += CHUNK
        # The client sends packets behind its write calls: wait until the pipeline's three nodes
        # hold the block being written.
        def pipeline_nodes():
            return [index for index, node in enumerate(running["nodes"]) if writing_a_replica(node["directory"])]
        wait_for(lambda: len(pipeline_nodes()) == 3, "three data nodes writing the last block")
        pipeline = pipeline_nodes()
        victim = running["nodes"][pipeline[-1]]["process"]
        victim.send_signal(signal.SIGKILL)
        victim.wait(timeout=30)
        while offset < len(data):
            writer.write(data[offset:offset + CHUNK])
            offset += CHUNK
        writer.close()
        assert client.get_file_info("/killed-mid-write").length == len(data)
        with client.read("/killed-mid-write") as reader:
            assert reader.read() == data
        local = tmp_path / "back"
        subprocess.run([cluster["binary"], "dfs", "get", "/killed-mid-write", str(local)], check=True,
                       env=running["environment"], timeout=120)
        assert local.read_bytes() == data
