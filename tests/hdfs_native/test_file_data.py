"""The hdfs-native client's file calls that need no data node: creating, closing, reading and
appending to empty files (ClientProtocol's create, complete, getBlockLocations and append).
Files with bytes are in test_data_transfer.py."""

import pytest
from hdfs_native import WriteOptions


def test_empty_file_created_closed_and_read(client, cluster):
    client.mkdirs("/files", create_parent=True)
    with client.create("/files/empty", WriteOptions(permission=0o640)):
        pass
    status = client.get_file_info("/files/empty")
    assert not status.isdir
    assert status.length == 0
    assert status.permission == 0o640
    assert status.owner == cluster["user"]
    with client.read("/files/empty") as reader:
        assert reader.size == 0
        assert reader.read() == b""


def test_create_over_an_existing_file(client):
    client.mkdirs("/files", create_parent=True)
    with client.create("/files/again"):
        pass
    with pytest.raises(FileExistsError):
        client.create("/files/again")
    with client.create("/files/again", WriteOptions(overwrite=True)):
        pass
    assert client.get_file_info("/files/again").length == 0


def test_append_to_an_empty_file_and_missing_files(client):
    client.mkdirs("/files", create_parent=True)
    with client.create("/files/appended"):
        pass
    with client.append("/files/appended"):
        pass
    assert client.get_file_info("/files/appended").length == 0
    with pytest.raises(FileNotFoundError):
        client.read("/files/missing")
    with pytest.raises(FileNotFoundError):
        client.append("/files/missing")


def test_recover_lease_closes_a_file_left_open(client):
    client.mkdirs("/files", create_parent=True)
    writer = client.create("/files/left-open")
    # Open for writing, no block yet: recovering the lease closes it at once.
    assert client.recover_lease("/files/left-open")
    assert client.recover_lease("/files/left-open")
    # The writer's own close afterwards finds the file closed: still fine (a retried complete).
    writer.close()
    assert client.get_file_info("/files/left-open").length == 0
    with pytest.raises(FileNotFoundError):
        client.recover_lease("/files/missing")
