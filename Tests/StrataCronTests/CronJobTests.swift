import Foundation
@testable import StrataCron
import Testing

/// Reading Chronos' job JSON: its defaults, Strata's fields, and every refusal.
struct CronJobTests {
    let now = instant("2025-06-01T12:00:00Z")

    func refusal(_ json: String) -> CronError? {
        do {
            _ = try CronJob.parse(Array(json.utf8), nowMs: now)
            return nil
        } catch {
            return error
        }
    }

    @Test func aMinimalJobGetsChronosDefaults() throws {
        let job = try CronJob.parse(Array(#"{"name": "nightly", "command": "compact", "schedule": "R/2025-06-02T02:00:00Z/P1D"}"#.utf8), nowMs: now)
        #expect(job.shell)
        #expect(job.arguments == [])
        #expect(job.epsilon == "PT60S")
        #expect(job.catchUpPolicy.epsilonMilliseconds == 60_000)
        #expect(job.retries == 2)
        #expect(job.cpus == 0.1 && job.mem == 128 && job.disk == 256)
        #expect(job.owner == "" && job.ownerName == "" && job.description == "")
        #expect(!job.disabled && !job.softError)
        #expect(job.environmentVariables == [] && job.container == nil)
        #expect(job.concurrencyPolicy == .allow)
        #expect(job.successfulHistoryLimit == 3 && job.failedHistoryLimit == 1)
        #expect(job.startingDeadlineSeconds == nil && job.inputPath == nil)
        #expect(!job.isDependent && job.parents == [])
        #expect(job.scheduleTimeZone == "")
    }

    @Test func everyFieldIsRead() throws {
        let job = try CronJob.parse(Array(#"""
            {"name": "camus_kafka2hdfs", "command": "/srv/kafka_hdfs_job.bash", "arguments": ["-verbose", "-debug"],
             "shell": false, "epsilon": "PT30M", "executor": "", "retries": 3, "owner": "bofh@example.com", "ownerName": "BOFH",
             "description": "Kafka to the DFS", "async": false, "successCount": 190, "errorCount": 3,
             "lastSuccess": "2014-03-08T16:57:17.507Z", "lastError": "2014-03-01T00:10:15.957Z",
             "cpus": "0.5", "disk": 10240, "mem": "1024", "disabled": true, "softError": true, "runAsUser": "etl",
             "uris": ["https://example.com/x"], "fetch": [{"uri": "https://example.com/y"}],
             "schedule": "0 2 * * *", "scheduleTimeZone": "Europe/Berlin",
             "environmentVariables": [{"name": "JVMOPTS", "value": "-Xmx1000m"}, {"name": "EMPTY"}],
             "container": {"type": "docker", "image": "tools/etl:1.2", "forcePullImage": true, "network": "BRIDGE", "volumes": []},
             "concurrencyPolicy": "forbid", "successfulHistoryLimit": 5, "failedHistoryLimit": 0, "startingDeadlineSeconds": 300,
             "inputPath": "/data/events/2025"}
            """#.utf8), nowMs: now)
        #expect(job.arguments == ["-verbose", "-debug"] && !job.shell)
        #expect(job.epsilon == "PT30M" && job.retries == 3)
        #expect(job.owner == "bofh@example.com" && job.ownerName == "BOFH" && job.description == "Kafka to the DFS")
        #expect(job.cpus == 0.5 && job.disk == 10240 && job.mem == 1024)
        #expect(job.disabled && job.softError && job.runAsUser == "etl")
        #expect(job.schedule == "0 2 * * *" && job.scheduleTimeZone == "Europe/Berlin")
        #expect(job.environmentVariables == [.init(name: "JVMOPTS", value: "-Xmx1000m"), .init(name: "EMPTY", value: "")])
        #expect(job.container == .init(type: "DOCKER", image: "tools/etl:1.2", forcePullImage: true))
        #expect(job.concurrencyPolicy == .forbid)
        #expect(job.successfulHistoryLimit == 5 && job.failedHistoryLimit == 0)
        #expect(job.startingDeadlineSeconds == 300)
        #expect(job.catchUpPolicy.epsilonMilliseconds == 300_000)
        #expect(job.inputPath == "/data/events/2025")
    }

    @Test func zeroOrNullResourcesTakeTheDefaultsAndAnImageJobNeedsNoCommand() throws {
        let job = try CronJob.parse(Array(#"""
            {"name": "img", "schedule": "@daily", "cpus": 0, "mem": null, "container": {"image": "strata/report@sha256:abc"}}
            """#.utf8), nowMs: now)
        #expect(job.cpus == 0.1 && job.mem == 128 && job.disk == 256)
        #expect(job.command == "")
        #expect(job.container?.type == "DOCKER")
    }

    @Test func anEmptyStartIsWrittenOutSoItDoesNotMoveOnRestart() throws {
        let job = try CronJob.parse(Array(#"{"name": "j", "command": "x", "schedule": "R5//PT15M", "scheduleTimeZone": "America/New_York"}"#.utf8), nowMs: now)
        #expect(job.schedule == "R5/2025-06-01T08:00:00-04:00/PT15M")
        #expect(job.parsedSchedule?.nextFire(after: now - 1) == now)
    }

    @Test func aDependentJobKeepsItsParentsOnceEach() throws {
        let job = try CronJob.parse(Array(#"{"name": "c", "command": "x", "parents": ["a", "b", "a"]}"#.utf8), nowMs: now)
        #expect(job.isDependent && job.parents == ["a", "b"] && job.schedule == nil && job.parsedSchedule == nil)
    }

    @Test func badInputIsRefusedWithAClearMessage() {
        #expect(refusal("{\"name\": ")?.kind == .invalidJSON)
        #expect(refusal("not json")?.message.hasPrefix("the request body is not valid JSON") == true)
        #expect(refusal("[1, 2]")?.message == "a job is a JSON object")
        #expect(refusal(#"{"command": "x", "schedule": "@daily"}"#)?.kind == .missingField)
        #expect(refusal(#"{"name": "j", "schedule": "@daily"}"#)?.kind == .missingField)
        #expect(refusal(#"{"name": 7, "command": "x", "schedule": "@daily"}"#)?.message == "field \"name\" must be a string, not a number")
        #expect(refusal(#"{"name": "j", "command": "x", "schedule": "@daily", "retries": "two"}"#)?.message == "field \"retries\" must be a number, not a string")
        #expect(refusal(#"{"name": "j", "command": "x", "schedule": "@daily", "retries": 1.5}"#)?.kind == .wrongType)
        #expect(refusal(#"{"name": "j", "command": "x", "schedule": "@daily", "retries": -1}"#)?.kind == .invalidValue)
        #expect(refusal(#"{"name": "j", "command": "x", "schedule": "@daily", "shell": 1}"#)?.message == "field \"shell\" must be true or false, not a number")
        #expect(refusal(#"{"name": "j", "command": "x", "schedule": "@daily", "arguments": "-v"}"#)?.kind == .wrongType)
        #expect(refusal(#"{"name": "j", "command": "x", "schedule": "@daily", "arguments": [1]}"#)?.message == "field \"arguments[0]\" must be a string, not a number")
        #expect(refusal(#"{"name": "j", "command": "x", "schedule": "@daily", "cpus": -1}"#)?.kind == .invalidValue)
        #expect(refusal(#"{"name": "j", "command": "x", "schedule": "@daily", "mem": "lots"}"#)?.kind == .wrongType)
    }

    @Test func anInvalidScheduleIsRefusedWithTheParsersMessage() {
        let error = refusal(#"{"name": "j", "command": "x", "schedule": "0 0 30 2 *"}"#)
        #expect(error?.kind == .invalidSchedule)
        #expect(error?.message == refusalMessage("0 0 30 2 *"))
        #expect(refusal(#"{"name": "j", "command": "x", "schedule": "R/2025-01-01T00:00:00Z/PT0S"}"#)?.kind == .invalidSchedule)
        #expect(refusal(#"{"name": "j", "command": "x", "schedule": ""}"#)?.kind == .invalidSchedule)
        let zone = refusal(#"{"name": "j", "command": "x", "schedule": "@daily", "scheduleTimeZone": "Mars/Olympus"}"#)
        #expect(zone?.kind == .unknownTimeZone)
        #expect(zone?.message.contains("Mars/Olympus") == true)
        #expect(refusal(#"{"name": "j", "command": "x", "parents": ["a"], "scheduleTimeZone": "Mars/Olympus"}"#)?.kind == .unknownTimeZone)
        #expect(refusal(#"{"name": "j", "command": "x", "schedule": "@daily", "epsilon": "P1M"}"#)?.kind == .invalidValue)
        #expect(refusal(#"{"name": "j", "command": "x", "schedule": "@daily", "epsilon": "soon"}"#)?.kind == .invalidValue)
    }

    func refusalMessage(_ schedule: String) -> String {
        do {
            _ = try Schedule.parse(schedule, nowMs: 0)
            return ""
        } catch {
            return error.message
        }
    }

    @Test func namesFollowChronosRule() {
        for name in ["nightly", "hostings earnings #2", "db_export-airbed.v2", "A1"] {
            #expect(CronJob.isValidName(name), "\(name)")
        }
        for name in ["", "a/b", "a:b", "tab\there", "line\nbreak", "é", String(repeating: "x", count: 129), "a*"] {
            #expect(!CronJob.isValidName(name), "\(name)")
        }
        let error = refusal(#"{"name": "a/b", "command": "x", "schedule": "@daily"}"#)
        #expect(error?.kind == .invalidName && error?.status == 400)
        #expect(refusal(#"{"name": "c", "command": "x", "parents": ["a/b"]}"#)?.kind == .invalidName)
    }

    @Test func aJobHasAScheduleOrParentsNeverBothNorNeither() {
        #expect(refusal(#"{"name": "j", "command": "x", "schedule": "@daily", "parents": ["a"]}"#)?.kind == .scheduleAndParents)
        #expect(refusal(#"{"name": "j", "command": "x"}"#)?.kind == .neitherScheduleNorParents)
        #expect(refusal(#"{"name": "j", "command": "x", "parents": []}"#)?.kind == .neitherScheduleNorParents)
        #expect(refusal(#"{"name": "j", "command": "x", "schedule": null, "parents": ["a"]}"#) == nil)
    }

    @Test func strataFieldsAreChecked() {
        #expect(refusal(#"{"name": "j", "command": "x", "schedule": "@daily", "concurrencyPolicy": "Sometimes"}"#)?.message
            == "unknown concurrencyPolicy \"Sometimes\" of job \"j\": expected Allow, Forbid or Replace")
        #expect(refusal(#"{"name": "j", "command": "x", "schedule": "@daily", "successfulHistoryLimit": 101}"#)?.kind == .invalidValue)
        #expect(refusal(#"{"name": "j", "command": "x", "schedule": "@daily", "startingDeadlineSeconds": 700000}"#)?.kind == .invalidValue)
        #expect(refusal(#"{"name": "j", "command": "x", "schedule": "@daily", "inputPath": "data/x"}"#)?.kind == .invalidValue)
        #expect(refusal(#"{"name": "j", "command": "x", "schedule": "@daily", "inputPath": "/data/../etc"}"#)?.kind == .invalidValue)
        #expect(refusal(#"{"name": "j", "command": "x", "schedule": "@daily", "container": {"type": "DOCKER"}}"#)?.kind == .missingField)
        #expect(refusal(#"{"name": "j", "command": "x", "schedule": "@daily", "container": {"type": "RKT", "image": "x"}}"#)?.kind == .invalidValue)
        #expect(refusal(#"{"name": "j", "command": "x", "schedule": "@daily", "environmentVariables": [{"value": "v"}]}"#)?.kind == .invalidValue)
    }

    @Test func aJobRendersAsChronosWritesItAndReadsBackTheSame() throws {
        var job = try CronJob.parse(Array(#"""
            {"name": "j", "command": "echo \"hi\"", "schedule": "R/2025-06-02T02:00:00Z/P1D", "epsilon": "PT5M",
             "environmentVariables": [{"name": "A", "value": "1"}], "container": {"type": "MESOS", "image": "x:1"}}
            """#.utf8), nowMs: now)
        var stats = CronJobStats()
        stats.successCount = 4
        stats.lastSuccessMs = instant("2025-06-02T02:00:03.250Z")
        let json = job.chronosJSON(stats: stats)
        #expect(json.serialized == #"""
            {"name":"j","command":"echo \"hi\"","shell":true,"epsilon":"PT5M","executor":"","executorFlags":"","retries":2,"owner":"","ownerName":"","description":"","successCount":4,"errorCount":0,"lastSuccess":"2025-06-02T02:00:03.250Z","lastError":"","cpus":0.1,"disk":256.0,"mem":128.0,"disabled":false,"softError":false,"errorsSinceLastSuccess":0,"uris":[],"fetch":[],"environmentVariables":[{"name":"A","value":"1"}],"arguments":[],"highPriority":false,"runAsUser":"","container":{"type":"MESOS","image":"x:1","forcePullImage":false},"constraints":[],"concurrencyPolicy":"Allow","successfulHistoryLimit":3,"failedHistoryLimit":1,"schedule":"R/2025-06-02T02:00:00Z/P1D","scheduleTimeZone":""}
            """#)
        #expect(try CronJob.parse(Array(json.serialized.utf8), nowMs: 0) == job)
        job.parents = ["a"]
        job.schedule = nil
        job.inputPath = "/in"
        job.startingDeadlineSeconds = 10
        let dependent = job.chronosJSON()
        #expect(dependent["parents"] == .array([.string("a")]))
        #expect(dependent["schedule"] == nil)
        #expect(try CronJob.parse(Array(dependent.serialized.utf8), nowMs: 0) == job)
        #expect(chronosTimestamp(instant("2013-03-15T13:02:14Z")) == "2013-03-15T13:02:14.000Z")
    }

    @Test func jsonTextIsEscapedAndParsedBack() throws {
        let value: CronJSON = .object(["text": .string("tab\t quote\" back\\ nl\n bell\u{07} é"), "n": .integer(-3), "x": .number(0.5), "z": .null])
        #expect(value.serialized == #"{"text":"tab\t quote\" back\\ nl\n bell\u0007 é","n":-3,"x":0.5,"z":null}"#)
        let parsed = try CronJSON.parse(Array(value.serialized.utf8))
        #expect(parsed["text"] == value["text"] && parsed["n"] == .integer(-3) && parsed["x"] == .number(0.5) && parsed["z"] == .null)
        #expect(try CronJSON.parse(Array("true".utf8)) == .boolean(true))
        #expect(try CronJSON.parse(Array("[1, 2.5, false]".utf8)) == .array([.integer(1), .number(2.5), .boolean(false)]))
    }
}
