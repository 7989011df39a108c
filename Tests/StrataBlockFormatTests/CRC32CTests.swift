import Testing
import StrataBlockFormat

@Suite struct CRC32CTests {
    @Test func standardCheckValue() {
        #expect(CRC32C.checksum(Array("123456789".utf8)) == 0xE306_9283)
    }

    @Test func emptyInputIsZero() {
        #expect(CRC32C.checksum([]) == 0)
    }

    @Test func continuingMatchesOneShot() {
        let data = TestData.random(100_000, seed: 3)
        let whole = CRC32C.checksum(data)
        for split in [0, 1, 511, 4096, 99_999, 100_000] {
            let first = CRC32C.checksum(Array(data[..<split]))
            let both = CRC32C.checksum(Array(data[split...]), continuing: first)
            #expect(both == whole, "split at \(split)")
        }
    }

    @Test func knownVectors() {
        // RFC 3720 (iSCSI) appendix B.4 test vectors.
        #expect(CRC32C.checksum([UInt8](repeating: 0, count: 32)) == 0x8A91_36AA)
        #expect(CRC32C.checksum([UInt8](repeating: 0xFF, count: 32)) == 0x62A8_AB43)
        #expect(CRC32C.checksum((0..<32).map { UInt8($0) }) == 0x46DD_794E)
    }
}
