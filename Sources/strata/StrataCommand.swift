import ArgumentParser
import CMalloc
import StrataCore

@main
struct StrataCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "strata",
        abstract: "Strata: a storage-first data platform for clusters.",
        version: StrataVersion.current,
        subcommands: [
            VersionCommand.self, ClusterCommand.self, DFSCommand.self, FsckCommand.self, DFSAdminCommand.self,
            NameNodeCommand.self, DataNodeCommand.self, DebugCommand.self,
        ]
    )

    static func main() async {
        // Frames and transfer buffers are a few hundred KiB each: keep them in the heap for reuse
        // instead of mapping and unmapping fresh zeroed pages for every one (glibc's default
        // above 128 KiB), which cost as much CPU as compression did. Packets (4 MiB) and larger
        // are mapped: few per second, and their memory goes back to the system when freed, so a
        // long transfer does not leave the heap holding its peak.
        _ = mallopt(M_MMAP_THRESHOLD, 2 * 1024 * 1024)
        _ = mallopt(M_TRIM_THRESHOLD, 64 * 1024 * 1024)
        // Blocks move between threads (read on one, compressed on another, written from a
        // third): a few shared arenas, not one per thread each keeping its own free blocks.
        _ = mallopt(M_ARENA_MAX, 2)
        await main(nil)
    }
}

struct VersionCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "version", abstract: "Print Strata's version.")

    @Flag(help: "Print machine-readable JSON.")
    var json = false

    func run() throws {
        if json {
            print(try JSONOutput.encode(["version": StrataVersion.current]))
        } else {
            print("strata \(StrataVersion.current)")
        }
    }
}
