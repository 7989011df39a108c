"""Real WebHDFS clients against Strata: the `hdfs` package (HdfsCLI) and fsspec's webhdfs file system."""

import hashlib
import os

import fsspec
import pytest
import requests
from hdfs import HdfsError, InsecureClient

MIB = 1024 * 1024


@pytest.fixture(scope="module")
def client(cluster):
    return InsecureClient(cluster["url"], user=cluster["user"])


@pytest.fixture(scope="module")
def fs(cluster):
    return fsspec.filesystem("webhdfs", host="127.0.0.1", port=cluster["port"], user=cluster["user"])


def test_hdfs_upload_download_50_mib(client):
    data = os.urandom(50 * MIB)
    client.makedirs("/py/big")
    client.write("/py/big/data.bin", data=data, overwrite=True)
    digest = hashlib.sha256()
    with client.read("/py/big/data.bin", chunk_size=MIB) as reader:
        for chunk in reader:
            digest.update(chunk)
    assert digest.hexdigest() == hashlib.sha256(data).hexdigest()
    assert client.status("/py/big/data.bin")["length"] == len(data)


def test_hdfs_namespace(client, cluster):
    client.makedirs("/py/ns/sub", permission="750")
    client.write("/py/ns/a.txt", data=b"alpha", overwrite=True)
    status = client.status("/py/ns/a.txt")
    assert status["type"] == "FILE" and status["length"] == 5 and status["permission"] == "644"
    assert client.status("/py/ns/sub")["permission"] == "750"
    assert client.list("/py/ns") == ["a.txt", "sub"]
    names = [name for name, _ in client.list("/py/ns", status=True)]
    assert names == ["a.txt", "sub"]
    summary = client.content("/py/ns")
    assert summary["fileCount"] == 1 and summary["directoryCount"] == 2 and summary["length"] == 5
    client.rename("/py/ns/a.txt", "/py/ns/sub")
    with client.read("/py/ns/sub/a.txt") as reader:
        assert reader.read() == b"alpha"
    client.set_replication("/py/ns/sub/a.txt", 2)
    client.set_permission("/py/ns/sub/a.txt", "600")
    client.set_owner("/py/ns/sub/a.txt", owner="bob", group="staff")
    changed = client.status("/py/ns/sub/a.txt")
    assert (changed["replication"], changed["permission"], changed["owner"], changed["group"]) == (2, "600", "bob", "staff")
    with client.read("/py/ns/sub/a.txt", offset=1, length=3) as reader:
        assert reader.read() == b"lph"
    client.write("/py/ns/sub/a.txt", data=b"-more", append=True)
    with client.read("/py/ns/sub/a.txt") as reader:
        assert reader.read() == b"alpha-more"
    assert client.delete("/py/ns", recursive=True) is True
    assert client.status("/py/ns", strict=False) is None


def test_hdfs_errors(client):
    with pytest.raises(HdfsError) as missing:
        client.status("/py/no/such/file")
    assert missing.value.exception == "FileNotFoundException"
    client.write("/py/exists.txt", data=b"x", overwrite=True)
    with pytest.raises(HdfsError) as exists:
        client.write("/py/exists.txt", data=b"y")
    assert exists.value.exception == "FileAlreadyExistsException"
    with pytest.raises(HdfsError) as not_empty:
        client.makedirs("/py/dir/child")
        client.delete("/py/dir")
    assert not_empty.value.exception == "PathIsNotEmptyDirectoryException"


def crc32c(data, crc=0):
    crc ^= 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 & -(crc & 1))
    return crc ^ 0xFFFFFFFF


def test_checksum_matches_hadoop_layout(client):
    data = os.urandom(5000)
    client.write("/py/sum.bin", data=data, overwrite=True)
    crcs = b"".join(crc32c(data[i:i + 512]).to_bytes(4, "big") for i in range(0, len(data), 512))
    expected = (512).to_bytes(4, "big") + (0).to_bytes(8, "big") + hashlib.md5(hashlib.md5(crcs).digest()).digest()
    checksum = client.checksum("/py/sum.bin")
    assert checksum == {"algorithm": "MD5-of-0MD5-of-512CRC32C", "bytes": expected.hex(), "length": 28}


