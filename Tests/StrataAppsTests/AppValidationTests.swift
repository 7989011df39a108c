import Foundation
import StrataApps
import Testing

/// Bad input is refused as Marathon refuses it: the status, the message and each detail.
struct AppValidationTests {
    func failure(_ json: String) -> ValidationFailure? {
        do {
            _ = try AppDefinition.parse(Array(json.utf8))
            return nil
        } catch {
            return error
        }
    }

    func details(_ json: String) -> [String: [String]] {
        Dictionary(uniqueKeysWithValues: (failure(json)?.details ?? []).map { ($0.path, $0.errors) })
    }

    @Test func cmdAndArgsTogetherAreNotValid() throws {
        let refused = try #require(failure(#"{"id":"web","cmd":"run","args":["run"]}"#))
        #expect(refused.status == 422)
        #expect(refused.message == "Object is not valid")
        #expect(refused.details == [
            ValidationDetail(path: "/", errors: ["AppDefinition must either contain one of 'cmd' or 'args', and/or a 'container'."])
        ])
        #expect(details(#"{"id":"web"}"#)["/"] == ["AppDefinition must either contain one of 'cmd' or 'args', and/or a 'container'."])
        #expect(failure(#"{"id":"web","container":{"type":"DOCKER","docker":{"image":"tools/web:1"}}}"#) == nil)
    }

    @Test func negativeResourcesAndInstancesBreakTheSchemasBounds() throws {
        let refused = try #require(failure(#"{"id":"web","cmd":"run","cpus":-1,"mem":-128,"disk":-1,"instances":-1}"#))
        #expect(refused.status == 422)
        #expect(refused.message == "Invalid JSON")
        #expect(refused.details.map(\.path) == ["/cpus", "/mem", "/disk", "/instances"])
        #expect(refused.details.allSatisfy { $0.errors == ["error.min"] })
        #expect(details(#"{"id":"web","cmd":"run","cpus":0}"#)["/cpus"] == ["error.min"])
        #expect(details(#"{"id":"web","cmd":"run","backoffFactor":0.5}"#)["/backoffFactor"] == ["error.min"])
        #expect(details(#"{"id":"web","cmd":"run","upgradeStrategy":{"minimumHealthCapacity":1.5,"maximumOverCapacity":-1}}"#) == [
            "/upgradeStrategy/minimumHealthCapacity": ["error.max"], "/upgradeStrategy/maximumOverCapacity": ["error.min"],
        ])
    }

    @Test func invalidIdsAreRefused() {
        #expect(details(#"{"id":"/Web","cmd":"run"}"#) == ["/id": ["error.pattern"]])
        #expect(details(#"{"id":"/web_1","cmd":"run"}"#) == ["/id": ["error.pattern"]])
        #expect(details(#"{"id":"/-web","cmd":"run"}"#) == ["/id": ["error.pattern"]])
        #expect(details(#"{"cmd":"run"}"#) == ["/id": ["error.path.missing"]])
        #expect(details(#"{"id":"","cmd":"run"}"#) == ["/id": ["error.minLength"]])
        #expect(details(#"{"id":"/web/restart","cmd":"run"}"#) == [
            "/id": ["must not end with any of the following reserved keywords: restart, tasks, versions, ., .."]
        ])
        #expect(failure(#"{"id":"/web/restart","cmd":"run"}"#)?.message == "Object is not valid")
        #expect(details(#"{"id":"/","cmd":"run"}"#) == ["/id": ["Path must contain at least one path element"]])
        #expect(details(#"{"id":"/web/..","cmd":"run"}"#) == ["/id": ["Path must contain at least one path element"]])
    }

    @Test func wrongFieldTypesNameWhatWasExpected() throws {
        let refused = try #require(failure(
            #"{"id":123,"cmd":["run"],"cpus":"1","instances":1.5,"env":{"A":1},"requirePorts":"yes","constraints":"hostname"}"#))
        #expect(refused.status == 422)
        #expect(refused.message == "Invalid JSON")
        #expect(details(
            #"{"id":123,"cmd":["run"],"cpus":"1","instances":1.5,"env":{"A":1},"requirePorts":"yes","constraints":"hostname"}"#) == [
                "/id": ["error.expected.jsstring"], "/cmd": ["error.expected.jsstring"],
                "/cpus": ["error.expected.jsnumber"], "/instances": ["error.expected.int"], "/env/A": ["error.expected.jsstring"],
                "/requirePorts": ["error.expected.jsboolean"], "/constraints": ["error.expected.jsarray"],
            ])
        #expect(details(#"{"id":"web","cmd":"run","healthChecks":[{"protocol":"GOPHER"}]}"#) == [
            "/healthChecks(0)/protocol": ["error.unknown.enum.literal"]
        ])
        #expect(details(#"[1]"#) == ["/": ["error.expected.jsobject"]])
    }

    @Test func aBodyThatIsNotJSONIsABadRequest() throws {
        let refused = try #require(failure(#"{"id":"/web""#))
        #expect(refused.status == 400)
        #expect(refused.message == "Invalid JSON")
        let body = try JSONSerialization.jsonObject(with: JSONEncoder().encode(refused)) as? [String: Any]
        #expect(body?["message"] as? String == "Invalid JSON")
        #expect(body?["details"] is String)
    }

    @Test func theBodyHasMarathonsShape() throws {
        let refused = try #require(failure(#"{"id":"web","cmd":"run","args":["x"]}"#))
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        #expect(String(decoding: try encoder.encode(refused), as: UTF8.self)
            == #"{"details":[{"errors":["AppDefinition must either contain one of 'cmd' or 'args', and/or a 'container'."],"path":"/"}],"message":"Object is not valid"}"#)
    }

    @Test func badConstraintsGetMarathonsMessages() {
        func constraint(_ fields: String) -> [String]? {
            details(#"{"id":"web","cmd":"run","constraints":[\#(fields)]}"#)["/constraints(0)"]
        }
        #expect(constraint(#"["hostname","NEAR"]"#) == ["operator must be one of the following UNIQUE, CLUSTER, GROUP_BY, LIKE, MAX_PER, UNLIKE or IS"])
        #expect(constraint(#"["hostname","UNIQUE","x"]"#) == ["UNIQUE does not accept a value"])
        #expect(constraint(#"["rack","GROUP_BY","many"]"#) == ["GROUP BY must define an integer value or else no value at all"])
        #expect(constraint(#"["rack","MAX_PER"]"#) == ["MAX_PER requires an integer value"])
        #expect(constraint(#"["rack","LIKE"]"#) == ["LIKE and UNLIKE require a non-empty, regular expression value"])
        #expect(constraint(#"["rack","UNLIKE","r[1"]"#) == ["is not a valid regular expression"])
        #expect(constraint(#"["","UNIQUE"]"#) == ["illegal constraint specification"])
        #expect(constraint(#"["hostname"]"#) == ["error.minLength"])
        #expect(constraint(#"["a","CLUSTER","b","c"]"#) == ["error.maxLength"])
    }

    @Test func portsAndHealthChecksMustFitTogether() {
        #expect(details(#"{"id":"web","cmd":"run","portDefinitions":[{"port":8080},{"port":8080}]}"#) == [
            "/portDefinitions": ["Ports must be unique."]
        ])
        #expect(details(#"{"id":"web","cmd":"run","portDefinitions":[{"port":0,"name":"a"},{"port":0,"name":"a"}]}"#) == [
            "/portDefinitions": ["Port names must be unique."]
        ])
        #expect(details(#"{"id":"web","cmd":"run","healthChecks":[{"portIndex":1}]}"#) == [
            "/healthChecks(0)": ["Health check port indices must address an element of the ports array or container port mappings."]
        ])
        #expect(details(#"{"id":"web","cmd":"run","portDefinitions":[],"healthChecks":[{"protocol":"TCP"}]}"#).keys.sorted() == ["/healthChecks(0)"])
        #expect(details(#"{"id":"web","cmd":"run","portDefinitions":[{"port":70000}]}"#) == ["/portDefinitions(0)/port": ["error.max"]])
        #expect(details(#"{"id":"web","cmd":"run","healthChecks":[{"protocol":"MESOS_HTTP"},{"protocol":"MESOS_TCP"}]}"#) == [
            "/": ["AppDefinition can contain at most one Mesos health check"]
        ])
    }

    @Test func aGroupReportsItsAppsDetailsUnderTheirPaths() {
        let refused = AppGroup.read(try! JSONValue.parse(Array(
            #"{"id":"/shop","apps":[{"id":"web","cmd":"run","args":["x"]},{"id":"/elsewhere/db","cmd":"run"}]}"#.utf8)))
        guard case .failure(let failure) = refused else {
            Issue.record("a group with a bad app was accepted")
            return
        }
        #expect(failure.message == "Object is not valid")
        #expect(Set(failure.details.map(\.path)) == ["/apps(0)", "/apps(1)/id"])
    }
}
