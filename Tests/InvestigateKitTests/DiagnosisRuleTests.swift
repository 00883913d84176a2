import Foundation
import GRDB
import Testing
@testable import InvestigateKit

/// Each diagnosis rule on a small hand-made timeline: responder, cause, and the keyword of the
/// reason in the explanation.
@Suite struct DiagnosisRuleTests {
    func diagnose(_ store: TimelineStore, status: StatusFilter? = nil, ip: String? = nil) throws -> Diagnosis {
        try Correlator(store: store).run()
        let q = DiagnosisQuery(at: Make.s(30), halfWindow: 120_000_000, zone: .utc, status: status, clientIP: ip)
        return try Diagnoser(store: store).diagnose(q)
    }

    func log(_ layer: Layer, _ t: Double, _ message: String, path: String? = nil, client: String? = nil, line: Int = 1) -> Event {
        var e = Event(time: Make.s(t), layer: layer, kind: .log, line: line, raw: Array(message.utf8))
        e.message = message
        e.path = path
        e.method = path == nil ? nil : "GET"
        e.clientIP = client
        return e
    }

    @Test func wafBlockNamesTheRuleAndExplainsTheSilenceBehindIt() throws {
        let store = try TimelineStore()
        var waf = Make.waf(30, ip: "203.0.113.50", path: "/app/admin", action: "BLOCK", trace: "1-67a44c10-cccccccccccccccccccccccc")
        waf.extra["waf_subrule"] = "AWS#AWSManagedRulesCommonRuleSet:SizeRestrictions_QUERYSTRING"
        try insert([waf], into: store, path: "waf.log")
        try insert([Make.alb(30.001, 30.002, ip: "203.0.113.50", path: "/app/admin", elb: 403, target: nil, trace: "1-67a44c10-cccccccccccccccccccccccc")],
                   into: store, path: "alb.log")
        try insert([Make.nginx(29, rt: 0.01, ip: "198.51.100.2", path: "/api/ping", status: 200)], into: store, path: "access.log")
        try insert([Make.appResponse(29, path: "/api/ping", status: 200)], into: store, path: "app.log")
        let d = try diagnose(store, status: .code(403))
        let f = try #require(d.findings.first)
        #expect(d.findings.count == 1)
        #expect(f.responder == "waf" && f.cause == "waf" && f.confidence == .high)
        #expect(f.explanation.contains("AWS-AWSManagedRulesCommonRuleSet"))
        #expect(f.explanation.contains("SizeRestrictions_QUERYSTRING"))
        #expect(f.absent.contains { $0.layer == "nginx" && $0.expected })
        #expect(f.absent.contains { $0.layer == "app" && $0.expected })
        #expect(f.evidence.map(\.layer) == ["waf", "alb"])
        #expect(f.evidence.allSatisfy { $0.line == 1 && !$0.source.isEmpty })
    }

    @Test func theAppsOwn403IsTheApps() throws {
        let store = try TimelineStore()
        try insert([Make.waf(30, ip: "203.0.113.9", path: "/app/settings")], into: store, path: "waf.log")
        try insert([Make.nginx(30.2, rt: 0.15, ip: "203.0.113.9", path: "/app/settings", status: 403)], into: store, path: "access.log")
        try insert([Make.appResponse(30.1, path: "/app/settings", status: 403)], into: store, path: "app.log")
        let f = try #require(try diagnose(store).findings.first)
        #expect(f.responder == "app" && f.cause == "app")
        #expect(f.explanation.contains("not a WAF block"))
    }

