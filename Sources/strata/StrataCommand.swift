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
            NameNodeCommand.self, DataNodeCommand.self, MasterCommand.self, AgentCommand.self, RegistryCommand.self, LauncherCommand.self, CronCommand.self, JobCommand.self, TaskCommand.self,
            ImageCommand.self, AppCommand.self,
            DebugCommand.self,
        ]
    )

    static func main() async {
        ProcessMemory.configure()
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
