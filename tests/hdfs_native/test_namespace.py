"""The hdfs-native client (PyPI; Hadoop RPC, no REST) against a Strata cluster: namespace work
over ClientProtocol. Files are created with `strata dfs touchz` (Strata's own RPC on the same
port), so that these tests need only the name node."""

import os
import subprocess
import sys
import textwrap

import pytest


def touchz(cluster, *paths):
    environment = dict(os.environ, STRATA_NAMENODE=cluster["namenode"], STRATA_USER=cluster["user"])
    subprocess.run([cluster["binary"], "dfs", "touchz", *paths], check=True, env=environment, timeout=60)


def test_mkdirs_and_status(client, cluster):
    client.mkdirs("/mk/a/b", permission=0o750, create_parent=True)
    status = client.get_file_info("/mk/a/b")
    assert status.isdir
    assert status.path == "/mk/a/b"
    assert status.permission == 0o750
    assert status.owner == cluster["user"]
    assert status.modification_time > 0
    # Without create_parent, a missing parent is an error.
    with pytest.raises(FileNotFoundError):
        client.mkdirs("/mk/missing/c")


def test_file_status_as_hdfs_fills_it(client, cluster):
    client.mkdirs("/status", create_parent=True)
    touchz(cluster, "/status/empty")
    status = client.get_file_info("/status/empty")
    assert not status.isdir
    assert status.length == 0
    assert status.replication >= 1
    assert status.blocksize > 0
    assert status.permission == 0o644


def test_listing_recursive(client):
    for path in ["/tree/a/x", "/tree/a/y", "/tree/b"]:
        client.mkdirs(path, create_parent=True)
    assert sorted(s.path for s in client.list_status("/tree")) == ["/tree/a", "/tree/b"]
    assert sorted(s.path for s in client.list_status("/tree", recursive=True)) == [
        "/tree/a", "/tree/a/x", "/tree/a/y", "/tree/b"]


def test_listing_pages_through_a_large_directory(client, cluster):
    # More entries than one getListing answer holds (1,000): the client pages with startAfter.
    client.mkdirs("/large", create_parent=True)
    names = [f"entry-{index:05d}" for index in range(1100)]
    for start in range(0, len(names), 200):
        touchz(cluster, *[f"/large/{name}" for name in names[start:start + 200]])
    listed = [status.path for status in client.list_status("/large")]
    assert listed == [f"/large/{name}" for name in names]


def test_rename_with_and_without_overwrite(client, cluster):
    client.mkdirs("/rename", create_parent=True)
    touchz(cluster, "/rename/a", "/rename/b")
    # hdfs-native raises FileExistsError for org.apache.hadoop.fs.FileAlreadyExistsException.
    with pytest.raises(FileExistsError):
        client.rename("/rename/a", "/rename/b")
    client.rename("/rename/a", "/rename/b", overwrite=True)
    with pytest.raises(FileNotFoundError):
        client.get_file_info("/rename/a")
    client.rename("/rename/b", "/rename/c")
    assert client.get_file_info("/rename/c").path == "/rename/c"


def test_delete(client, cluster):
    client.mkdirs("/delete/full", create_parent=True)
    touchz(cluster, "/delete/full/file")
    with pytest.raises(Exception, match="PathIsNotEmptyDirectoryException"):
        client.delete("/delete/full")
    assert client.delete("/delete/full/file")
    assert client.delete("/delete", recursive=True)
    assert not client.delete("/delete")
    with pytest.raises(FileNotFoundError):
        client.get_file_info("/delete")


def test_set_permission_owner_and_replication(client, cluster):
    client.mkdirs("/attributes", create_parent=True)
    touchz(cluster, "/attributes/file")
    client.set_permission("/attributes/file", 0o600)
    # The cluster's user is its superuser, who may give files away.
    client.set_owner("/attributes/file", "alice", "staff")
    assert client.set_replication("/attributes/file", 2)
    status = client.get_file_info("/attributes/file")
    assert status.permission == 0o600
    assert (status.owner, status.group) == ("alice", "staff")
    assert status.replication == 2
    client.set_times("/attributes/file", 1_000_000, 2_000_000)
    status = client.get_file_info("/attributes/file")
    assert (status.modification_time, status.access_time) == (1_000_000, 2_000_000)


def test_content_summary(client, cluster):
    client.mkdirs("/summary/a", create_parent=True)
    client.mkdirs("/summary/b", create_parent=True)
    touchz(cluster, "/summary/a/one", "/summary/b/two")
    summary = client.get_content_summary("/summary")
    assert summary.file_count == 2
    assert summary.directory_count == 3
    assert summary.length == 0


def test_errors(client, cluster):
    with pytest.raises(FileNotFoundError):
        client.get_file_info("/no/such/file")
    with pytest.raises(FileNotFoundError):
        list(client.list_status("/no/such/directory"))
    client.mkdirs("/errors", create_parent=True)
    touchz(cluster, "/errors/file")
    with pytest.raises(Exception, match="ParentNotDirectoryException"):
        client.mkdirs("/errors/file/below", create_parent=True)
    # hdfs-native raises FileExistsError for org.apache.hadoop.fs.FileAlreadyExistsException.
    with pytest.raises(FileExistsError):
        client.mkdirs("/errors/file")


def test_permission_denied_for_another_user(client, cluster):
    client.mkdirs("/private", permission=0o755, create_parent=True)
    # The user is the connection context's effective user: hdfs-native takes it from
    # HADOOP_USER_NAME, read when the client connects, so another process plays another user.
    script = textwrap.dedent(f"""
        from hdfs_native import Client
        try:
            Client({cluster["url"]!r}).mkdirs("/private/mine")
        except Exception as error:
            print(error)
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60,
                            env=dict(os.environ, HADOOP_USER_NAME="mallory"))
    assert "org.apache.hadoop.security.AccessControlException" in result.stdout
    assert "mallory" in result.stdout