    @Test func idleTimeoutIsAlb504WithNginx499() throws {
        let store = try TimelineStore()
        try insert([Make.alb(0, 60.0, ip: "203.0.113.5", path: "/api/report", elb: 504, target: nil)], into: store, path: "alb.log")
        try insert([Make.nginx(60.0, rt: 59.99, ip: "203.0.113.5", path: "/api/report", status: 499)], into: store, path: "access.log")
        try insert([log(.app, 1, "INFO Request: GET http://example.com/api/report", path: "/api/report")], into: store, path: "app.log")
        let d = try diagnose(store, status: .code(504))
        let f = try #require(d.findings.first)
        #expect(f.responder == "alb" && f.cause == "app")
        #expect(f.explanation.contains("idle timeout"))
    }

    @Test func workerTimeoutBehindNginx502() throws {
        let store = try TimelineStore()
        try insert([Make.nginx(31, rt: 30.5, ip: "203.0.113.6", path: "/api/slow", status: 502)], into: store, path: "access.log")
        var err = log(.nginx, 31, "upstream prematurely closed connection while reading response header from upstream", path: "/api/slow", client: "10.1.1.210")
        err.error = err.message
        try insert([err], into: store, path: "error.log")
        try insert([log(.gunicorn, 30.9, "WORKER TIMEOUT (pid:5678)")], into: store, path: "syslog")
        let f = try #require(try diagnose(store).findings.first)
        #expect(f.responder == "nginx" && f.cause == "gunicorn" && f.confidence == .high)
        #expect(f.explanation.contains("WORKER TIMEOUT (pid:5678)"))
        #expect(f.evidence.map(\.layer) == ["nginx", "nginx", "gunicorn"])
    }

    @Test func upstreamRefusedIsGunicornDown() throws {
        let store = try TimelineStore()
        try insert([Make.nginx(31, rt: 0.001, ip: "203.0.113.6", path: "/api/ping", status: 502)], into: store, path: "access.log")
        try insert([log(.nginx, 31, "connect() failed (111: Connection refused) while connecting to upstream", path: "/api/ping", client: "10.1.1.210")],
                   into: store, path: "error.log")
        try insert([log(.gunicorn, 20, "Stopped gunicorn.service - gunicorn daemon.")], into: store, path: "syslog")
        let f = try #require(try diagnose(store).findings.first)
        #expect(f.responder == "nginx" && f.cause == "gunicorn")
        #expect(f.explanation.contains("Connection refused"))
        #expect(f.evidence.contains { $0.text.contains("Stopped gunicorn") })
    }

    @Test func missingAuthenticationTokenIsApiGatewayWithoutLambda() throws {
        let store = try TimelineStore()
        var events: [Event] = []
        for i in 0..<30 {
            var e = Event(time: Make.s(20 + Double(i) * 0.5), layer: .apigateway, kind: .access, line: i + 1, raw: Array("gw \(i)".utf8))
            e.clientIP = "20.55.1.9"; e.method = "GET"; e.path = "/x\(i).php"; e.status = 403
            e.requestID = UUID().uuidString; e.error = "Missing Authentication Token"
            events.append(e)
        }
        try insert(events, into: store, path: "apigw-access.log")
        var lambda = Event(time: Make.s(25), layer: .lambda, kind: .log, line: 1, raw: Array("START RequestId: x".utf8))
        lambda.requestID = "11111111-2222-3333-4444-555555555555"
        try insert([lambda], into: store, path: "lambda.log")
        let d = try diagnose(store, status: .code(403))
        #expect(d.findings.count == 1)
        let f = try #require(d.findings.first)
        #expect(f.responder == "apigateway" && f.cause == "client" && f.client_ip == "20.55.1.9")
        #expect(f.count == 30 && f.paths.count == 30)
        #expect(f.explanation.contains("Missing Authentication Token"))
        #expect(f.absent.contains { $0.layer == "lambda" && $0.expected })
    }

