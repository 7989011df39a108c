import ArgumentParser
import Foundation
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import StrataCluster
import StrataCore
import StrataDataNode
import StrataNameNode

func makeLogger(verbose: Bool) -> Logger {
    var logger = Logger(label: "strata")
    logger.logLevel = verbose ? .debug : .info
    return logger
}

func runServices(_ services: [any Service], logger: Logger) async throws {
    let group = ServiceGroup(
        configuration: ServiceGroupConfiguration(
            services: services.map { ServiceGroupConfiguration.ServiceConfiguration(service: $0) },
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger))
    try await group.run()
}

/// Runs the service `make` builds, on an event loop group of its own, until SIGTERM or Ctrl-C;
/// then shuts the group down. A failure to build or run it is printed as `strata COMMAND: error`
/// with exit status 1.
func runDaemon(_ command: String, logger: Logger, _ make: (any EventLoopGroup) throws -> any Service) async throws {
    let group = MultiThreadedEventLoopGroup(numberOfThreads: System.coreCount)
    do {
        try await runServices([try make(group)], logger: logger)
    } catch {
        try? await group.shutdownGracefully()
        printError("strata \(command): \(error)")
        throw ExitCode(1)
    }
    try await group.shutdownGracefully()
}

struct NameNodeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "namenode", abstract: "Run a name node (namespace, journal, block placement) until SIGTERM or Ctrl-C.")

    @Option(name: .customLong("dir"), help: "Journal and checkpoint directory.")
    var directory: String = "./strata-data/namenode"

    @Option(help: "Address to listen on.")
    var host: String = "127.0.0.1"

    @Option(help: "RPC port.")
    var port: Int = 8020

    @Option(help: "HTTP port: WebHDFS and /metrics (0: any free port).")
    var httpPort: Int = 9870

    @Option(help: "The superuser (default: the user running the name node).")
    var superuser: String?

    @Option(help: "Seconds without a heartbeat before a data node is dead.")
    var heartbeatTimeout: Double = 30

    @Option(help: "Seconds a writer may go without renewing its lease before another writer may take its file (HDFS soft limit).")
    var leaseSoftLimit: Double = 60

    @Option(help: "Seconds a writer may go without renewing its lease before the name node recovers and closes its files.")
    var leaseHardLimit: Double = 1200

    @Option(help: "Fraction of blocks that must have a reported replica before start-up safe mode ends.")
    var safemodeThreshold: Double = 0.999

    @Flag(help: "Log debug messages.")
    var verbose = false

    func validate() throws {
        guard leaseSoftLimit > 0, leaseHardLimit >= leaseSoftLimit else {
            throw ValidationError("--lease-hard-limit must be at least --lease-soft-limit, and both positive")
        }
        guard (0...1).contains(safemodeThreshold) else { throw ValidationError("--safemode-threshold must be between 0 and 1") }
        guard heartbeatTimeout > 0 else { throw ValidationError("--heartbeat-timeout must be positive") }
    }

    func run() async throws {
        let logger = makeLogger(verbose: verbose)
        var configuration = NameNodeConfiguration(directory: directory, superuser: superuser ?? operatingSystemUser())
        configuration.host = host
        configuration.rpcPort = port
        configuration.blockManager.heartbeatTimeoutMs = Int64(heartbeatTimeout * 1000)
        configuration.leases.softLimitMs = Int64(leaseSoftLimit * 1000)
        configuration.leases.hardLimitMs = Int64(leaseHardLimit * 1000)
        configuration.safeMode.threshold = safemodeThreshold
        try await runDaemon("namenode", logger: logger) { group in
            let nameNode = try NameNode(configuration: configuration, logger: logger)
            return NameNodeService(nameNode: nameNode, httpPort: httpPort, group: group, logger: logger)
        }
    }
}

