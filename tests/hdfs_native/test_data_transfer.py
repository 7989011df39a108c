"""The hdfs-native client reading and writing file bytes: Hadoop RPC to the name node and Hadoop's
data transfer protocol to the data nodes (OP_WRITE_BLOCK through a pipeline of three, OP_READ_BLOCK
at any offset), checked against the same files through `strata dfs`."""

import hashlib
import os
import random
import subprocess
import time

from hdfs_native import WriteOptions

SIZE = 50 * 1024 * 1024
BLOCK = 16 * 1024 * 1024


def strata_dfs(cluster, *args):
    environment = dict(os.environ, STRATA_NAMENODE=cluster["namenode"], STRATA_USER=cluster["user"])
    subprocess.run([cluster["binary"], "dfs", *args], check=True, env=environment, timeout=120)


def payload(seed, size=SIZE):
    # Log-like lines (compressible, as real files are) with random bytes mixed in.
    generator = random.Random(seed)
    parts, length = [], 0
    while length < size:
        part = (f"{generator.randrange(10**9)} GET /item/{generator.randrange(10**6)} 200\n".encode()
                if generator.random() < 0.9 else generator.randbytes(64))
        parts.append(part)
        length += len(part)
    return b"".join(parts)[:size]


def write(client, path, data, **options):
    writer = client.create(path, WriteOptions(**options))
    for offset in range(0, len(data), 4 << 20):
        writer.write(data[offset:offset + (4 << 20)])
    writer.close()


def test_a_50_mib_file_written_and_read_back_over_several_blocks(client, cluster, tmp_path):
    data = payload(1)
    client.mkdirs("/transfer", create_parent=True)
    write(client, "/transfer/big", data, block_size=BLOCK)
    status = client.get_file_info("/transfer/big")
    assert status.length == SIZE
    assert status.blocksize == BLOCK
    with client.read("/transfer/big") as reader:
        assert hashlib.sha256(reader.read()).hexdigest() == hashlib.sha256(data).hexdigest()
        # Ranges inside a block, across a block boundary, at the very end.
        for offset, length in [(0, 1), (12345, 100000), (BLOCK - 1000, 5000), (2 * BLOCK + 7, 3 * 65536), (SIZE - 10, 10)]:
            assert reader.read_range(offset, length) == data[offset:offset + length]
    # The same bytes through Strata's own client.
    local = tmp_path / "big"
    strata_dfs(cluster, "get", "/transfer/big", str(local))
    assert local.read_bytes() == data


def test_a_file_strata_wrote_reads_through_hdfs_native(client, cluster, tmp_path):
    data = payload(2, 20 * 1024 * 1024 + 123)
    local = tmp_path / "source"
    local.write_bytes(data)
    client.mkdirs("/transfer", create_parent=True)
    strata_dfs(cluster, "put", str(local), "/transfer/from-strata")
    with client.read("/transfer/from-strata") as reader:
        assert reader.read() == data
        assert reader.read_range(7_000_001, 4096) == data[7_000_001:7_000_001 + 4096]


def test_append_through_hdfs_native(client, cluster, tmp_path):
    data = payload(3, 3 * 1024 * 1024 + 17)
    client.mkdirs("/transfer", create_parent=True)
    write(client, "/transfer/grow", data)
    writer = client.append("/transfer/grow")
    writer.write(b"appended tail")
    writer.close()
    expected = data + b"appended tail"
    with client.read("/transfer/grow") as reader:
        assert reader.read() == expected
    local = tmp_path / "grow"
    strata_dfs(cluster, "get", "/transfer/grow", str(local))
    assert local.read_bytes() == expected


def test_an_append_abandoned_before_its_first_byte_keeps_the_file(client, cluster, tmp_path):
    """An appender that opens the file and goes away without writing: the name node gave the
    last block a new generation stamp, its replicas still carry the old one; recovering the
    lease (from another client) closes the file with every byte it had."""
    from hdfs_native import Client

    data = payload(11, 300_000)
    write(client, "/transfer/append-abandoned", data)
    abandoned = client.append("/transfer/append-abandoned")
    other = Client(cluster["url"])
    deadline = time.time() + 60
    while not other.recover_lease("/transfer/append-abandoned"):
        assert time.time() < deadline, "the lease was not recovered within 60 s"
        time.sleep(0.2)
    assert other.get_file_info("/transfer/append-abandoned").length == len(data)
    assert other.read("/transfer/append-abandoned").read() == data
    copy = tmp_path / "append-abandoned"
    strata_dfs(cluster, "get", "/transfer/append-abandoned", str(copy))
    assert copy.read_bytes() == data
    del abandoned
