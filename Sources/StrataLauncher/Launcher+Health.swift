import AsyncHTTPClient
import Foundation
import NIOCore
import NIOPosix
import StrataApps
import StrataCompute
import StrataCore
import Synchronization

extension Launcher {
    struct CheckKey: Hashable, Sendable {
        var instanceId: String
        var checkIndex: Int
    }

    /// Runs the apps' HTTP and TCP health checks (Marathon's own checks; the `MESOS_*` kinds
    /// are run the same way) on running instances, each at its interval, and feeds the results
    /// to the state. COMMAND checks are not run yet.
    func healthLoop() async {
        let schedule = CheckSchedule()
        await withDiscardingTaskGroup { checks in
            while !Task.isCancelled {
                let now = clock.now
                let targets = state.withLock { state -> [(CheckKey, HealthCheck, String, Int)] in
                    var targets: [(CheckKey, HealthCheck, String, Int)] = []
                    for instance in state.instances.values where instance.state == .running && !instance.isBeingKilled {
                        guard let app = state.apps[instance.appId], app.configVersion == instance.configVersion, let host = instance.host else { continue }
                        for (index, check) in app.healthChecks.enumerated() {
                            if case .command = check.protocol.kind { continue }
                            let port = check.port ?? (instance.ports.indices.contains(check.portIndex ?? 0) ? instance.ports[check.portIndex ?? 0] : nil)
                            guard let port else { continue }
                            targets.append((CheckKey(instanceId: instance.id, checkIndex: index), check, host, port))
                        }
                    }
                    return targets
                }
                let live = Set(targets.map(\.0))
                schedule.due.withLock { due in due = due.filter { live.contains($0.key) } }
                for (key, check, host, port) in targets {
                    let isDue = schedule.due.withLock { due -> Bool in
                        guard let next = due[key] else { return true }
                        return next <= now
                    }
                    guard isDue, schedule.inFlight.withLock({ $0.insert(key).inserted }) else { continue }
                    schedule.due.withLock { $0[key] = now.advanced(byMilliseconds: Int64(check.intervalSeconds) * 1000) }
                    checks.addTask {
                        let (passed, cause) = await self.probe(check, host: host, port: port)
                        self.counters.count { counts in
                            counts.healthChecks += 1
                            if !passed { counts.healthChecksFailed += 1 }
                        }
                        schedule.inFlight.withLock { _ = $0.remove(key) }
                        _ = try? await self.handle { state, now, wall in
                            (state.healthResult(instanceId: key.instanceId, checkIndex: key.checkIndex, passed: passed, cause: cause, now: now, wallTimeMs: wall), ())
                        }
                        self.stateChanges.signal()
                    }
                }
                let seen = stateChanges.count
                let next = schedule.due.withLock { $0.values.min() } ?? now.advanced(byMilliseconds: 1_000)
                await clock.wait(for: stateChanges, after: seen, until: min(max(next, now.advanced(byMilliseconds: 50)), now.advanced(byMilliseconds: 1_000)))
            }
        }
    }

    /// One check: HTTP(S) answers 200 to 399 (1xx too with `ignoreHttp1xx`), TCP connects.
    func probe(_ check: HealthCheck, host: String, port: Int) async -> (Bool, String?) {
        switch check.protocol.kind {
        case .http(let secure):
            let url = "\(secure ? "https" : "http")://\(host):\(port)\(check.path ?? "/")"
            do {
                let response = try await http.execute(HTTPClientRequest(url: url), timeout: .seconds(Int64(max(1, check.timeoutSeconds))))
                _ = try? await response.body.collect(upTo: 1 << 20)
                let code = Int(response.status.code)
                if (200..<400).contains(code) || (check.ignoreHttp1xx && (100..<200).contains(code)) { return (true, nil) }
                return (false, "HTTP \(code) from \(url)")
            } catch {
                return (false, "\(url): \(error)")
            }
        case .tcp:
            do {
                let channel = try await ClientBootstrap(group: group)
                    .connectTimeout(.seconds(Int64(max(1, check.timeoutSeconds))))
                    .connect(host: host, port: port).get()
                try? await channel.close()
                return (true, nil)
            } catch {
                return (false, "TCP \(host):\(port): \(error)")
            }
        case .command:
            return (true, nil)
        }
    }
}

/// When each check is next due, and the checks being run.
final class CheckSchedule: Sendable {
    let due = Mutex<[Launcher.CheckKey: MonotonicInstant]>([:])
    let inFlight = Mutex<Set<Launcher.CheckKey>>([])
}
