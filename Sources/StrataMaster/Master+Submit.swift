import Foundation
import StrataClient
import StrataCompute
import StrataHTTP
import StrataWire

#if canImport(Glibc)
import Glibc
#endif

extension Master {
    /// Accepts a job: checks everything that can be checked before anything starts (options,
    /// resources no agent could fit, inputs that do not exist, an output that does), lists the
    /// input's blocks as the user, creates the output directory, and logs the job.
    ///
    /// A submission that names a job id the master has already returns that job as it is, with
    /// `created` false: a submitter that retries after a crash never starts the work twice.
    func submit(_ submission: ComputeAPI.JobSubmission, user: String) async throws -> (job: ComputeAPI.JobView, created: Bool) {
        if let id = submission.id {
            if let reason = JobSpec.invalidChosenIdReason(id) { throw APIError.badRequest(reason) }
            if let existing = state.withLock({ $0.view(ofJob: id) }) { return (existing, false) }
        }
        if let group = submission.placementGroup, group.isEmpty || group.utf8.count > 256 {
            throw APIError.badRequest("a placement group has 1 to 256 bytes")
        }
        for (key, value) in submission.labels ?? [:] where key.isEmpty || key.utf8.count > 256 || value.utf8.count > 1024 {
            throw APIError.badRequest("a label's key has 1 to 256 bytes and its value at most 1024")
        }
        guard submission.image != nil || (!submission.arguments.isEmpty && !submission.arguments[0].isEmpty) else {
            throw APIError.badRequest("no command given")
        }
        guard submission.image == nil || submission.rootFilesystem == nil else {
            throw APIError.badRequest("a job runs from an image or from a root filesystem, not both")
        }
        if let service = submission.service {
            guard submission.inputs.isEmpty, submission.output.isEmpty else {
                throw APIError.badRequest("a service task takes no inputs and no output")
            }
            guard (0...100).contains(service.portCount) else { throw APIError.badRequest("a service task takes 0 to 100 ports, not \(service.portCount)") }
        } else {
            guard !submission.inputs.isEmpty else { throw APIError.badRequest("no input given (--input PATH)") }
            guard submission.output.hasPrefix("/") else { throw APIError.badRequest("the output '\(submission.output)' is not an absolute DFS path") }
            for input in submission.inputs where !input.hasPrefix("/") {
                throw APIError.badRequest("the input '\(input)' is not an absolute DFS path")
            }
        }
        let cpus = submission.cpus ?? JobSpec.defaultResources.cpus
        let memMB = submission.memMB ?? JobSpec.defaultResources.memMB
        let diskMB = submission.diskMB ?? 0
        guard cpus > 0, cpus.isFinite else { throw APIError.badRequest("--cpus must be more than 0, not \(cpus)") }
        guard memMB >= 4, memMB.isFinite else { throw APIError.badRequest("--mem must be at least 4 (MB), not \(memMB)") }
        guard diskMB >= 0, diskMB.isFinite else { throw APIError.badRequest("--disk must not be negative") }
        let maxAttempts = submission.maxAttempts ?? JobSpec.defaultMaxAttempts
        guard (1...100).contains(maxAttempts) else { throw APIError.badRequest("--max-attempts must be 1 to 100, not \(maxAttempts)") }
        let localityWaitMs = submission.localityWaitMs ?? JobSpec.defaultLocalityWaitMs
        guard (0...3_600_000).contains(localityWaitMs) else { throw APIError.badRequest("--locality-wait must be 0 to 3600 s") }

        if let notBefore = submission.notBefore {
            let latest = clock.wallTimeMs + JobSpec.maximumNotBeforeLeadMs
            guard notBefore >= 0 else { throw APIError.badRequest("notBefore must be a wall time in milliseconds since the Unix epoch, not \(notBefore)") }
            guard notBefore <= latest else {
                throw APIError.badRequest(
                    "notBefore \(notBefore) is more than \(JobSpec.maximumNotBeforeLeadMs / 1000) s ahead of the master's clock (\(latest - JobSpec.maximumNotBeforeLeadMs) ms)")
            }
        }

        let output = submission.service == nil ? normalized(submission.output) : ""
        var arguments = submission.arguments
        var environment = submission.environment ?? [:]
        var image: TaskImage?
        if let reference = submission.image {
            (image, arguments, environment) = try await resolveImage(reference, arguments: arguments, environment: environment)
        }
        var spec = JobSpec(
            id: "", user: user, arguments: arguments, environment: environment, inputs: submission.inputs,
            output: output, resources: Resources(cpus: cpus, memMB: memMB, diskMB: diskMB), maxAttempts: maxAttempts,
            localityWaitMs: localityWaitMs, constraints: submission.constraints ?? [], rootFilesystem: submission.rootFilesystem,
            image: image, service: submission.service, labels: submission.labels, submittedAtMs: clock.wallTimeMs)
        spec.placementGroup = submission.placementGroup
        spec.notBeforeMs = submission.notBefore
        if let reason = neverPlaceableReason(spec) { throw APIError.unprocessable("no agent can ever run this job's tasks: \(reason)") }

        var splits = [InputSplit.none]
        if submission.service == nil {
            let client = try await clients.client(for: user)
            splits = try await dfs { try await self.splits(of: submission.inputs, client: client) }
            try await dfs {
                if try await client.status(output) != nil {
                    throw APIError.conflict("the output directory \(output) already exists")
                }
                try await client.mkdirs(output + "/_temporary")
            }
        }
        return try await handle { state, now, _ in
            if let id = submission.id, let existing = state.view(ofJob: id) {
                // Submitted meanwhile by another call.
                return (MasterState.Outcome(), (existing, false))
            }
            spec.id = submission.id ?? state.nextJobId
            return (state.submit(spec, splits: splits, now: now), (state.view(ofJob: spec.id)!, true))
        }
    }

