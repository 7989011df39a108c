#!/usr/bin/env python3
"""Turns package-benchmark percentile files into Strata's benchmark report: throughput of each
benchmark and the ratios the issues set targets for, all from one run on one machine."""
import argparse
import glob
import os
import re
import sys

MIB = 1024 * 1024


def load_percentiles(directory):
    """{(benchmark, metric): {percentile: value}} with times in seconds."""
    results = {}
    for path in glob.glob(os.path.join(directory, "*.percentiles.tsv")):
        name = os.path.basename(path)
        match = re.match(r"Current_run\.([^.]+)\.(.+)\.([A-Za-z_]+)\.histogram\.percentiles\.tsv$", name)
        if not match:
            continue
        benchmark, metric = match.group(2), match.group(3)
        with open(path) as handle:
            header = handle.readline()
            scale = 1.0
            if "(ns)" in header:
                scale = 1e-9
            elif "(μs)" in header or "(us)" in header:
                scale = 1e-6
            elif "(ms)" in header:
                scale = 1e-3
            elif "(s)" in header:
                scale = 1.0
            values = {}
            for line in handle:
                parts = line.split()
                if len(parts) >= 2:
                    values[int(float(parts[0]))] = float(parts[1]) * (scale if metric == "wallClock" else 1.0)
        results[(benchmark.replace("_", " "), metric)] = values
    return results


def blockformat(args):
    data = load_percentiles(args.directory)
    buffer_bytes = 64 * MIB

    def seconds(name):
        # Best of the run's iterations: CPU-bound work only gets slower from interference.
        values = data.get((name, "wallClock"))
        if not values:
            sys.exit(f"benchmark '{name}' has no results in {args.directory}")
        return values[0], values[50]

    names = [
        "zstd-1 compress logs", "frame encode logs", "zstd-1 decompress logs", "frame decode logs", "crc32c logs",
        "zstd-1 compress random", "frame encode random", "zstd-1 decompress random", "frame decode random", "crc32c random",
    ]
    print(f"{'benchmark (64 MiB)':<28}{'best MB/s':>12}{'median MB/s':>14}")
    for name in names:
        best, median = seconds(name)
        print(f"{name:<28}{buffer_bytes / best / 1e6:>12.0f}{buffer_bytes / median / 1e6:>14.0f}")

    sizes = {}
    sizes_path = os.path.join(args.directory, "sizes.tsv")
    if os.path.exists(sizes_path):
        with open(sizes_path) as handle:
            for line in handle:
                name, _, value = line.rstrip("\n").rpartition("\t")
                sizes[name] = int(value)

    def stored(name):
        return sizes.get(name)

    checks = []
    encode = seconds("zstd-1 compress logs")[0] / seconds("frame encode logs")[0]
    checks.append(("frame encode logs / raw zstd-1 compress", encode, ">=", 0.9))
    decode = seconds("zstd-1 decompress logs")[0] / seconds("frame decode logs")[0]
    checks.append(("frame decode logs / raw zstd-1 decompress", decode, ">=", 0.85))
    random_speedup = seconds("frame encode logs")[0] / seconds("frame encode random")[0]
    checks.append(("frame encode random speed / logs speed", random_speedup, ">=", 3.0))
    framed, chunked = stored("frame encode logs"), stored("zstd-1 compress logs")
    if framed and chunked:
        checks.append(("stored bytes: frames / raw zstd-1 (same 256 KiB chunks)", framed / chunked, "<=", 1.02))
        if args.zstd_whole_stream:
            checks.append(("stored bytes: frames / zstd -1 whole file", framed / args.zstd_whole_stream, "<=", 1.02))
        print(f"\nlogs: {buffer_bytes} raw bytes -> {int(framed)} in frames (ratio {buffer_bytes / framed:.2f})")
    print(f"\n{'check':<58}{'ratio':>8}  target   result")
    failed = 0
    for label, value, relation, target in checks:
        ok = value >= target if relation == ">=" else value <= target
        failed += 0 if ok else 1
        print(f"{label:<58}{value:>8.3f}  {relation} {target:<5}  {'PASS' if ok else 'FAIL'}")
    return failed


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("suite", choices=["blockformat"])
    parser.add_argument("directory")
    parser.add_argument("--logs-bytes", type=int)
    parser.add_argument("--zstd-whole-stream", type=int)
    args = parser.parse_args()
    failed = blockformat(args)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