struct DataNodeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "datanode", abstract: "Run a data node (block storage and transfer) until SIGTERM or Ctrl-C.")

    @Option(name: .customLong("dir"), help: "Replica directory.")
    var directory: String = "./strata-data/datanode"

    @Option(help: "Address to listen on (and to advertise).")
    var host: String = "127.0.0.1"

    @Option(help: "Block transfer port (0: any free port).")
    var port: Int = 9866

    @Option(help: "HTTP port: WebHDFS data transfers and /metrics (0: any free port).")
    var httpPort: Int = 9864

    @Option(name: .customLong("namenode"), help: "Name node address host:port.")
    var nameNode: String = "127.0.0.1:8020"

    @Option(name: .customLong("namenode-http-port"), help: "The name node's HTTP port, named in the URLs WebHDFS CREATE answers with.")
    var nameNodeHTTPPort: Int = 9870

    @Option(help: "Seconds between heartbeats to the name node.")
    var heartbeatInterval: Double = 3

    @Option(help: "Block scanner rate: stored bytes per second read to verify finished replicas (0: no scanner).")
    var scanBytesPerSecond: Int = 1 << 20

    @Option(help: "Hours before the block scanner verifies a replica again (HDFS dfs.datanode.scan.period.hours).")
    var scanPeriodHours: Double = 504

    @Flag(help: "Log debug messages.")
    var verbose = false

    func validate() throws {
        guard heartbeatInterval >= 0.05 && heartbeatInterval <= 600 else {
            throw ValidationError("--heartbeat-interval must be between 0.05 and 600 seconds")
        }
        guard scanBytesPerSecond >= 0 else { throw ValidationError("--scan-bytes-per-second must be 0 or more") }
        guard scanPeriodHours > 0 else { throw ValidationError("--scan-period-hours must be positive") }
    }

    func run() async throws {
        let logger = makeLogger(verbose: verbose)
        let (nameNodeHost, nameNodePort) = try parseAddress(nameNode, defaultPort: 8020)
        var configuration = DataNodeConfiguration(directory: directory)
        configuration.heartbeatIntervalMs = Int64(heartbeatInterval * 1000)
        configuration.host = host
        configuration.transferPort = port
        configuration.nameNodeHost = nameNodeHost
        configuration.nameNodePort = nameNodePort
        configuration.scanBytesPerSecond = scanBytesPerSecond
        configuration.scanPeriodMs = Int64(scanPeriodHours * 3_600_000)
        try await runDaemon("datanode", logger: logger) { group in
            let dataNode = try DataNode(configuration: configuration, group: group, logger: logger)
            return DataNodeService(dataNode: dataNode, httpPort: httpPort, nameNodeHTTPPort: nameNodeHTTPPort, group: group, logger: logger)
        }
    }
}

struct ClusterCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cluster", abstract: "Run a whole local cluster.", subcommands: [ClusterUpCommand.self])
}

