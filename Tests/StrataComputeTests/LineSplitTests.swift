import StrataCompute
import StrataTestKit
import Testing

/// Splits at arbitrary byte offsets still hand every line to exactly one task, whole.
struct LineSplitTests {
    /// What a reader does with `LineSplit`: the bytes of the lines that start in `offset..<end`.
    func owned(_ file: [UInt8], offset: Int, end: Int) -> ArraySlice<UInt8> {
        let probe = file[max(0, offset - 1)..<end]
        guard let begin = LineSplit.firstLineStart(offset: UInt64(offset), splitEnd: UInt64(end), probe: probe) else { return [] }
        var last = end
        if end < file.count {
            last += LineSplit.tailLength(endsWithNewline: file[end - 1] == UInt8(ascii: "\n"), tail: file[end...]) ?? (file.count - end)
        }
        return file[Int(begin)..<last]
    }

    @Test(arguments: [1, 2, 3, 4, 5])
    func everyLineGoesToOneSplitWhole(seed: UInt64) {
        var generator = SeededGenerator(seed: seed)
        var file: [UInt8] = []
        for line in 0..<300 {
            let length = Int.random(in: 0...(line % 50 == 0 ? 400 : 40), using: &generator)
            file += (0..<length).map { _ in UInt8.random(in: 97...122, using: &generator) } + [UInt8(ascii: "\n")]
        }
        if seed % 2 == 0 { file += Array("no newline at the end".utf8) }
        for blockSize in [1, 7, 64, 100, 1000] {
            var joined: [UInt8] = []
            var offset = 0
            while offset < file.count {
                let end = min(file.count, offset + blockSize)
                joined += owned(file, offset: offset, end: end)
                offset = end
            }
            #expect(joined == file, "block size \(blockSize)")
        }
    }

    @Test func aSplitInsideOneLongLineOwnsNothing() {
        let file = Array("short\n".utf8) + Array(repeating: UInt8(ascii: "x"), count: 100) + Array("\nend\n".utf8)
        #expect(owned(file, offset: 20, end: 40).isEmpty)
        #expect(owned(file, offset: 0, end: 10) == file[0..<107])
    }
}
