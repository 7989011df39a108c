import ArgumentParser

/// `strata dfs`: file commands in the shapes of `hdfs dfs`.
struct DFSCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dfs",
        abstract: "Work with files in the Strata file system (the commands of `hdfs dfs`).",
        discussion: """
            Paths are absolute (/logs/a.log), relative to /user/USER, or hdfs:// URIs. The name node is
            --namenode, else $STRATA_NAMENODE, else 127.0.0.1:8020; the user is --user, else $STRATA_USER,
            else the operating system user.
            """,
        subcommands: [
            PutCommand.self, GetCommand.self, CatCommand.self, LsCommand.self, MkdirCommand.self, RmCommand.self,
            MvCommand.self, CpCommand.self, StatCommand.self, DuCommand.self, CountCommand.self, SetrepCommand.self,
            ChmodCommand.self, ChownCommand.self, TouchzCommand.self, AppendToFileCommand.self, TailCommand.self,
            TestCommand.self,
        ]
    )
}