    /// One split per block of every input file, with the data nodes holding it.
    func splits(of inputs: [String], client: DFSClient) async throws -> [InputSplit] {
        var files: [Strata_Wire_FileStatus] = []
        for input in inputs {
            let matched = try await expand(input, client: client)
            guard !matched.isEmpty else {
                throw APIError.notFound("input path \(input) does not exist")
            }
            files += matched
        }
        var splits: [InputSplit] = []
        var seen = Set<String>()
        for file in files where seen.insert(file.path).inserted {
            guard file.length > 0 else { continue }
            let located = try await client.blockLocations(file.path, offset: 0, length: file.length)
            for block in located.blocks {
                splits.append(InputSplit(
                    path: file.path, offset: block.offset, length: block.block.numBytes, fileLength: located.fileLength,
                    dataNodes: block.locations.map(\.nodeID)))
            }
        }
        return splits
    }

    /// The files an input names: a file, a directory's files (not its hidden `_` and `.` ones,
    /// as Hadoop's input formats skip them), or a glob's matches.
    func expand(_ input: String, client: DFSClient) async throws -> [Strata_Wire_FileStatus] {
        let path = normalized(input)
        if path.contains(where: { "*?[".contains($0) }) {
            var components = path.split(separator: "/").map(String.init)
            let pattern = components.removeLast()
            guard !components.contains(where: { $0.contains(where: { "*?[".contains($0) }) }) else {
                throw APIError.badRequest("a glob may only be in the input's last component: \(input)")
            }
            let directory = "/" + components.joined(separator: "/")
            guard let status = try await client.status(directory), status.kind == .directory else { return [] }
            let entries = try await client.list(directory)
            let matches = entries.filter { entry in
                let name = String(entry.path.split(separator: "/").last ?? "")
                return fnmatch(pattern, name, 0) == 0
            }
            var files: [Strata_Wire_FileStatus] = []
            for entry in matches {
                files += entry.kind == .directory ? try await visibleFiles(in: entry.path, client: client) : [entry]
            }
            return files
        }
        guard let status = try await client.status(path) else { return [] }
        if status.kind == .directory {
            let files = try await visibleFiles(in: path, client: client)
            guard !files.isEmpty else { throw APIError.badRequest("the input directory \(path) has no files") }
            return files
        }
        var file = status
        file.path = path
        return [file]
    }

    func visibleFiles(in directory: String, client: DFSClient) async throws -> [Strata_Wire_FileStatus] {
        try await client.list(directory).filter { entry in
            let name = entry.path.split(separator: "/").last ?? ""
            return entry.kind == .file && !name.hasPrefix("_") && !name.hasPrefix(".")
        }.map { entry in
            var file = entry
            if !file.path.hasPrefix("/") { file.path = directory + "/" + file.path }
            return file
        }
    }

    func normalized(_ path: String) -> String {
        "/" + path.split(separator: "/").joined(separator: "/")
    }

    /// Runs DFS calls, turning the file system's errors into the HTTP statuses they mean.
    func dfs<Result>(_ body: () async throws -> Result) async throws -> Result {
        do {
            return try await body()
        } catch let error as RemoteException {
            switch error.exceptionClass {
            case .fileNotFound: throw APIError.notFound(error.message)
            case .accessControl: throw APIError.forbidden(error.message)
            case .fileAlreadyExists: throw APIError.conflict(error.message)
            case .safeMode: throw APIError(.serviceUnavailable, error.message)
            default: throw APIError(.internalServerError, "\(error)")
            }
        }
    }
}
