#!/usr/bin/env python3
"""The hdfs-native side of `tools/bench rpc`, run with the Python of the venv that holds
hdfs-native (Hadoop RPC to the name node, Hadoop's data transfer protocol to the data nodes).

  bench-rpc-client.py URL put LOCAL PATH        write LOCAL to PATH, 4 MiB per write call
  bench-rpc-client.py URL get PATH OUT          read PATH into OUT ("-" discards the bytes)
  bench-rpc-client.py URL stat PATH START END   getFileInfo of PATH in a loop from the wall-clock
                                                instant START to END; prints the calls made

Each prints one JSON object: what it did and its own timing."""
import json
import sys
import time

from hdfs_native import Client, WriteOptions

CHUNK = 4 * 1024 * 1024


def put(client, local, path):
    started = time.monotonic()
    written = 0
    with open(local, "rb") as source:
        writer = client.create(path, WriteOptions(overwrite=True))
        while True:
            chunk = source.read(CHUNK)
            if not chunk:
                break
            writer.write(chunk)
            written += len(chunk)
        writer.close()
    return {"bytes": written, "seconds": time.monotonic() - started}


def get(client, path, out):
    started = time.monotonic()
    reader = client.read(path)
    size = len(reader)
    read = 0
    sink = None if out == "-" else open(out, "wb")
    try:
        for chunk in reader.read_range_stream(0, size):
            read += len(chunk)
            if sink is not None:
                sink.write(chunk)
    finally:
        if sink is not None:
            sink.close()
    if read != size:
        sys.exit(f"read {read} bytes of {size}")
    return {"bytes": read, "seconds": time.monotonic() - started}


def stat(client, path, start, end):
    client.get_file_info(path)  # the connection is open before the window starts
    while time.time() < start:
        time.sleep(0.001)
    calls = 0
    while time.time() < end:
        client.get_file_info(path)
        calls += 1
    return {"calls": calls}


def main():
    url, mode, *args = sys.argv[1:]
    client = Client(url)
    if mode == "put":
        result = put(client, *args)
    elif mode == "get":
        result = get(client, *args)
    elif mode == "stat":
        result = stat(client, args[0], float(args[1]), float(args[2]))
    else:
        sys.exit(f"unknown mode {mode}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
