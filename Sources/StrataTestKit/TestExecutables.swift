import Foundation

/// Where tests find the programs this package builds.
public enum TestExecutables {
    /// The `strata` executable built beside the test bundle (the test runner may sit inside a
    /// bundle directory, so the build products are searched a few levels up).
    public static let strata: String = {
        let testBinary = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        var directory = testBinary.deletingLastPathComponent()
        for _ in 0..<4 {
            let candidate = directory.appendingPathComponent("strata").path
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
            directory = directory.deletingLastPathComponent()
        }
        return testBinary.deletingLastPathComponent().appendingPathComponent("strata").path
    }()
}
