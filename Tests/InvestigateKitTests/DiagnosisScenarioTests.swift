import Foundation
import Testing
@testable import InvestigateKit

/// Incidents written as the vendors write their logs (nginx `combined`, AWS WAF JSON, ALB access
/// lines, API Gateway execution and access logs in CloudWatch exports, Lambda runtime lines, Flask),
/// each with only part of the stack's logs, read through the importers and diagnosed: the answers
/// a user gets for the evidence they really have.
@Suite struct DiagnosisScenarioTests {
    // MARK: - Writing real lines

    /// 2025-02-06 05:32:00 UTC, plus seconds.
    static let base: Int64 = 1_738_819_920_000_000
    static func clf(_ s: Double, offset: String = "+0000") -> String {
        let shift: Int64 = offset == "+0900" ? 9 * 3_600_000_000 : 0
        let t = base + Int64(s * 1e6) + shift
        let parts = TimeFormat.display(t, zone: .utc, millis: false).split(separator: " ")
        let d = parts[0].split(separator: "-"), clock = parts[1]
        let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        return "\(d[2])/\(months[Int(d[1])! - 1])/\(d[0]):\(clock) \(offset)"
    }
    static func iso(_ s: Double) -> String { TimeFormat.isoUTCMillis(base + Int64(s * 1e6)) }

    static func combined(_ s: Double, peer: String, _ request: String, _ status: Int, ua: String = "Mozilla/5.0 (X11; Linux x86_64) Firefox/134.0",
                         offset: String = "+0000") -> String {
        "\(peer) - - [\(clf(s, offset: offset))] \"\(request) HTTP/1.1\" \(status) 512 \"-\" \"\(ua)\""
    }

    static func waf(_ s: Double, ip: String, uri: String, action: String = "ALLOW", rule: String = "Default_Action", type: String = "REGULAR",
                    rate: String = "[]") -> String {
        let ms = (base + Int64(s * 1e6)) / 1000
        return #"{"timestamp":\#(ms),"formatVersion":1,"webaclId":"arn:aws:wafv2:ap-northeast-1:111122223333:regional/webacl/web-acl-prod/4f7d2c1a","terminatingRuleId":"\#(rule)","terminatingRuleType":"\#(type)","action":"\#(action)","terminatingRuleMatchDetails":[],"httpSourceName":"ALB","httpSourceId":"111122223333-app/web-prod/5f2c1a8e9b3d4c71","ruleGroupList":[],"rateBasedRuleList":\#(rate),"nonTerminatingMatchingRules":[],"requestHeadersInserted":null,"responseCodeSent":null,"httpRequest":{"clientIp":"\#(ip)","country":"JP","headers":[{"name":"Host","value":"example.com"},{"name":"User-Agent","value":"curl/8.5.0"}],"uri":"\#(uri)","args":"","httpVersion":"HTTP/1.1","httpMethod":"GET","requestId":"1-67a44a04-d333e9427f188569ca66\#(String(Int(s * 1000) % 10000).leftPadded(4))"}}"#
    }

    static func flask(_ s: Double, _ level: String, _ message: String, zone: Int64 = 9) -> String {
        let t = base + Int64(s * 1e6) + zone * 3_600_000_000
        let shown = TimeFormat.display(t, zone: .utc).split(separator: " ")
        return "\(level) \(shown[0]) \(shown[1].replacingOccurrences(of: ".", with: ",")) [app] \(message)"
    }

    /// - Parameter asked: read the files as `investigate --at PATH` does, for the window only
    ///   (else as after `ingest`).
    func diagnose(_ files: [String: String], at: Double = 0, status: String? = nil, ip: String? = nil, window: Int64 = 120_000_000,
                  zone: ZoneSpec = .utc, asked: Bool = false, nginxLogFormat: String? = nil) throws -> Diagnosis {
        let dir = try TemporaryDirectory()
        for (name, text) in files { try dir.write(name, text) }
        let store = try TimelineStore()
        let q = DiagnosisQuery(at: Self.base + Int64(at * 1e6), halfWindow: window, zone: zone,
                               status: status.flatMap(StatusFilter.init), clientIP: ip)
        var options = ImportOptions(appTimeZone: .fixed(seconds: 9 * 3600))
        options.nginxLogFormat = nginxLogFormat
        if asked { options.window = q.from...q.to }
        _ = try TimelineUpdate.run(store: store, paths: [dir.path], options: options)
        return try Diagnoser(store: store).diagnose(q)
    }

    /// A quiet edge stack's background: requests from the ALB's two nodes, with health checks.
    static func nginxBehindBalancer(peers: [String] = ["10.1.1.210", "10.1.1.211"], errorsAt: [(Double, String, Int)] = []) -> String {
        var lines: [(Double, String)] = []
        for i in 0..<120 {
            let s = -300 + Double(i) * 5
            lines.append((s, combined(s, peer: peers[i % peers.count], "GET /api/items?page=\(i % 7)", 200)))
            if i % 6 == 0 { lines.append((s + 0.5, combined(s + 0.5, peer: peers[(i + 1) % peers.count], "GET /health", 200, ua: "ELB-HealthChecker/2.0"))) }
        }
        for (s, req, status) in errorsAt { lines.append((s, combined(s, peer: peers[0], req, status))) }
        return lines.sorted { $0.0 < $1.0 }.map(\.1).joined(separator: "\n") + "\n"
    }

    static func appLog(errorsAt: [(Double, String, Int)] = []) -> String {
        var lines: [(Double, String)] = []
        for i in 0..<120 {
            let s = -300 + Double(i) * 5 - 0.02
            lines.append((s, flask(s, "INFO", "Request: GET http://example.com:443/api/items")))
            lines.append((s + 0.01, flask(s + 0.01, "INFO", "Response: 200 http://example.com:443/api/items")))
        }
        for (s, path, status) in errorsAt {
            lines.append((s - 0.02, flask(s - 0.02, "INFO", "Request: GET http://example.com:443\(path)")))
            lines.append((s - 0.01, flask(s - 0.01, "INFO", "Response: \(status) http://example.com:443\(path)")))
        }
        return lines.sorted { $0.0 < $1.0 }.map(\.1).joined(separator: "\n") + "\n"
    }

    // MARK: - The 403 in no log, nginx in `combined` behind a load balancer

    @Test func a403InNoLogBehindPrivatePeersIsAnsweredInFrontOfNginx() throws {
        let d = try diagnose(["var/log/nginx/access.log": Self.nginxBehindBalancer(errorsAt: [(20, "GET /app/admin", 403)]),
                              "app/logs/app.log": Self.appLog(errorsAt: [(20, "/app/admin", 403)])],
                             at: 10, status: "403", ip: "203.0.113.45")
        #expect(d.outcome == .inferred)
        let f = try #require(d.findings.first)
        #expect(f.responder == "upstream" && f.confidence == .medium)
        #expect(f.explanation.contains("load balancer") && f.explanation.contains("web ACL"))
        #expect(f.explanation.contains("10.1.1.210") && f.explanation.contains("ELB-HealthChecker"))
        #expect(f.evidence.contains { $0.layer == "nginx" && $0.text.hasPrefix("10.1.1.21") })
        #expect(f.next_steps.contains { $0.contains("WAFLogs") })
        #expect(f.next_steps.contains { $0.contains("elasticloadbalancing") })
        // The app's own 403 for another client is not taken for the answer, and is not hidden either.
        #expect(f.explanation.contains("does not record the client's address"))
    }

