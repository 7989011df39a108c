import StrataCompute
import Testing

struct ResourcesTests {
    @Test func fractionalCPUsFreeExactlyWhatTheyTook() {
        var free = Resources(cpus: 1, memMB: 1024, diskMB: 0)
        let small = Resources(cpus: 0.1, memMB: 100)
        for _ in 0..<10 { #expect(free.fits(small)); free -= small }
        #expect(!free.fits(Resources(cpus: 0.1)))
        #expect(free.fits(Resources(memMB: 24)))
    }

    @Test func dominantShareIsTheLargestFraction() {
        let total = Resources(cpus: 9, memMB: 18_000)
        #expect(Resources(cpus: 1, memMB: 4_000).dominantShare(of: total) == 4_000.0 / 18_000)
        #expect(Resources(cpus: 3, memMB: 1_000).dominantShare(of: total) == 3.0 / 9)
    }

    @Test func constraintsParseFromBothFormsAndRejectNonsense() throws {
        #expect(try Constraint(parsing: "hostname:UNIQUE") == Constraint(field: "hostname", operator: .unique))
        #expect(try Constraint(parsing: "rack:LIKE:r[12]").value == "r[12]")
        #expect(throws: ConstraintError.self) { try Constraint(parsing: "hostname:SOMETIMES") }
        #expect(throws: ConstraintError.self) { try Constraint(parsing: "rack:LIKE") }
        #expect(throws: ConstraintError.self) { try Constraint(parsing: "UNIQUE") }
        #expect(PortRange(parsing: "31000-32000") == PortRange(31000, 32000))
        #expect(PortRange(parsing: "9-1") == nil)
    }

    @Test func portsInUseAreTakenOutOfTheRanges() {
        let ranges = [PortRange(31000, 31009), PortRange(8080, 8080)]
        #expect(ranges.subtracting([]) == ranges)
        #expect(ranges.subtracting([31000, 31005, 31009, 8080, 9999]) == [PortRange(31001, 31004), PortRange(31006, 31008)])
        #expect([PortRange(5, 5)].subtracting([5]).isEmpty)
    }
}
