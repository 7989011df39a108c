import Benchmark
import Foundation
import StrataBlockFormat
import StrataCore

// Frame encode/decode against raw libzstd level 1 and ISA-L CRC32C on the same 64 MiB buffers:
// make-logs.py output and random bytes. Every benchmark processes the whole buffer once per
// iteration in frames of the default raw size, so their wall-clock times compare directly;
// `tools/bench blockformat` prints them as ratios.

let bufferBytes = 64 * 1024 * 1024
let frameSize = Limits.defaultRawFrameSizeBytes

/// The log buffer: STRATA_BENCH_LOGS names a make-logs.py output file (tools/bench makes one).
let logs: [UInt8] = {
    if let path = ProcessInfo.processInfo.environment["STRATA_BENCH_LOGS"],
        let data = FileManager.default.contents(atPath: path), data.count >= bufferBytes
    {
        return Array(data.prefix(bufferBytes))
    }
    fatalError("set STRATA_BENCH_LOGS to a file of at least 64 MiB from make-logs.py (tools/bench blockformat does)")
}()

let random: [UInt8] = {
    var generator = SystemRandomNumberGenerator()
    var bytes = [UInt8](repeating: 0, count: bufferBytes)
    bytes.withUnsafeMutableBytes { buffer in
        let words = buffer.bindMemory(to: UInt64.self)
        for index in words.indices { words[index] = generator.next() }
    }
    return bytes
}()

/// Encodes a buffer into frames, kept for the decode benchmarks.
func encodeFrames(_ data: [UInt8]) -> [[UInt8]] {
    let encoder = FrameEncoder()
    return data.withUnsafeBytes { raw in
        stride(from: 0, to: raw.count, by: frameSize).map { start in
            encoder.encode(UnsafeRawBufferPointer(rebasing: raw[start..<min(raw.count, start + frameSize)]))
        }
    }
}

/// zstd level-1 compressed chunks of the buffer (the raw libzstd baseline for decompression).
func compressChunks(_ data: [UInt8]) -> [[UInt8]] {
    let compressor = ZstdCompressor(level: 1)
    var scratch = [UInt8](repeating: 0, count: ZstdCompressor.bound(frameSize))
    return data.withUnsafeBytes { raw in
        stride(from: 0, to: raw.count, by: frameSize).map { start in
            let length = scratch.withUnsafeMutableBytes {
                compressor.compress(UnsafeRawBufferPointer(rebasing: raw[start..<min(raw.count, start + frameSize)]), into: $0)
            }
            return Array(scratch[0..<length])
        }
    }
}

/// Records the bytes a whole buffer takes once compressed (or framed), for the compression-ratio
/// check: package-benchmark rounds custom metrics to millions, so exact sizes go to the file
/// named by STRATA_BENCH_SIZES as `name<TAB>bytes` lines.
func recordStoredBytes(_ name: String, _ bytes: Int) {
    guard let path = ProcessInfo.processInfo.environment["STRATA_BENCH_SIZES"] else { return }
    let line = "\(name)\t\(bytes)\n"
    if let handle = FileHandle(forWritingAtPath: path) {
        handle.seekToEndOfFile()
        handle.write(Data(line.utf8))
        try? handle.close()
    } else {
        FileManager.default.createFile(atPath: path, contents: Data(line.utf8))
    }
}

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .mallocCountTotal],
        timeUnits: .microseconds,
        warmupIterations: 1,
        scalingFactor: .one,
        maxDuration: .seconds(5),
        maxIterations: 25
    )

    for (name, buffer) in [("logs", { logs }), ("random", { random })] as [(String, () -> [UInt8])] {
        Benchmark("zstd-1 compress \(name)") { benchmark in
            let data = buffer()
            let compressor = ZstdCompressor(level: 1)
            var scratch = [UInt8](repeating: 0, count: ZstdCompressor.bound(frameSize))
            var total = 0
            benchmark.startMeasurement()
            data.withUnsafeBytes { raw in
                scratch.withUnsafeMutableBytes { out in
                    for start in stride(from: 0, to: raw.count, by: frameSize) {
                        total &+= compressor.compress(UnsafeRawBufferPointer(rebasing: raw[start..<(start + frameSize)]), into: out)
                    }
                }
            }
            benchmark.stopMeasurement()
            recordStoredBytes(benchmark.name, total)
        }

        Benchmark("zstd-1 decompress \(name)") { benchmark in
            let chunks = compressChunks(buffer())
            let decompressor = ZstdDecompressor()
            var output = [UInt8](repeating: 0, count: frameSize)
            var total = 0
            benchmark.startMeasurement()
            output.withUnsafeMutableBytes { out in
                for chunk in chunks {
                    chunk.withUnsafeBytes { total &+= (try? decompressor.decompress($0, into: out).get()) ?? 0 }
                }
            }
            benchmark.stopMeasurement()
            blackHole(total)
        }

        Benchmark("crc32c \(name)") { benchmark in
            let data = buffer()
            benchmark.startMeasurement()
            blackHole(CRC32C.checksum(data))
            benchmark.stopMeasurement()
        }

        Benchmark("frame encode \(name)") { benchmark in
            let data = buffer()
            let encoder = FrameEncoder()
            var scratch = [UInt8](repeating: 0, count: FrameEncoder.maximumFrameLength(rawLength: frameSize))
            var total = 0
            benchmark.startMeasurement()
            data.withUnsafeBytes { raw in
                scratch.withUnsafeMutableBytes { out in
                    for start in stride(from: 0, to: raw.count, by: frameSize) {
                        total &+= encoder.encode(UnsafeRawBufferPointer(rebasing: raw[start..<(start + frameSize)]), into: out).frameLength
                    }
                }
            }
            benchmark.stopMeasurement()
            recordStoredBytes(benchmark.name, total)
        }

        Benchmark("frame decode \(name)") { benchmark in
            let frames = encodeFrames(buffer())
            let decoder = FrameDecoder()
            var output = [UInt8](repeating: 0, count: frameSize)
            benchmark.startMeasurement()
            output.withUnsafeMutableBytes { out in
                for frame in frames {
                    frame.withUnsafeBytes { _ = try? decoder.decode(frame: $0, maximumRawLength: frameSize, into: out) }
                }
            }
            benchmark.stopMeasurement()
        }
    }
}