    @Test func aMissing403BehindPrivatePeersPointsUpstream() throws {
        let store = try TimelineStore()
        var nginx: [Event] = []
        for i in 0..<10 {
            nginx.append(Make.nginx(Double(i * 10), rt: 0.01, ip: "198.51.100.\(i)", path: "/api/ping", status: 200, peer: i % 2 == 0 ? "10.1.1.210" : "10.1.1.211", line: i + 1))
        }
        try insert(nginx, into: store, path: "access.log")
        try insert([Make.appResponse(5, path: "/api/ping", status: 200)], into: store, path: "app.log")
        let d = try diagnose(store, status: .code(403), ip: "203.0.113.50")
        let f = try #require(d.findings.first)
        #expect(f.rule == "absence")
        #expect(f.responder == "upstream")
        #expect(f.confidence == .medium)
        #expect(f.explanation.contains("10.1.1.210"))
        #expect(f.next_steps.contains { $0.contains("WAF") })
        #expect(f.next_steps.contains { $0.contains("ALB") })
        #expect(d.coverage.map(\.layer) == ["nginx", "app"])
    }

    @Test func hostileLogTextCannotReachTheTerminalOrBreakJSON() throws {
        let store = try TimelineStore()
        let evil = "/app/\u{1b}]0;owned\u{07}\u{1b}[2J\"},{\"responder\":\"client"
        try insert([Make.nginx(30, rt: 0.01, ip: "203.0.113.66", path: evil, status: 404)], into: store, path: "access.log")
        let d = try diagnose(store)
        let text = d.renderText(zone: .utc)
        #expect(!text.unicodeScalars.contains { $0.value == 0x1b || $0.value == 0x07 })
        #expect(text.contains("\\x1b]0;owned\\x07"))
        let encoder = JSONEncoder()
        let json = try encoder.encode(d)
        let object = try #require(try JSONSerialization.jsonObject(with: json) as? [String: Any])
        let findings = try #require(object["findings"] as? [[String: Any]])
        #expect(findings.count == 1)
        #expect(findings[0]["path"] as? String == evil)
        #expect(findings[0]["responder"] as? String == "nginx")
    }

    /// A dense window examines at most `maxCases` requests, the earliest first, and says how it
    /// narrowed the answer instead of holding every case in memory.
    @Test func aCrowdedWindowIsCappedEarliestFirstAndSaysSo() throws {
        let store = try TimelineStore()
        let failures = (0..<12).map { i in
            Make.nginx(20 + Double(i), rt: 0.01, ip: "203.0.113.\(i + 1)", path: "/missing/\(i)", status: 404)
        }
        try insert(failures, into: store, path: "access.log")
        try Correlator(store: store).run()
        let q = DiagnosisQuery(at: Make.s(30), halfWindow: 120_000_000, zone: .utc, status: nil, clientIP: nil)

        let diagnoser = Diagnoser(store: store)
        diagnoser.maxCases = 5
        let capped = try diagnoser.diagnose(q)
        #expect(capped.findings.reduce(0) { $0 + $1.count } == 5)
        #expect(capped.findings.compactMap(\.client_ip).sorted() == (1...5).map { "203.0.113.\($0)" }.sorted())
        #expect(capped.notes.contains { $0.contains("More than 5 error responses") })

        diagnoser.maxCases = 12
        let whole = try diagnoser.diagnose(q)
        #expect(whole.findings.reduce(0) { $0 + $1.count } == 12)
        #expect(!whole.notes.contains { $0.contains("More than") })
    }

    /// The lines around a request are a shared window minus the request's own records.
    @Test func nearbyRecordsLeaveOutTheRequestsOwnRecords() throws {
        let lines = (1...4).map { i in
            StoredEvent(id: Int64(i), sourceID: 1, event: log(.gunicorn, Double(i), "line \(i)"))
        }
        var nearby = NearbyRecords(lines[1...], excluding: [3])
        #expect(nearby.map(\.id) == [2, 4])
        nearby.removeAll { $0.event.message == "line 4" }
        #expect(nearby.map(\.id) == [2])
        #expect(NearbyRecords(lines).map(\.id) == [1, 2, 3, 4])
    }
}