def test_fsspec(fs):
    data = os.urandom(6 * MIB + 12345)
    fs.mkdir("/fs/dir")
    with fs.open("/fs/dir/data.bin", "wb") as out:
        for start in range(0, len(data), MIB):
            out.write(data[start:start + MIB])
    assert fs.info("/fs/dir/data.bin")["size"] == len(data)
    with fs.open("/fs/dir/data.bin", "rb") as handle:
        for offset, length in [(0, 10), (MIB - 3, 7), (5 * MIB + 11, 70000), (len(data) - 5, 5)]:
            handle.seek(offset)
            assert handle.read(length) == data[offset:offset + length]
    assert hashlib.sha256(fs.cat("/fs/dir/data.bin")).hexdigest() == hashlib.sha256(data).hexdigest()
    assert [entry.rstrip("/").split("/")[-1] for entry in fs.ls("/fs/dir", detail=False)] == ["data.bin"]
    assert fs.content_summary("/fs")["length"] == len(data)
    fs.mv("/fs/dir/data.bin", "/fs/moved.bin")
    assert fs.exists("/fs/moved.bin") and not fs.exists("/fs/dir/data.bin")
    fs.set_replication("/fs/moved.bin", 1)
    fs.chmod("/fs/moved.bin", "640")  # fsspec passes the octal digits as given
    fs.chown("/fs/moved.bin", owner="carol", group="staff")
    info = fs.info("/fs/moved.bin")
    assert (info["replication"], info["permission"], info["owner"], info["group"]) == (1, "640", "carol", "staff")
    with pytest.raises(FileNotFoundError):
        fs.info("/fs/missing")
    fs.rm("/fs", recursive=True)
    assert not fs.exists("/fs")


def test_curl_level_shapes(cluster):
    base = cluster["url"] + "/webhdfs/v1"
    user = {"user.name": cluster["user"]}
    first = requests.put(base + "/raw/f", params={"op": "CREATE", **user}, allow_redirects=False)
    assert first.status_code == 307 and "/webhdfs/v1/raw/f?" in first.headers["Location"]
    created = requests.put(first.headers["Location"], data=b"raw bytes")
    assert created.status_code == 201 and created.headers["Location"].startswith("webhdfs://")
    no_redirect = requests.get(base + "/raw/f", params={"op": "OPEN", "noredirect": "true", **user})
    assert no_redirect.status_code == 200 and set(no_redirect.json()) == {"Location"}
    assert requests.get(base + "/raw/f", params={"op": "OPEN", **user}).content == b"raw bytes"
    bad = requests.get(base + "/raw/f", params={"op": "OPEN", "offset": "-1", **user})
    assert bad.status_code == 400 and bad.json()["RemoteException"]["exception"] == "IllegalArgumentException"
    unknown = requests.get(base + "/raw/f", params={"op": "FROB", **user})
    assert unknown.status_code == 400
    missing = requests.get(base + "/raw/none", params={"op": "GETFILESTATUS", **user})
    assert missing.status_code == 404 and missing.json()["RemoteException"]["javaClassName"] == "java.io.FileNotFoundException"
    metrics = requests.get(cluster["url"] + "/metrics").text
    assert "strata_namenode_webhdfs_requests_total" in metrics and 'strata_namenode_datanodes{state="live"} 3' in metrics


def resident_bytes(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def test_streaming_keeps_server_memory_bounded(cluster):
    """The issue's bound: moving STRATA_WEBHDFS_STREAM_MIB (default 1024) each way grows the
    server process's resident memory by less than 100 MB."""
    size = int(os.environ.get("STRATA_WEBHDFS_STREAM_MIB", "1024")) * MIB
    pid = cluster["pid"]
    block = os.urandom(MIB)
    base = cluster["url"] + "/webhdfs/v1"
    params = {"user.name": cluster["user"]}
    # Warm up (first connections, thread pools), then take the baseline.
    requests.put(base + "/stream/warm", params={"op": "CREATE", "overwrite": "true", **params}, data=b"w")
    baseline = peak = resident_bytes(pid)

    def body():
        nonlocal peak
        for index in range(size // MIB):
            if index % 16 == 0:
                peak = max(peak, resident_bytes(pid))
            yield block

    step = requests.put(base + "/stream/big", params={"op": "CREATE", "overwrite": "true", "noredirect": "true", **params})
    created = requests.put(step.json()["Location"], data=body())
    assert created.status_code == 201, created.text
    digest, expected, received = hashlib.sha256(), hashlib.sha256(), 0
    with requests.get(base + "/stream/big", params={"op": "OPEN", **params}, stream=True) as response:
        for index, chunk in enumerate(response.iter_content(MIB)):
            digest.update(chunk)
            received += len(chunk)
            if index % 16 == 0:
                peak = max(peak, resident_bytes(pid))
    for _ in range(size // MIB):
        expected.update(block)
    assert received == size and digest.hexdigest() == expected.hexdigest()
    growth = peak - baseline
    print(f"streamed {size // MIB} MiB each way; server resident memory grew {growth // MIB} MiB")
    assert growth < 100 * 1000 * 1000