struct ClusterUpCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "up",
        abstract: "Start a name node, data nodes, a master, an agent per data node, the service launcher, the cron service and the image registry on loopback in this process, until Ctrl-C.",
        discussion: "Running it again on the same --data directory brings back every file.")

    @Option(help: "How many data nodes.")
    var nodes: Int = 3

    @Option(name: .customLong("data"), help: "Directory for all of the cluster's data.")
    var directory: String = "./strata-data"

    @Option(help: "Name node RPC port.")
    var port: Int = 8020

    @Option(help: "Name node HTTP port: WebHDFS and /metrics (0: any free port).")
    var httpPort: Int = 9870

    @Option(help: "First data node HTTP port, the others following it (0: any free ports).")
    var datanodeHttpPort: Int = 0

    @Option(help: "Seconds without a heartbeat before a data node is dead.")
    var heartbeatTimeout: Double = 30

    @Option(help: "Block scanner rate of each data node: stored bytes per second read to verify finished replicas (0: no scanner).")
    var scanBytesPerSecond: Int = 1 << 20

    @Option(help: "Hours before the block scanner verifies a replica again (HDFS dfs.datanode.scan.period.hours).")
    var scanPeriodHours: Double = 504

    @Option(help: "The master's HTTP port.")
    var masterPort: Int = 5050

    @Option(help: "First agent's HTTP port, the others following it (0: any free ports).")
    var agentPort: Int = 5051

    @Option(help: "The image registry's HTTP port (the OCI distribution API over the images in the DFS).")
    var registryPort: Int = 5000

    @Option(help: "The service launcher's HTTP port (Marathon's REST API v2).")
    var launcherPort: Int = 8080

    @Option(help: "The cron service's HTTP port (Chronos' REST API).")
    var cronPort: Int = 4400

    @Flag(help: "Start no master, no agents, no launcher, no cron service and no registry: the file system alone.")
    var noCompute = false

    @Flag(help: "Let tasks run as root (uid 0).")
    var allowRootTasks = false

    @Option(help: "Resources each agent offers, Mesos style: cpus:4;mem:8192;disk:20000 (those not given: measured, the whole machine for each agent).")
    var agentResources: String?

    @Flag(help: "Log debug messages.")
    var verbose = false

    func validate() throws {
        if let agentResources { _ = try parseResourceOverrides(agentResources, option: "--agent-resources") }
        guard (1...64).contains(nodes) else { throw ValidationError("--nodes must be between 1 and 64") }
        guard scanBytesPerSecond >= 0 else { throw ValidationError("--scan-bytes-per-second must be 0 or more") }
        guard scanPeriodHours > 0 else { throw ValidationError("--scan-period-hours must be positive") }
    }

    func run() async throws {
        var logger = makeLogger(verbose: verbose)
        logger.logLevel = verbose ? .debug : .notice
        var options = LocalClusterService.Options()
        options.dataNodes = nodes
        options.rpcPort = port
        options.httpPort = httpPort
        options.dataNodeHTTPPort = datanodeHttpPort
        options.superuser = operatingSystemUser()
        options.heartbeatIntervalMs = 3_000
        options.heartbeatTimeoutMs = Int64(heartbeatTimeout * 1000)
        options.monitorIntervalMs = 500
        options.scanBytesPerSecond = scanBytesPerSecond
        options.scanPeriodMs = Int64(scanPeriodHours * 3_600_000)
        options.logLevel = verbose ? .debug : .warning
        options.compute = !noCompute
        options.registry = !noCompute
        options.registryPort = registryPort
        options.launcher = !noCompute
        options.launcherPort = launcherPort
        options.cron = !noCompute
        options.cronPort = cronPort
        options.masterPort = masterPort
        options.agentPort = agentPort
        options.allowRootTasks = allowRootTasks
        if let agentResources { options.agentResourceOverrides = try parseResourceOverrides(agentResources, option: "--agent-resources") }
        let directory = URL(fileURLWithPath: self.directory).standardizedFileURL.path
        let cluster = LocalClusterService(directory: directory, options: options)
        // Says where the cluster listens once it serves; ends without a word if it stops first.
        async let announced: Void = {
            guard let running = try? await cluster.ready.wait() else { return }
            print("Strata cluster up (data in \(directory))")
            print("  name node      127.0.0.1:\(running.nameNodePort)  http://127.0.0.1:\(running.nameNodeHTTPPort)/webhdfs/v1/")
            for (index, node) in running.dataNodes.enumerated() {
                print("  data node \(index + 1)     127.0.0.1:\(node.transferPort)  http 127.0.0.1:\(node.httpPort)  \(node.configuration.directory)")
            }
            if let masterPort = running.masterPort {
                print("  master         http://127.0.0.1:\(masterPort)/master/state")
                for (index, port) in running.agentPorts.enumerated() {
                    print("  agent \(index + 1)        http://127.0.0.1:\(port)/state  beside data node \(index + 1)")
                }
            }
            if let launcherPort = running.launcherPort {
                print("  launcher       http://127.0.0.1:\(launcherPort)/v2/apps  (Marathon's REST API v2)")
            }
            if let cronPort = running.cronPort {
                print("  cron           http://127.0.0.1:\(cronPort)/v1/scheduler/jobs  (Chronos' REST API)")
            }
            if let registryPort = running.registryPort {
                print("  registry       http://127.0.0.1:\(registryPort)/v2/  (skopeo copy ... docker://127.0.0.1:\(registryPort)/NAME:TAG --dest-tls-verify=false)")
            }
            print("Use it with: STRATA_NAMENODE=127.0.0.1:\(running.nameNodePort) strata dfs ls /")
            if let masterPort = running.masterPort {
                print("             STRATA_MASTER=127.0.0.1:\(masterPort) strata job submit --input /logs --output /out -- grep -c ERROR")
            }
            print("Press Ctrl-C to stop.")
            fflush(nil)
        }()
        do {
            try await runServices([cluster], logger: logger)
        } catch {
            await announced
            printError("strata cluster up: \(error)")
            throw ExitCode(1)
        }
        await announced
        print("Strata cluster stopped.")
    }
}