    @Test func publicPeersAreNeverTakenForALoadBalancer() throws {
        let peers = (1...40).map { "198.51.100.\($0)" }
        let d = try diagnose(["var/log/nginx/access.log": Self.nginxBehindBalancer(peers: peers)], at: 10, status: "403", ip: "203.0.113.45")
        #expect(d.findings.isEmpty)
        #expect(d.outcome == .nothingToExplain)
        let all = ([d.headline ?? ""] + d.notes).joined(separator: " ")
        #expect(!all.contains("load balancer's nodes"))
        #expect(all.contains("nginx"))
    }

    /// A Flask log's stamps carry no zone. With no --app-tz and no syslog copy, the offset the
    /// run's nginx writes is the server's local time: the traceback 9 hours "later" in UTC is the
    /// request nginx logged, and the app, not nginx, caused the 500.
    @Test func anAppLogWithoutZoneIsReadInTheOffsetNginxWrites() throws {
        let dir = try TemporaryDirectory()
        var nginx = (0..<30).map { i in
            #"198.51.100.\#(i + 1) - - [06/Feb/2025:23:\#(10 + i / 2):\#(i % 2 == 0 ? "05" : "35") +0900] "GET /api/orders HTTP/1.1" 200 612 "-" "Mozilla/5.0""#
        }
        nginx.append(#"203.0.113.45 - - [06/Feb/2025:23:32:20 +0900] "POST /api/orders HTTP/1.1" 500 265 "-" "Mozilla/5.0""#)
        try dir.write("nginx/access.log", nginx.sorted().joined(separator: "\n") + "\n")
        try dir.write("app/flask.log", """
            [2025-02-06 23:32:19,900] ERROR in app: Exception on /api/orders [POST]
            Traceback (most recent call last):
              File "/srv/app/orders.py", line 88, in create_order
                total = sum(i["price"] for i in items)
            KeyError: 'price'

            """)
        let store = try TimelineStore()
        let q = DiagnosisQuery(at: 1_738_852_320_000_000, halfWindow: 120_000_000, zone: .utc)  // 14:32:00 UTC
        _ = try TimelineUpdate.run(store: store, paths: [dir.path], options: ImportOptions())
        // The app file's note says where its zone came from.
        let notes = try store.read { db in try String.fetchOne(db, sql: "SELECT notes FROM source WHERE format = 'flask'") } ?? ""
        #expect(notes.contains("the offset nginx writes"), "\(notes)")
        let d = try Diagnoser(store: store).diagnose(q)
        let f = try #require(d.findings.first)
        #expect(f.cause == "app", "\(f.cause) \(f.rule)")
        #expect(f.evidence.contains { $0.layer == "app" })
        let appTime = try store.read { db in try Int64.fetchOne(db, sql: "SELECT min(time) FROM event WHERE layer = 'app'") }
        #expect(appTime == 1_738_852_339_900_000)  // 14:32:19.900 UTC
    }

    /// The same incident with the app's stamps read in the wrong zone (UTC, as if given
    /// `--app-tz UTC`): its traceback lies 9 hours away. The 500 is not pinned on nginx and the
    /// app's silence is not "expected": its logs do not cover the moment, the cause is unknown,
    /// and a note names the shift that lines its span up with nginx's and the `--app-tz` to try.
    @Test func anAppLogReadInTheWrongZoneLeavesTheCauseUnknownAndNamesTheShift() throws {
        let dir = try TemporaryDirectory()
        var nginx = (0..<60).map { i in
            #"198.51.100.\#(i % 50 + 1) - - [06/Feb/2025:14:\#(String(i / 2 + 10).leftPadded(2)):\#(i % 2 == 0 ? "05" : "35") +0000] "GET /api/orders HTTP/1.1" 200 612 "-" "Mozilla/5.0""#
        }
        nginx.append(#"203.0.113.45 - - [06/Feb/2025:14:32:20 +0000] "POST /api/orders HTTP/1.1" 500 265 "-" "Mozilla/5.0""#)
        try dir.write("nginx/access.log", nginx.sorted { $0.split(separator: "[")[1] < $1.split(separator: "[")[1] }.joined(separator: "\n") + "\n")
        var app = (0..<60).map { i in "[2025-02-06 23:\(String(i / 2 + 10).leftPadded(2)):\(i % 2 == 0 ? "05" : "35"),100] INFO in orders: listed orders" }
        app.append("""
            [2025-02-06 23:32:19,900] ERROR in app: Exception on /api/orders [POST]
            Traceback (most recent call last):
              File "/srv/app/orders.py", line 88, in create_order
            KeyError: 'price'
            """)
        try dir.write("app/flask.log", app.sorted().joined(separator: "\n") + "\n")
        let store = try TimelineStore()
        _ = try TimelineUpdate.run(store: store, paths: [dir.path], options: ImportOptions(appTimeZone: .utc))
        let d = try Diagnoser(store: store).diagnose(DiagnosisQuery(at: 1_738_852_320_000_000, halfWindow: 120_000_000, zone: .utc))
        let f = try #require(d.findings.first)
        #expect(f.responder == "nginx" && f.cause == Finding.unknownCause && f.confidence == .low, "\(f.cause) \(f.explanation)")
        let appAbsence = try #require(f.absent.first { $0.layer == "app" })
        #expect(!appAbsence.expected && appAbsence.why.hasPrefix("gap:"), "\(appAbsence.why)")
        let hint = try #require(d.notes.first { $0.contains("shifted by +9 h") }, "\(d.notes)")
        #expect(hint.contains("read as UTC") && hint.contains("`--app-tz +09:00`"))
    }

    /// The hint is offered only where a half-hour shift of at most 14 hours lines the spans up: an
    /// app log of another day is no zone mistake.
    @Test func aZoneShiftIsOfferedOnlyWhereTheSpansLineUp() {
        let hour: Int64 = 3_600_000_000
        let t: Int64 = 100 * hour
        let nginx = [(Layer.nginx, t - hour / 2, t + hour / 4)]
        let best = AppZoneShift.bestShift(span: (t + 9 * hour - hour / 2, t + 9 * hour + hour / 4), at: t, references: nginx)
        #expect(best?.shift == 9 * hour && best?.reference == .nginx)
        // A short app log (two minutes) lines up with a stretch of nginx's span: offered too …
        #expect(AppZoneShift.bestShift(span: (t + 9 * hour - 60_000_000, t + 9 * hour + 60_000_000), at: t, references: nginx) != nil)
        // … but a log 3 days away is no zone mistake.
        #expect(AppZoneShift.bestShift(span: (t + 72 * hour, t + 73 * hour), at: t, references: nginx) == nil)
    }

    /// Only an nginx log, with a 500: nginx passed it on or made it; no log says which.
    @Test func aProxysServerErrorWithNoLogBehindItHasAnUnknownCause() throws {
        let d = try diagnose(["var/log/nginx/access.log": Self.nginxBehindBalancer(errorsAt: [(0, "GET /api/orders", 500)])], at: 0, status: "500")
        let f = try #require(d.findings.first)
        #expect(f.responder == "nginx" && f.cause == Finding.unknownCause && f.confidence == .low)
        #expect(f.explanation.contains("unknown"))
    }

    /// "No error" from logs with unreadable lines says that the error may be on one of them.
    @Test func aWindowWithNoErrorNamesTheLinesThatCouldNotBeRead() throws {
        let peers = (1...40).map { "198.51.100.\($0)" }
        let log = Self.nginxBehindBalancer(peers: peers)
        // A comment line is kept as rejected too, but is no unread record.
        let clean = try diagnose(["var/log/nginx/access.log": "# rotated by logrotate\n" + log], at: 10)
        #expect(!clean.notes.contains { $0.contains("could not be read") })
        var lines = log.split(separator: "\n").map(String.init)
        lines.insert("this line is \u{1b}[31m not nginx at all", at: lines.count / 2)
        let d = try diagnose(["var/log/nginx/access.log": lines.joined(separator: "\n") + "\n"], at: 10)
        #expect(d.findings.isEmpty)
        #expect(d.outcome == .nothingToExplain)
        let note = try #require(d.notes.first { $0.contains("could not be read") })
        #expect(note.hasPrefix("1 line of the logs covering this window"))
        #expect(note.contains("access.log") && note.contains("rejected_lines"))
    }

    @Test func aWindowWithNoErrorSaysSoInsteadOfAVerdict() throws {
        let peers = (1...40).map { "198.51.100.\($0)" }
        let d = try diagnose(["var/log/nginx/access.log": Self.nginxBehindBalancer(peers: peers)], at: 10)
        #expect(d.findings.isEmpty)
        #expect(d.outcome == .nothingToExplain)
        #expect(d.headline?.contains("No 4xx/5xx") ?? false)
        #expect(d.notes.contains { $0.contains("cover") })
    }

    @Test func theZoneTheLogsUseIsOfferedWhenTheWindowIsEmpty() throws {
        // nginx writes +0900; the user typed JST wall-clock time but it was read as UTC.
        var lines = (0..<60).map { Self.combined(Double($0 * 5 - 150), peer: "198.51.100.\($0 % 30 + 1)", "GET /", 200, offset: "+0900") }
        lines.append(Self.combined(2, peer: "203.0.113.45", "GET /app/admin", 403, offset: "+0900"))
        lines.sort { $0.split(separator: "[")[1] < $1.split(separator: "[")[1] }
        let d = try diagnose(["access.log": lines.joined(separator: "\n") + "\n"], at: 9 * 3600, window: 120_000_000)
        #expect(d.findings.isEmpty)
        #expect(d.notes.contains { $0.contains("--tz +09:00") })
    }

    // MARK: - API Gateway execution and Lambda logs only

    static func executionLog(requests: [(Double, String, String)]) -> String {
        // (seconds, request id, resource) of ordinary successful requests.
        var out: [String] = []
        for (s, id, resource) in requests {
            let t = Self.iso(s)
            out += ["\(t) (\(id)) Extended Request Id: ext\(id.prefix(6))=",
                    "\(t) (\(id)) Starting execution for request: \(id)",
                    "\(t) (\(id)) HTTP Method: GET, Resource Path: \(resource)",
                    "\(t) (\(id)) Method completed with status: 200"]
        }
        return out.joined(separator: "\n") + "\n"
    }

    static func lambdaLog(requests: [(Double, String)]) -> String {
        requests.flatMap { s, id in
            ["\(Self.iso(s)) START RequestId: \(id) Version: $LATEST",
             "\(Self.iso(s + 0.02)) END RequestId: \(id)",
             "\(Self.iso(s + 0.02)) REPORT RequestId: \(id)\tDuration: 15.74 ms\tBilled Duration: 16 ms\tMemory Size: 128 MB\tMax Memory Used: 56 MB"]
        }.joined(separator: "\n") + "\n"
    }

    @Test func executionAndLambdaLogsOnlyPointAtApiGatewaysOwnResponse() throws {
        let reqs = (0..<40).map { (Double($0 * 6 - 120), String(format: "0c6035f8-2c56-42a5-a9b2-%012d", $0)) }
        let d = try diagnose([
            "exportedlogs/b41e7d08-2c9a-4f63-8e15-6a0d93c2f7b4/4b5c1d8e7f3a2b6c9d0e1f2a3b4c5d6e/000000": Self.executionLog(requests: reqs.map { ($0.0, $0.1, "/items/{id}") }),
            "exportedlogs/e8a05c3d-7f21-4b96-a3d8-2c6f1e9b5a47/2026/01/22/[$LATEST]0bb31d65cff80345e3e9e2e1e9a513a2/000000": Self.lambdaLog(requests: reqs.map { ($0.0 + 0.01, "aa" + $0.1.dropFirst(2)) }),
        ], at: 0, status: "403")
        #expect(d.outcome == .inferred)
        let f = try #require(d.findings.first)
        #expect(f.responder == "apigateway" && f.cause == "client" && f.confidence == .medium)
        #expect(f.explanation.contains("MISSING_AUTHENTICATION_TOKEN"))
        #expect(f.explanation.contains("execution log"))
        #expect(f.next_steps.contains { $0.contains("$context.error.message") && $0.contains("$context.error.responseType") })
        #expect(!f.absent.contains { $0.layer == "lambda" && !$0.expected }, "\(f.absent) \(d.coverage)")
    }

    // MARK: - The ALB answered, its log missing

    @Test func a503BetweenAWafAllowAndASilentNginxIsTheAlbs() throws {
        var waf: [String] = []
        for i in 0..<30 { waf.append(Self.waf(Double(i * 8 - 120), ip: "198.51.100.\(i + 1)", uri: "/api/items")) }
        waf.append(Self.waf(3, ip: "203.0.113.77", uri: "/app/checkout"))
        waf.sort()
        let d = try diagnose(["AWSLogs/111122223333/WAFLogs/ap-northeast-1/web-acl-prod/2025/02/06/05/30/waf.log": waf.joined(separator: "\n") + "\n",
                              "var/log/nginx/access.log": Self.nginxBehindBalancer()],
                             at: 0, status: "503")
        let f = try #require(d.findings.first)
        #expect(f.responder == "alb" && f.confidence == .medium)
        #expect(f.explanation.contains("no healthy"))
        #expect(f.next_steps.contains { $0.contains("alb") || $0.contains("elasticloadbalancing") })
    }

    // MARK: - Confidence is earned, and limits share one cause

    @Test func aWafRateBasedBlockIsCausedByTheClientsOwnTraffic() throws {
        let rate = #"[{"rateBasedRuleId":"7e2f","rateBasedRuleName":"RateLimitPerIP","limitKey":"IP","maxRateAllowed":1000,"limitValue":"203.0.113.9","evaluationWindowSec":"300"}]"#
        let line = Self.waf(0, ip: "203.0.113.9", uri: "/api/items", action: "BLOCK", rule: "RateLimitPerIP", type: "RATE_BASED", rate: rate)
        let d = try diagnose(["waf.log": line + "\n"], at: 0, status: "403")
        let f = try #require(d.findings.first)
        #expect(f.responder == "waf" && f.cause == "client" && f.confidence == .high)
        #expect(f.explanation.contains("RateLimitPerIP"))
    }

    @Test func anAlbLogAloneNamingTheWafIsMediumConfidence() throws {
        let alb = #"https 2025-02-06T05:32:00.100000Z app/web-prod/5f2c1a8e9b3d4c71 203.0.113.45:46467 - -1 -1 -1 403 - 560 270 "GET https://example.com:443/app/admin?next=https%3A%2F%2Fevil HTTP/1.1" "curl/8.5.0" ECDHE-RSA-AES128-GCM-SHA256 TLSv1.2 - "Root=1-67a4467f-9b6e0cebb17a94df83ec908e" "example.com" "arn:aws:acm:ap-northeast-1:111122223333:certificate/0b6d" 0 2025-02-06T05:32:00.090000Z "waf" "-" "-" "-" "-" "-" "-" TID_3495fa977e0a617e02644498e9da6400"#
        let d = try diagnose(["alb.log": alb + "\n"], at: 0, status: "403")
        let f = try #require(d.findings.first)
        #expect(f.responder == "waf" && f.cause == "waf")
        #expect(f.confidence == .medium) // no record of the WAF itself proves it
    }

    // MARK: - The application's exception, named

    @Test func anApp500NamesTheExceptionFromTheTracebacksLastLine() throws {
        let app = [
            Self.flask(-0.2, "INFO", "Request: GET http://example.com:443/api/orders/7"),
            Self.flask(-0.1, "ERROR", "Exception on /api/orders/7 [GET]"),
            "Traceback (most recent call last):",
            "  File \"/srv/app/views.py\", line 42, in order",
            "    total = order.total / order.count",
            "ZeroDivisionError: division by zero",
            Self.flask(-0.05, "INFO", "Response: 500 http://example.com:443/api/orders/7"),
        ].joined(separator: "\n") + "\n"
        let nginx = Self.combined(0, peer: "198.51.100.5", "GET /api/orders/7", 500) + "\n"
        let d = try diagnose(["app.log": app, "access.log": nginx], at: 0, status: "500")
        let f = try #require(d.findings.first)
        #expect(f.responder == "app" && f.cause == "app")
        #expect(f.explanation.contains("ZeroDivisionError: division by zero"))
    }

    // MARK: - Dense windows

    @Test func aDenseWindowStartsWithASummaryAndLimitsTheDetails() throws {
        var lines: [String] = []
        for i in 0..<200 {
            lines.append(Self.combined(Double(i) * 0.5 - 50, peer: "198.51.100.\(i % 20 + 1)", "GET /missing/\(i)", 404))
        }
        let d = try diagnose(["access.log": lines.joined(separator: "\n") + "\n"], at: 0)
        #expect(d.findings.count > Diagnosis.summaryThreshold)
        let summary = d.summaryLines()
        #expect(summary.count >= 1)
        #expect(summary[0].hasPrefix("200 × responder nginx, cause client"))
        let text = d.renderText(zone: .utc, limit: 3)
        #expect(text.contains("Summary ("))
        #expect(text.contains("not shown (--limit 3)"))
        #expect(text.components(separatedBy: "── Finding").count == 4)
    }
}

private extension String {
    func leftPadded(_ width: Int) -> String { count >= width ? self : String(repeating: "0", count: width - count) + self }
}

/// Lambda behind API Gateway: what the function did, named from its own log, with and without the
/// access and execution logs.
@Suite struct LambdaIncidentScenarioTests {
    let t = DiagnosisScenarioTests()
    static let request = "4f3e3b0f-39db-11e9-9c2e-5bd7c2de5998"
    static let invocation = "71952965-d5cc-4974-ae08-6e2138b2275c"

    static func access(_ s: Double, status: Int, error: String, integration: String) -> String {
        let time = DiagnosisScenarioTests.clf(s)
        return #"\#(DiagnosisScenarioTests.iso(s)) { "requestId":"\#(request)", "ip": "203.0.113.60", "requestTime":"\#(time)", "httpMethod":"GET", "resourcePath":"/items/{id}", "path":"/prod/items/7", "status":"\#(status)", "protocol":"HTTP/1.1", "responseLength":"36", "error":"\#(error)", "integrationStatus":"\#(integration)" }"#
    }

    static func execution(_ s: Double, _ messages: [String]) -> String {
        messages.map { "\(DiagnosisScenarioTests.iso(s)) (\(request)) \($0)" }.joined(separator: "\n")
    }

    static func lambda(_ s: Double, _ lines: [String], duration: String = "15.74") -> String {
        (["\(DiagnosisScenarioTests.iso(s)) START RequestId: \(invocation) Version: $LATEST"]
            + lines.map { "\(DiagnosisScenarioTests.iso(s + 0.01)) \($0)" }
            + ["\(DiagnosisScenarioTests.iso(s + 0.02)) END RequestId: \(invocation)",
               "\(DiagnosisScenarioTests.iso(s + 0.02)) REPORT RequestId: \(invocation)\tDuration: \(duration) ms\tBilled Duration: 16 ms\tMemory Size: 128 MB\tMax Memory Used: 56 MB"])
            .joined(separator: "\n")
    }

    static let executionStart = ["Extended Request Id: Vwc2MGFUrPEFV_g=", "Starting execution for request: \(request)",
                                 "HTTP Method: GET, Resource Path: /items/{id}",
                                 "Sending request to https://lambda.us-east-1.amazonaws.com/2015-03-31/functions/arn:aws:lambda:us-east-1:123456789012:function:items-api/invocations"]

    func files(access: String?, execution: String?, lambda: String?) -> [String: String] {
        var out: [String: String] = [:]
        if let access { out["exportedlogs/3f9c2a71-5be4-4d0e-9a6c-81d2f4b7e013/4b5c1d8e7f3a2b6c9d0e1f2a3b4c5d6e/000000"] = access + "\n" }
        if let execution { out["exportedlogs/b41e7d08-2c9a-4f63-8e15-6a0d93c2f7b4/9f8e7d6c5b4a39281706f5e4d3c2b1a0/000000"] = execution + "\n" }
        if let lambda { out["exportedlogs/e8a05c3d-7f21-4b96-a3d8-2c6f1e9b5a47/2025/02/06/[$LATEST]31afb70b8641f82567a8ca118254229b/000000"] = lambda + "\n" }
        return out
    }

    static let exceptionLines = ["[ERROR] KeyError: 'price'", "Traceback (most recent call last):",
                                 "  File \"/var/task/app.py\", line 12, in handler", "    total = item['price'] * qty"]

    @Test(arguments: [true, false]) func anUnhandledExceptionIsNamed(withExecutionLog: Bool) throws {
        let exec = Self.execution(0, Self.executionStart + [
            "Lambda execution failed with status 200 due to customer function error: 'price'. Lambda request id: \(Self.invocation)",
            "Method completed with status: 502"])
        let d = try t.diagnose(files(access: Self.access(0.1, status: 502, error: "Internal server error", integration: "200"),
                                     execution: withExecutionLog ? exec : nil, lambda: Self.lambda(-0.05, Self.exceptionLines)), at: 0, status: "502")
        let f = try #require(d.findings.first)
        #expect(f.responder == "apigateway" && f.cause == "lambda")
        #expect(f.explanation.contains("KeyError: 'price'"))
        #expect(!f.absent.contains { $0.layer == "lambda" && $0.expected })
    }

    /// Without the execution log, the access log's `integrationRequestId` (the AWS endpoint's
    /// request id: Lambda's RequestId) links the function's own lines to the request.
    @Test(arguments: ["integrationRequestId", "awsEndpointRequestId", "integration.requestId"])
    func theAccessLogsEndpointRequestIdLinksTheFunction(key: String) throws {
        let access = Self.access(0.1, status: 502, error: "Internal server error", integration: "200")
            .replacingOccurrences(of: #", "integrationStatus""#, with: #", "\#(key)":"\#(Self.invocation)", "integrationStatus""#)
        let d = try t.diagnose(files(access: access, execution: nil, lambda: Self.lambda(-0.05, Self.exceptionLines)), at: 0, status: "502")
        let f = try #require(d.findings.first)
        #expect(f.responder == "apigateway" && f.cause == "lambda")
        #expect(f.evidence.contains { $0.layer == "lambda" }, "\(f.absent)")
        #expect(!f.absent.contains { $0.layer == "lambda" })
    }

    @Test func aMalformedProxyResponseIsNamedNotTheDuration() throws {
        let exec = Self.execution(0, Self.executionStart + ["Received response. Integration latency: 18 ms",
                                                            "Endpoint response body before transformations: \"ok\"",
                                                            "Execution failed due to configuration error: Malformed Lambda proxy response",
                                                            "Method completed with status: 502"])
        let d = try t.diagnose(files(access: Self.access(0.1, status: 502, error: "Internal server error", integration: "200"),
                                     execution: exec, lambda: Self.lambda(-0.05, [])), at: 0, status: "502")
        let f = try #require(d.findings.first)
        #expect(f.responder == "apigateway" && f.cause == "lambda")
        #expect(f.explanation.contains("Malformed Lambda proxy response"))
        #expect(!f.explanation.contains("timed out") && !f.explanation.contains("Duration"))
    }

    @Test func aFunctionTimeoutUnderTheIntegrationLimit() throws {
        let d = try t.diagnose(files(access: Self.access(10.1, status: 502, error: "Internal server error", integration: "200"), execution: nil,
                                     lambda: Self.lambda(0, ["\(Self.invocation) Task timed out after 10.00 seconds"], duration: "10002.15")),
                               at: 10, status: "502")
        let f = try #require(d.findings.first)
        #expect(f.responder == "apigateway" && f.cause == "lambda")
        #expect(f.explanation.contains("Task timed out after 10.00 seconds"))
    }

    @Test(arguments: [true, false]) func anIntegrationTimeoutOverTwentyNineSeconds(withAccessLog: Bool) throws {
        let exec = Self.execution(29, Self.executionStart + ["Execution failed due to a timeout error", "Method completed with status: 504"])
        let d = try t.diagnose(files(access: withAccessLog ? Self.access(29.1, status: 504, error: "Endpoint request timed out", integration: "-") : nil,
                                     execution: exec, lambda: Self.lambda(0, [], duration: "34210.55")), at: 29, status: "504")
        let f = try #require(d.findings.first)
        #expect(f.responder == "apigateway" && f.cause == "lambda")
        #expect(f.explanation.contains("29 s"))
        #expect(!f.absent.contains { $0.layer == "lambda" && $0.expected })
    }
}

/// Edge-stack incidents where the layers disagree about what happened.
@Suite struct EdgeIncidentScenarioTests {
    let t = DiagnosisScenarioTests()
    static let trace = "1-67a44b10-9b6e0cebb17a94df83ec908e"

    static func alb(_ s: Double, created: Double, elb: Int, target: String, targetStatus: String, times: String, path: String) -> String {
        "https \(DiagnosisScenarioTests.iso(s).dropLast())000Z app/web-prod/5f2c1a8e9b3d4c71 203.0.113.60:51234 \(target) \(times) \(elb) \(targetStatus) 310 0 \"GET https://example.com:443\(path) HTTP/1.1\" \"curl/8.5.0\" ECDHE-RSA-AES128-GCM-SHA256 TLSv1.2 arn:aws:elasticloadbalancing:ap-northeast-1:111122223333:targetgroup/web-nginx/8c2d4e6f1a3b5c7d \"Root=\(trace)\" \"example.com\" \"arn:aws:acm:ap-northeast-1:111122223333:certificate/0b6d1f3e\" 0 \(DiagnosisScenarioTests.iso(created).dropLast())000Z \"waf,forward\" \"-\" \"-\" \"10.1.1.40:80\" \"\(targetStatus)\" \"-\" \"-\" TID_3495fa977e0a617e02644498e9da6400"
    }

    static func nginxXFF(_ s: Double, _ path: String, _ status: Int, rt: String) -> String {
        "10.1.1.210 - - [\(DiagnosisScenarioTests.clf(s))] \"GET \(path) HTTP/1.1\" \(status) 0 \"-\" \"curl/8.5.0\" \"203.0.113.60\" rt=\(rt) urt=\"-\""
    }

    static func nginxError(_ s: Double, _ what: String, path: String) -> String {
        let stamp = DiagnosisScenarioTests.iso(s).prefix(19).replacingOccurrences(of: "-", with: "/").replacingOccurrences(of: "T", with: " ")
        return "\(stamp) [error] 1234#1234: *5 \(what), client: 10.1.1.210, server: example.com, request: \"GET \(path) HTTP/1.1\", upstream: \"http://127.0.0.1:8000\(path)\", host: \"example.com\""
    }

    /// The kernel killed nginx for lack of memory ten minutes before the ALB's 502 and nothing
    /// started it again: the host's log, not keep-alive advice, is the answer. Once systemd
    /// started it again, the kill is old news and is not cited.
    @Test(arguments: [false, true]) func anAlb502WhileTheKernelHadKilledNginxCitesTheKill(restarted: Bool) throws {
        let files = [
            "alb.log": Self.alb(0.5, created: 0.4, elb: 502, target: "10.1.1.40:80", targetStatus: "-", times: "0.001 -1 -1", path: "/api/report") + "\n",
            "access.log": (0..<20).map { Self.nginxXFF(Double($0) * 3 - 700, "/api/items", 200, rt: "0.004") }.joined(separator: "\n") + "\n",
            "syslog": "Feb  6 05:22:00 ip-10-1-1-40 kernel: [812.33] Out of memory: Killed process 1187 (nginx) total-vm:912340kB, anon-rss:801234kB\n"
                + "Feb  6 05:22:00 ip-10-1-1-40 systemd[1]: nginx.service: Main process exited, code=killed, status=9/KILL\n"
                + (restarted ? "Feb  6 05:25:00 ip-10-1-1-40 systemd[1]: Started nginx.service - A high performance web server and a reverse proxy server.\n" : ""),
        ]
        let d = try t.diagnose(files, at: 0, status: "502")
        let f = try #require(d.findings.first)
        #expect(f.responder == "alb" && f.cause == "nginx", "\(f.responder)/\(f.cause): \(f.explanation)")
        #expect(f.explanation.contains("Out of memory: Killed process 1187 (nginx)") == !restarted, "\(f.explanation)")
        #expect(f.evidence.contains { $0.layer == "system" } == !restarted)
        #expect(f.next_steps.contains { $0.contains("keep-alive") } == restarted)
    }

    /// gunicorn's arbiter says the worker was SIGKILLed, "Perhaps out of memory?": the 502 is an
    /// OOM kill, not a worker timeout.
    @Test func aWorkerKilledForMemoryIsNamedNotATimeout() throws {
        let files = [
            "nginx/access.log": Self.nginxXFF(1, "/api/report", 502, rt: "2.310") + "\n",
            "nginx/error.log": Self.nginxError(1, "upstream prematurely closed connection while reading response header from upstream", path: "/api/report") + "\n",
            "gunicorn/error.log": "[2025-02-06 05:32:00 +0000] [42] [ERROR] Worker (pid:5522) was sent SIGKILL! Perhaps out of memory?\n",
        ]
        let d = try t.diagnose(files, at: 0, status: "502")
        let f = try #require(d.findings.first)
        #expect(f.responder == "nginx" && f.cause == "gunicorn" && f.confidence == .high)
        #expect(f.explanation.contains("lack of memory") && !f.explanation.contains("gunicorn's timeout"), "\(f.explanation)")
    }

    /// nginx timed out waiting for the app: the app had the request, so its silence in the window
    /// is no "expected: never answered" (it may log the request's end later).
    @Test func anUpstreamTimeoutNeverCallsTheAppsSilenceExpected() throws {
        let files = [
            "nginx/access.log": Self.nginxXFF(1, "/api/report", 504, rt: "60.001") + "\n",
            "nginx/error.log": Self.nginxError(1, "upstream timed out (110: Connection timed out) while reading response header from upstream", path: "/api/report") + "\n",
            "app.log": DiagnosisScenarioTests.flask(-100, "INFO", "Response: 200 http://example.com:443/api/items") + "\n"
                + DiagnosisScenarioTests.flask(100, "INFO", "Response: 200 http://example.com:443/api/items") + "\n",
        ]
        let d = try t.diagnose(files, at: 0, status: "504")
        let f = try #require(d.findings.first)
        #expect(f.responder == "nginx" && f.cause == "app")
        let app = try #require(f.absent.first { $0.layer == "app" })
        #expect(!app.expected, "\(app.why)")
    }

    /// An ALB record with a target status says the target answered: nginx's missing record is
    /// unlinked (a clock skew, a lost line), never "the ALB answered before the request reached nginx".
    @Test func aTargetStatusMeansTheRequestReachedTheTarget() throws {
        let files = [
            "alb.log": Self.alb(0.5, created: 0.4, elb: 502, target: "10.1.1.40:80", targetStatus: "502", times: "0.001 1.612 0.000", path: "/api/report") + "\n",
            "access.log": (0..<20).map { Self.nginxXFF(Double($0) * 3 - 40, "/api/items", 200, rt: "0.004") }.joined(separator: "\n") + "\n",
        ]
        let d = try t.diagnose(files, at: 0, status: "502")
        let f = try #require(d.findings.first)
        let nginx = try #require(f.absent.first { $0.layer == "nginx" })
        #expect(!nginx.expected && nginx.why.hasPrefix("unlinked"), "\(nginx.why)")
    }

    @Test(arguments: [true, false]) func aClientThatLeftIsTheClientsDoing(withAlbLog: Bool) throws {
        var files = [
            "waf.log": DiagnosisScenarioTests.waf(0, ip: "203.0.113.60", uri: "/api/report") + "\n",
            "access.log": Self.nginxXFF(8, "/api/report", 499, rt: "7.990") + "\n",
            "app.log": [DiagnosisScenarioTests.flask(0.02, "INFO", "Request: GET http://example.com:443/api/report"),
                        DiagnosisScenarioTests.flask(14, "INFO", "Response: 200 http://example.com:443/api/report")].joined(separator: "\n") + "\n",
        ]
        if withAlbLog {
            files["alb.log"] = Self.alb(8, created: 0.001, elb: 460, target: "10.1.1.40:80", targetStatus: "-", times: "0.001 -1 -1", path: "/api/report") + "\n"
        }
        let d = try t.diagnose(files, at: 5)
        let f = try #require(d.findings.first { $0.status == 460 || $0.status == 499 })
        // With the ALB's log, its 460 is the status the request ended with; without, nginx's 499.
        #expect(f.responder == (withAlbLog ? "alb" : "nginx") && f.cause == "client", "\(f.responder)/\(f.cause) by \(f.rule): \(f.explanation)")
        #expect(f.explanation.contains("closed"))
        #expect(!d.findings.contains { $0.responder == "waf" })
    }
}

extension EdgeIncidentScenarioTests {
    /// A request that ran into the ALB's idle timeout: the app logged its start a minute before
    /// nginx and the ALB logged its end. The app's start line belongs to the failing chain.
    @Test func aLongRequestsAppStartLineIsInItsChain() throws {
        let files = [
            "waf.log": DiagnosisScenarioTests.waf(0, ip: "203.0.113.60", uri: "/api/export") + "\n",
            "alb.log": Self.alb(60.01, created: 0.001, elb: 504, target: "10.1.1.40:80", targetStatus: "-", times: "0.001 -1 -1", path: "/api/export") + "\n",
            "access.log": Self.nginxXFF(60.02, "/api/export", 499, rt: "60.010") + "\n",
            "app.log": [DiagnosisScenarioTests.flask(0.02, "INFO", "Request: GET http://example.com:443/api/export"),
                        DiagnosisScenarioTests.flask(30, "INFO", "Request: GET http://example.com:443/api/items"),
                        DiagnosisScenarioTests.flask(30.01, "INFO", "Response: 200 http://example.com:443/api/items"),
                        DiagnosisScenarioTests.flask(75, "INFO", "Response: 200 http://example.com:443/api/export")].joined(separator: "\n") + "\n",
        ]
        let d = try t.diagnose(files, at: 60, status: "504")
        let f = try #require(d.findings.first)
        #expect(f.responder == "alb" && f.cause == "app")
        #expect(f.evidence.contains { $0.layer == "app" && $0.text.contains("Request: GET http://example.com:443/api/export") },
                "\(f.evidence.map { "\($0.layer): \($0.text.prefix(80))" })")
    }
}

extension DiagnosisScenarioTests {
    /// Only the WAF's log: it shows ALLOW, never the status a layer behind it sent. Nothing behind it
    /// has logs, so the answer names the first layer behind and says it may be any of them, low.
    @Test func aWafLogAloneCannotSayWhichLayerBehindItAnswered() throws {
        var waf: [String] = []
        for i in 0..<30 { waf.append(Self.waf(Double(i * 8 - 120), ip: "198.51.100.\(i + 1)", uri: "/api/items")) }
        let d = try diagnose(["waf.log": waf.sorted().joined(separator: "\n") + "\n"], at: 0, status: "503")
        let f = try #require(d.findings.first)
        #expect(f.responder == "alb" && f.confidence == .low)
        #expect(f.explanation.contains("or a layer behind it"))
        #expect(f.explanation.contains("nginx"))
    }
}

@Suite struct LearntZoneTests {
    /// Access logs of two directories that disagree on the offset (two hosts, two zones) leave
    /// the app's zone unlearnt: neither can speak for it.
    @Test func onlyAnOffsetEveryDirectoryAgreesOnSpeaksForTheApp() {
        let hints = IngestHints()
        #expect(hints.soleLearntZone() == nil)
        hints.learnZone(.fixed(seconds: 9 * 3600), directory: "/a", from: "/a/access.log", position: 2)
        hints.learnZone(.fixed(seconds: 9 * 3600), directory: "/b", from: "/b/access.log", position: 1)
        #expect(hints.soleLearntZone()?.zone == .fixed(seconds: 9 * 3600))
        #expect(hints.soleLearntZone()?.from == "/b/access.log")
        hints.learnZone(.utc, directory: "/c", from: "/c/access.log", position: 3)
        #expect(hints.soleLearntZone() == nil)
    }
}

extension LambdaIncidentScenarioTests {
    /// A usage plan's quota used up (`QUOTA_EXCEEDED`, `Limit Exceeded`) is not a burst: the
    /// answer says the key is out of quota until the period resets; `THROTTLED` stays a rate.
    @Test(arguments: [("QUOTA_EXCEEDED", "Limit Exceeded", "apigw-quota"), ("THROTTLED", "Too Many Requests", "apigw-throttled")])
    func aQuotaIsToldFromARateLimit(_ c: (String, String, String)) throws {
        let line = Self.access(0.1, status: 429, error: c.1, integration: "-")
            .replacingOccurrences(of: #" "integrationStatus""#, with: #" "errorType":"\#(c.0)", "apiKeyId":"k3v9xq2m1a", "integrationStatus""#)
        let d = try t.diagnose(files(access: line, execution: nil, lambda: nil), at: 0, status: "429")
        let f = try #require(d.findings.first)
        #expect(f.responder == "apigateway" && f.cause == "client" && f.reason == c.2, "\(f.reason): \(f.explanation)")
        #expect(f.explanation.contains("quota") == (c.0 == "QUOTA_EXCEEDED"))
    }
}

extension EdgeIncidentScenarioTests {
    /// An ALB forwarding straight to gunicorn, no nginx logs: nginx's absence is not "the records
    /// show the request reached nginx" (round 10: no nginx in that stack at all).
    @Test func anAlbTargetWithNoNginxLogsIsNotSaidToBeNginx() throws {
        let d = try t.diagnose([
            "alb.log": Self.alb(0.5, created: 0.4, elb: 500, target: "10.0.3.25:8000", targetStatus: "500", times: "0.001 0.080 0.000", path: "/api/checkout") + "\n",
            "app/app.log": DiagnosisScenarioTests.flask(0.45, "ERROR", "Exception on /api/checkout [GET]") + "\nTraceback (most recent call last):\n  File \"/srv/app.py\", line 3, in checkout\nKeyError: 'XK'\n",
        ], at: 0, status: "500")
        let f = try #require(d.findings.first)
        #expect(f.cause == "app", "\(f.rule): \(f.explanation)")
        let nginx = try #require(f.absent.first { $0.layer == "nginx" })
        #expect(!nginx.why.contains("reached nginx") && nginx.why.contains("may be nginx or the app server itself"), "\(nginx.why)")
    }
}

extension EdgeIncidentScenarioTests {
    /// 561: the listener's sign-in failed at the identity provider; the ALB answered, its
    /// dependency caused it.
    @Test func an561NamesTheIdentityProvider() throws {
        let line = Self.alb(0.5, created: 0.4, elb: 561, target: "-", targetStatus: "-", times: "-1 -1 -1", path: "/oauth2/idpresponse")
            .replacingOccurrences(of: #""waf,forward" "-" "-""#, with: #""authenticate" "-" "AuthTokenEpRequestFailed""#)
        let d = try t.diagnose(["alb.log": line + "\n"], at: 0, status: "561")
        let f = try #require(d.findings.first)
        #expect(f.responder == "alb" && f.dependency == "identity provider", "\(f.rule): \(f.explanation)")
        #expect(f.explanation.contains("AuthTokenEpRequestFailed") && f.next_steps.first?.contains("identity provider") == true)
    }
}

extension LambdaIncidentScenarioTests {
    /// A request validator's 400: the execution log names the mismatch; no integration ran
    /// (round 10: the innermost-record fallback cited the access line only).
    @Test func aRequestValidatorsRefusalIsTheClients() throws {
        let exec = Self.execution(0, ["Extended Request Id: Vwc2MGFUrPEFV_g=", "Starting execution for request: \(Self.request)",
                                      "HTTP Method: POST, Resource Path: /orders",
                                      #"Request body does not match model schema for content type application/json: [object has missing required properties (["shipTo"])]"#,
                                      "Method completed with status: 400"])
        let d = try t.diagnose(files(access: Self.access(0.1, status: 400, error: "Invalid request body", integration: "-"), execution: exec, lambda: nil),
                               at: 0, status: "400")
        let f = try #require(d.findings.first)
        #expect(f.responder == "apigateway" && f.cause == "client" && f.reason == "apigw-validation", "\(f.rule): \(f.explanation)")
        #expect(f.explanation.contains("`Request body does not match model schema") && f.explanation.contains("shipTo"))
        #expect(f.absent.contains { $0.layer == "lambda" && $0.expected })
    }
}

extension EdgeIncidentScenarioTests {
    /// nginx logs no $request_time; the ALB says its target took 0.214 s: no timeout, and no
    /// "raise gunicorn's --timeout" advice (round 10).
    @Test func theAlbsTargetTimeTellsAQuickFailureFromATimeout() throws {
        let background = (0..<20).map { Self.nginxXFF(Double($0) * 3 - 70, "/api/items", 200, rt: "-") }
        let d = try t.diagnose([
            "alb.log": Self.alb(0.5, created: 0.28, elb: 502, target: "10.1.1.40:80", targetStatus: "502", times: "0.000 0.214 0.000", path: "/api/cart") + "\n",
            "nginx/access.log": (background + [Self.nginxXFF(0.49, "/api/cart", 502, rt: "-")]).joined(separator: "\n") + "\n",
            "nginx/error.log": Self.nginxError(0.49, "upstream prematurely closed connection while reading response header from upstream", path: "/api/cart") + "\n",
        ], at: 0, status: "502")
        let f = try #require(d.findings.first)
        #expect(f.responder == "nginx" && f.explanation.contains("0.214 s, too soon for a timeout"), "\(f.rule): \(f.explanation) \(f.evidence.map(\.layer))")
        #expect(!f.next_steps.contains { $0.contains("--timeout") })
    }
}

extension EdgeIncidentScenarioTests {
    /// nginx stamps whole seconds, the ALB microseconds: nginx reads about half a second early,
    /// which is no clock's fault and no note (round 14: "nginx stamps run -0.5 s relative to alb").
    @Test func wholeSecondStampsAreNoClockOffset() throws {
        var alb: [String] = [], nginx: [String] = []
        for i in 0..<40 {
            let s = Double(i) * 7 - 140 + 0.45 + Double(i % 5) * 0.1
            alb.append(Self.alb(s, created: s - 0.02, elb: i == 20 ? 502 : 200, target: "10.1.1.40:80", targetStatus: i == 20 ? "502" : "200",
                                times: "0.000 0.015 0.000", path: "/api/p\(i)"))
            nginx.append(Self.nginxXFF(s.rounded(.down), "/api/p\(i)", i == 20 ? 502 : 200, rt: "0.015"))
        }
        let d = try t.diagnose(["alb.log": alb.joined(separator: "\n") + "\n", "nginx/access.log": nginx.joined(separator: "\n") + "\n"], at: 0)
        #expect(!d.notes.contains { $0.hasPrefix("Clock offset") }, "\(d.notes)")
    }
}

extension LambdaIncidentScenarioTests {
    /// The runtime killed for memory: `RequestId: … Error: Runtime exited with error: signal:
    /// killed` is the invocation's error line, and the answer says out of memory (round 14).
    @Test func aFunctionKilledForMemoryIsNamed() throws {
        let access = Self.access(3.1, status: 500, error: "Internal Server Error", integration: "-")
            .replacingOccurrences(of: #" "integrationStatus""#, with: #" "integrationRequestId":"\#(Self.invocation)", "integrationStatus""#)
        let lambda = Self.lambda(0, ["[INFO]\t\(DiagnosisScenarioTests.iso(0.005))\t\(Self.invocation)\tdecoding image size=(8064, 6048) mode=RGBA",
                                     "RequestId: \(Self.invocation) Error: Runtime exited with error: signal: killed"], duration: "2900.21")
            .replacingOccurrences(of: "Max Memory Used: 56 MB", with: "Max Memory Used: 128 MB")
        let d = try t.diagnose(files(access: access, execution: nil, lambda: lambda), at: 3, status: "500")
        let f = try #require(d.findings.first)
        #expect(f.responder == "apigateway" && f.cause == "lambda" && f.reason == "apigw-lambda-oom", "\(f.reason): \(f.explanation)")
        #expect(f.explanation.contains("ran out of memory") && f.explanation.contains("Max Memory Used 128 MB of 128 MB"))
        #expect(f.evidence.contains { $0.text.contains("decoding image") })
        let line = "RequestId: \(Self.invocation) Error: Runtime exited with error: signal: killed"
        #expect(AWSLambdaParser.classify(line) == .runtimeError)
    }
}

extension LambdaIncidentScenarioTests {
    /// An HTTP API's JWT authorizer says why in the access log (`$context.authorizer.error`): an
    /// expired token is the client's (round 16: "cause apigateway", the field never quoted).
    @Test func anAuthorizerErrorInTheAccessLogNamesTheClientsToken() throws {
        let line = Self.access(0.1, status: 401, error: "Unauthorized", integration: "-")
            .replacingOccurrences(of: #" "integrationStatus""#, with: #" "authorizerError":"the token has expired", "integrationStatus""#)
        let d = try t.diagnose(files(access: line, execution: nil, lambda: nil), at: 0, status: "401")
        let f = try #require(d.findings.first)
        #expect(f.responder == "apigateway" && f.cause == "client" && f.explanation.contains("the token has expired"), "\(f.rule): \(f.explanation)")
    }
}

extension EdgeIncidentScenarioTests {
    /// ALB 503 with no healthy targets: the health path's 500 and the app's database error as the
    /// checker reached it name the database (round 16).
    @Test func anAlb503NamesWhyTheHealthChecksFailed() throws {
        let checks = (0..<6).map { DiagnosisScenarioTests.combined(Double($0) * 10 - 80, peer: "10.1.1.210", "GET /health", 500, ua: "ELB-HealthChecker/2.0") }
        let app = (0..<6).map { DiagnosisScenarioTests.flask(Double($0) * 10 - 80.01, "ERROR", #"health check failed: (psycopg2.OperationalError) connection to server at "orders-db" (10.0.12.44), port 5432 failed: Connection refused"#) }
        let d = try t.diagnose([
            "alb.log": Self.alb(0.5, created: 0.5, elb: 503, target: "-", targetStatus: "-", times: "-1 -1 -1", path: "/api/orders") + "\n",
            "nginx/access.log": checks.joined(separator: "\n") + "\n",
            "app/app.log": app.joined(separator: "\n") + "\n",
        ], at: 0, status: "503")
        let f = try #require(d.findings.first)
        #expect(f.responder == "alb" && f.dependency == "database", "\(f.rule): \(f.explanation)")
        #expect(f.evidence.contains { $0.layer == "app" && $0.text.contains("OperationalError") })
    }
}
