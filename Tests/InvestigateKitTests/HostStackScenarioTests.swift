import Foundation
import Testing
import GRDB
@testable import InvestigateKit

/// nginx → gunicorn → app incidents whose evidence is in lines the rules must read for what they
/// say: nginx's error-log messages, the application's own free-text request lines, a service that
/// would not start. Lines written as nginx, gunicorn, Python logging and rsyslog write them.
@Suite struct HostStackScenarioTests {
    let t = DiagnosisScenarioTests()
    typealias S = DiagnosisScenarioTests

    /// nginx `combined` with public clients (no balancer in front), a quiet background.
    static func nginx(_ extra: [(Double, String, String, Int)]) -> String {
        var lines: [(Double, String)] = []
        for i in 0..<60 {
            let s = -300 + Double(i) * 10
            lines.append((s, S.combined(s, peer: "198.51.100.\(i % 9 + 1)", "GET /api/items?page=\(i % 5)", 200)))
        }
        for (s, client, request, status) in extra { lines.append((s, S.combined(s, peer: client, request, status))) }
        return lines.sorted { $0.0 < $1.0 }.map(\.1).joined(separator: "\n") + "\n"
    }

    /// An nginx error-log line at `s` (zone-less stamps, read in UTC here).
    static func nginxError(_ s: Double, level: String = "error", _ what: String, client: String, request: String) -> String {
        let stamp = S.iso(s).prefix(19).replacingOccurrences(of: "-", with: "/").replacingOccurrences(of: "T", with: " ")
        return "\(stamp) [\(level)] 1022#1022: *911 \(what), client: \(client), server: shop.example.com, request: \"\(request) HTTP/1.1\", host: \"shop.example.com\""
    }

    /// A Python logging line in the common `%(asctime)s %(levelname)s %(name)s: %(message)s`, in
    /// the app's zone-less local time (+0900, as `diagnose` reads app logs).
    static func python(_ s: Double, _ level: String, _ logger: String, _ message: String) -> String {
        let shown = TimeFormat.display(S.base + Int64(s * 1e6) + 9 * 3_600_000_000, zone: .utc).split(separator: " ")
        return "\(shown[0]) \(shown[1].replacingOccurrences(of: ".", with: ",")) \(level) \(logger): \(message)"
    }

    static func appLog(_ extra: [(Double, String)]) -> String {
        var lines: [(Double, String)] = []
        for i in 0..<60 {
            let s = -300 + Double(i) * 10 - 0.01
            lines.append((s, python(s, "INFO", "shop.requests", "GET /api/items -> 200 (4 ms)")))
        }
        lines += extra
        return lines.sorted { $0.0 < $1.0 }.map(\.1).joined(separator: "\n") + "\n"
    }

    func diagnose(_ files: [String: String], status: String) throws -> Finding {
        let d = try t.diagnose(files, at: 10, status: status)
        return try #require(d.findings.first { $0.client_ip == "203.0.113.90" })
    }

    // MARK: - The application's own lines, in free text

    /// The app logged `GET /api/orders/7731 -> 403` and why; nginx only passed it on. Before, with
    /// no `Response:` line to link, nginx was named and the app "never saw the request".
    @Test func anAppLineNamingThePathAndStatusMakesTheAppTheResponder() throws {
        let f = try diagnose([
            "nginx/access.log": Self.nginx([(20, "203.0.113.90", "GET /api/orders/7731", 403)]),
            "app/app.log": Self.appLog([(19.990, Self.python(19.990, "WARNING", "shop.authz", "user 4412 denied access to /api/orders/7731 (owner 118)")),
                                        (19.995, Self.python(19.995, "INFO", "shop.requests", "GET /api/orders/7731 -> 403 (7 ms) client=203.0.113.90"))]),
        ], status: "403")
        #expect(f.responder == "app" && f.cause == "app" && f.confidence == .high, "\(f.rule): \(f.explanation)")
        #expect(f.explanation.contains("GET /api/orders/7731 -> 403") && f.explanation.contains("denied access"))
        #expect(f.evidence.filter { $0.layer == "app" }.count == 2)
        #expect(!f.absent.contains { $0.layer == "app" && $0.why.contains("answered before") })
    }

    /// Lines about a longer path, another status, or another client do not speak for this request.
    @Test func linesAboutOtherRequestsAreNotTheAppsAnswer() throws {
        let f = try diagnose([
            "nginx/access.log": Self.nginx([(20, "203.0.113.90", "GET /api/orders", 403)]),
            "app/app.log": Self.appLog([(19.99, Self.python(19.99, "INFO", "shop.requests", "GET /api/orders/7731 -> 403 (7 ms)")),
                                        (19.991, Self.python(19.991, "INFO", "shop.requests", "GET /api/orders -> 200 (7 ms)")),
                                        (19.992, Self.python(19.992, "INFO", "shop.requests", "GET /api/orders -> 403 (7 ms) client=192.0.2.7"))]),
        ], status: "403")
        #expect(f.responder != "app" || f.rule != "app-own-status", "\(f.rule): \(f.explanation)")
    }

    @Test func statusTokensAreNumbersOfTheirOwn() {
        #expect(AppMentions.namesStatus("GET /p -> 403 (7 ms)", 403))
        #expect(AppMentions.namesStatus("403 GET /p", 403))
        #expect(AppMentions.namesStatus(#"{"status": 403}"#, 403))
        #expect(AppMentions.namesStatus("status=429", 429))
        #expect(!AppMentions.namesStatus("took 1403 ms", 403))
        #expect(!AppMentions.namesStatus("at 10:15:40,403", 403))
        #expect(!AppMentions.namesStatus("order 403.5", 403))
        #expect(!AppMentions.namesStatus("/api/403/x", 403))
    }

    // MARK: - nginx's own messages

    /// Each message names who failed, whatever status `error_page` made of it.
    @Test(arguments: [
        // (status, request, message, cause, reason key)
        (502, "GET /account", "upstream sent too big header while reading response header from upstream", "app", "nginx-upstream-big-header"),
        (500, "POST /api/uploads", #"open() "/var/lib/nginx/body/0000000672" failed (28: No space left on device)"#, "nginx", "nginx-disk-full"),
        (401, "GET /internal/dashboard", #"user "bob" was not found in "/etc/nginx/.htpasswd""#, "client", "nginx-auth-basic"),
        (401, "GET /internal/dashboard", #"user "alice": password mismatch"#, "client", "nginx-auth-basic"),
        (403, "GET /static/", #"directory index of "/srv/shop/static/" is forbidden"#, "nginx", "nginx-directory-index"),
        (404, "GET /favicon.png", #"open() "/srv/shop/static/favicon.png" failed (2: No such file or directory)"#, "client", "nginx-no-file"),
        (414, "GET /search", "client sent too long URI while reading client request line", "client", "nginx-client-sent"),
        (500, "GET /products/171", #"rewrite or internal redirection cycle while internally redirecting to "/index.html""#, "nginx", "nginx-redirect-cycle"),
    ])
    func nginxsOwnMessagesNameTheCause(_ c: (Int, String, String, String, String)) throws {
        let (status, request, message, cause, key) = c
        let f = try diagnose([
            "nginx/access.log": Self.nginx([(20, "203.0.113.90", request, status)]),
            "nginx/error.log": Self.nginxError(19.8, level: message.contains("No space") ? "crit" : "error", message, client: "203.0.113.90", request: request) + "\n",
        ], status: String(status))
        #expect(f.responder == "nginx" && f.cause == cause && f.confidence == .high, "\(message): \(f.rule) \(f.cause) \(f.explanation)")
        #expect(f.reason == key || f.explanation.contains(String(message.prefix(20))), "\(f.explanation)")
        #expect(f.evidence.contains { $0.layer == "nginx" && $0.text.contains(String(message.prefix(20))) })
    }

    /// An error-log line no rule knows is quoted, and the cause left open, instead of "no error-log
    /// line explains it" beside the very line.
    @Test func anUnknownErrorLineIsQuotedNotDenied() throws {
        let f = try diagnose([
            "nginx/access.log": Self.nginx([(20, "203.0.113.90", "GET /api/items", 502)]),
            "nginx/error.log": Self.nginxError(19.8, "upstream exploded in a way nobody documented while reading response header from upstream", client: "203.0.113.90", request: "GET /api/items") + "\n",
        ], status: "502")
        #expect(f.responder == "nginx" && f.cause == Finding.unknownCause)
        #expect(f.explanation.contains("upstream exploded") && !f.explanation.contains("no error-log line explains it"))
    }

    // MARK: - A service that would not start

    /// gunicorn's socket is missing after a deploy whose import fails: nginx's `(2: No such file or
    /// directory)` is a connect failure, and the host's log says why nothing listened, from the
    /// traceback gunicorn folded into "Exception in worker process", minutes before the request.
    @Test func aMissingSocketCitesTheImportErrorThatStoppedGunicorn() throws {
        func sys(_ s: Double, _ program: String, _ text: String) -> String {
            let shown = TimeFormat.display(S.base + Int64(s * 1e6), zone: .utc, millis: false)  // 2025-02-06 05:32:xx
            let clock = shown.split(separator: " ")[1]
            return "Feb  6 \(clock) web-1 \(program): \(text)"
        }
        let stamp = "[2025-02-06 05:30:00 +0000]"
        let syslog = [
            sys(-120, "systemd[1]", "Started gunicorn.service - gunicorn daemon for shop."),
            sys(-119, "gunicorn[40214]", "\(stamp) [40214] [ERROR] Exception in worker process"),
            sys(-119, "gunicorn[40214]", "Traceback (most recent call last):"),
            sys(-119, "gunicorn[40214]", #"  File "/srv/shop/current/shop/payments.py", line 3, in <module>"#),
            sys(-119, "gunicorn[40214]", "    import stripe"),
            sys(-119, "gunicorn[40214]", "ModuleNotFoundError: No module named 'stripe'"),
            sys(-119, "gunicorn[40211]", "\(stamp) [40211] [ERROR] Reason: Worker failed to boot."),
            sys(-118, "systemd[1]", "gunicorn.service: Main process exited, code=exited, status=3/NOTIMPLEMENTED"),
            sys(-118, "systemd[1]", "gunicorn.service: Failed with result 'exit-code'."),
        ].joined(separator: "\n") + "\n"
        let f = try diagnose([
            "nginx/access.log": Self.nginx([(20, "203.0.113.90", "GET /api/users/me", 502)]),
            "nginx/error.log": Self.nginxError(20, level: "crit", "connect() to unix:/run/gunicorn.sock failed (2: No such file or directory) while connecting to upstream",
                                               client: "203.0.113.90", request: "GET /api/users/me") + "\n",
            "syslog": syslog,
        ], status: "502")
        #expect(f.responder == "nginx" && f.cause == "gunicorn" && f.confidence == .high, "\(f.explanation)")
        #expect(f.explanation.contains("socket file does not exist"))
        #expect(f.explanation.contains("ModuleNotFoundError: No module named 'stripe'"), "\(f.explanation)")
        #expect(f.evidence.contains { $0.text.contains("Exception in worker process") })
    }

    // MARK: - gunicorn's error log alone

    /// gunicorn's error log records no requests: its silence about one is expected, not a gap,
    /// whatever span its few lines cover.
    @Test func gunicornsErrorLogAloneIsNoGap() throws {
        let f = try diagnose([
            "nginx/access.log": Self.nginx([(20, "203.0.113.90", "GET /api/orders/7731", 403)]),
            "app/app.log": Self.appLog([(19.995, Self.python(19.995, "INFO", "shop.requests", "GET /api/orders/7731 -> 403 (7 ms)"))]),
            "gunicorn/error.log": "[2025-02-06 04:00:00 +0000] [1637] [INFO] Starting gunicorn 22.0.0\n[2025-02-06 04:00:00 +0000] [1637] [INFO] Booting worker with pid: 1640\n",
        ], status: "403")
        let g = try #require(f.absent.first { $0.layer == "gunicorn" })
        #expect(g.expected && !g.why.contains("gap"), "\(g.why)")
    }
}

extension HostStackScenarioTests {
    @Test func aFreeTextLineNamesItsClient() {
        #expect(AppMentions.namedClient("GET /p -> 403 client=192.0.2.7") == "192.0.2.7")
        #expect(AppMentions.namedClient(#"{"remote_addr": "34.201.17.88", "path": "/p"}"#) == "34.201.17.88")
        #expect(AppMentions.namedClient(#"connection to server at "db" (10.0.3.15), port 5432 failed"#) == nil)
    }
}

extension LambdaIncidentScenarioTests {
    /// A Lambda authorizer refused an expired token: API Gateway's execution log shows it calling
    /// the authorizer, the function's own invocation (its request id is not API Gateway's) says
    /// why. The client's credentials are the cause; an earlier refusal of another request in the
    /// same log is not cited.
    @Test func aLambdaAuthorizersRefusalNamesTheTokenProblem() throws {
        let exec = Self.execution(0, ["Extended Request Id: Vwc2MGFUrPEFV_g=",
                                      "Starting authorizer: 2bq8x1 for request: \(Self.request)",
                                      "Sending request to https://lambda.us-east-1.amazonaws.com/2015-03-31/functions/arn:aws:lambda:us-east-1:123456789012:function:jwt-authorizer/invocations"])
            + "\n" + "\(DiagnosisScenarioTests.iso(0.05)) (\(Self.request)) Unauthorized request: \(Self.request)"
        let earlier = "bbbbbbbb-0706-4155-ac38-5f11107fb590"
        let authorizer = [
            "\(DiagnosisScenarioTests.iso(-15)) START RequestId: \(earlier) Version: $LATEST",
            "\(DiagnosisScenarioTests.iso(-14.99)) [ERROR] Exception: Unauthorized",
            "\(DiagnosisScenarioTests.iso(-14.98)) END RequestId: \(earlier)",
            "\(DiagnosisScenarioTests.iso(0.002)) START RequestId: \(Self.invocation) Version: $LATEST",
            "\(DiagnosisScenarioTests.iso(0.03)) [WARNING]\t\(DiagnosisScenarioTests.iso(0.03))\t\(Self.invocation)\ttoken rejected for sub=billing-sync: ExpiredSignatureError: Signature has expired",
            "\(DiagnosisScenarioTests.iso(0.031)) [ERROR] Exception: Unauthorized",
            "\(DiagnosisScenarioTests.iso(0.04)) END RequestId: \(Self.invocation)",
            "\(DiagnosisScenarioTests.iso(0.04)) REPORT RequestId: \(Self.invocation)\tDuration: 38.77 ms\tBilled Duration: 39 ms\tMemory Size: 128 MB\tMax Memory Used: 61 MB",
        ].joined(separator: "\n")
        let d = try t.diagnose(files(access: Self.access(0.1, status: 401, error: "Unauthorized", integration: "-"), execution: exec, lambda: authorizer),
                               at: 0, status: "401")
        let f = try #require(d.findings.first)
        #expect(f.responder == "apigateway" && f.cause == "client" && f.confidence == .high, "\(f.explanation)")
        #expect(f.explanation.contains("ExpiredSignatureError"))
        #expect(!f.evidence.contains { $0.time?.hasPrefix(DiagnosisScenarioTests.iso(-14.99).prefix(19)) ?? false }, "another request's refusal is not this one's")
        let lambda = try #require(f.absent.first { $0.layer == "lambda" })
        #expect(lambda.expected && !lambda.why.contains("unlinked"))
    }
}

extension EdgeIncidentScenarioTests {
    /// An ALB line whose target is a Lambda function (`target:port` `-`, `error_reason` Lambda…).
    static func albLambda(_ s: Double, path: String, reason: String, trace: String) -> String {
        "https \(DiagnosisScenarioTests.iso(s).dropLast())000Z app/reports/1f3e5d7c9b0a2e4d 203.0.113.60:51234 - 0.001 0.129 0.000 502 - 310 0 \"GET https://example.com:443\(path) HTTP/1.1\" \"curl/8.5.0\" ECDHE-RSA-AES128-GCM-SHA256 TLSv1.2 arn:aws:elasticloadbalancing:ap-northeast-1:111122223333:targetgroup/reports-fn/5c7e9a1b3d5f7a9c \"Root=\(trace)\" \"example.com\" \"-\" 0 \(DiagnosisScenarioTests.iso(s - 0.13).dropLast())000Z \"forward\" \"-\" \"\(reason)\" \"-\" \"-\" \"-\" \"-\" TID_3495fa977e0a617e02644498e9da6400"
    }

    /// The function returned normally but in a shape the ALB cannot use, and another invocation
    /// raised: each 502 names the Lambda function, found by the trace id it logged, never nginx.
    @Test(arguments: [("LambdaInvalidResponse", "returned normally"), ("LambdaUnhandled", "KeyError: 'tenant_id'")])
    func anAlbWithALambdaTargetBlamesTheFunction(_ c: (String, String)) throws {
        let (reason, said) = c
        let trace = "1-68b84789-0abda9c4f5dc9fb7428004b0"
        let id = "2b4217b5-0da4-491a-9221-cd1e55bd0b06"
        let stream = "2025/02/06/[$LATEST]f0e1d2c3b4a5968778695a4b3c2d1e0f"
        var lines = ["\(DiagnosisScenarioTests.iso(0.40)) START RequestId: \(id) Version: $LATEST",
                     "\(DiagnosisScenarioTests.iso(0.41)) [INFO]\t\(DiagnosisScenarioTests.iso(0.41))\t\(id)\t/reports/9995 trace=\(trace)"]
        if reason == "LambdaUnhandled" { lines.append("\(DiagnosisScenarioTests.iso(0.42)) [ERROR] KeyError: 'tenant_id'") }
        lines += ["\(DiagnosisScenarioTests.iso(0.45)) END RequestId: \(id)",
                  "\(DiagnosisScenarioTests.iso(0.45)) REPORT RequestId: \(id)\tDuration: 128.79 ms\tBilled Duration: 129 ms\tMemory Size: 512 MB\tMax Memory Used: 116 MB"]
        let d = try t.diagnose([
            "AWSLogs/111122223333/elasticloadbalancing/ap-northeast-1/2025/02/06/111122223333_elasticloadbalancing_ap-northeast-1_app.reports.1f3e5d7c9b0a2e4d_20250206T0535Z_10.0.2.17_x.log":
                Self.albLambda(0.5, path: "/reports/9995", reason: reason, trace: trace) + "\n",
            "exportedlogs/e8a05c3d-7f21-4b96-a3d8-2c6f1e9b5a47/\(stream)/000000": lines.joined(separator: "\n") + "\n",
        ], at: 0, status: "502")
        let f = try #require(d.findings.first)
        #expect(f.responder == "alb" && f.cause == "lambda" && f.confidence == .high, "\(f.explanation)")
        #expect(f.explanation.contains(said), "\(f.explanation)")
        #expect(f.evidence.contains { $0.layer == "lambda" })
        #expect(!f.absent.contains { $0.layer == "nginx" && !$0.expected })
        #expect(!f.explanation.contains("nginx"))
    }
}

extension HostStackScenarioTests {
    /// gunicorn writes the status the application returned: its 403 is the app's, and the app's
    /// log having no line for it is not "gunicorn answered before the request reached app".
    @Test func gunicornsAccessLineCarriesTheAppsAnswer() throws {
        let gunicorn = (0..<30).map { i in
            "127.0.0.1 - - [\(S.clf(Double(i * 10 - 300)))] \"GET /api/items HTTP/1.0\" 200 512 \"-\" \"curl/8.4.0\""
        } + ["127.0.0.1 - - [\(S.clf(20))] \"GET /admin/users HTTP/1.0\" 403 215 \"-\" \"curl/8.4.0\""]
        let d = try t.diagnose(["gunicorn/access.log": gunicorn.joined(separator: "\n") + "\n",
                                "app/app.log": Self.appLog([])], at: 10, status: "403")
        let f = try #require(d.findings.first)
        #expect(f.responder == "app" && f.cause == "app", "\(f.rule): \(f.explanation)")
        #expect(!f.absent.contains { $0.why.contains("answered before the request reached app") })
    }

    /// A layout with the process id, padded levels (`%(levelname)-8s`), is read without options;
    /// a layout of one's own is recognised by the `--app-log-format` the user gives.
    @Test func appLayoutsAreRecognisedBuiltInOrAsGiven() throws {
        let padded = ["2025-04-22 02:50:05,434 [2212] INFO     shop.access: GET /healthz -> 200",
                      "2025-04-22 02:50:08,249 [2214] WARNING  shop.access: POST /api/orders -> 429"]
        #expect(ImporterRegistry.standard.detect(padded, fileName: "app.log").importer?.id == "flask")
        let own = ["<02:50:05.434|2025-04-22> app INFO :: GET /healthz -> 200", "<02:50:08.249|2025-04-22> app WARNING :: POST /x -> 429"]
        #expect(ImporterRegistry.standard.detect(own, fileName: "app.log").importer == nil)
        let flask = FlaskImporter()
        #expect(flask.recognize(padded, appLogFormat: "%(asctime)s [%(process)d] %(levelname)-8s %(name)s: %(message)s") >= ImporterRegistry.detectionThreshold)
        #expect(flask.recognize(padded, appLogFormat: "%(levelname)s:%(name)s:%(message)s") < ImporterRegistry.detectionThreshold)
    }
}

extension HostStackScenarioTests {
    @Test func aFileInTheGivenAppLayoutIsIngested() throws {
        let dir = try TemporaryDirectory()
        try dir.write("app/app.log", "<2025-04-22 02:50:05,434> app INFO :: GET /healthz -> 200\n<2025-04-22 02:50:08,249> app WARNING :: POST /x -> 429\n")
        let store = try TimelineStore()
        var options = ImportOptions(appTimeZone: .utc)
        _ = try TimelineUpdate.run(store: store, paths: [dir.path], options: options)
        #expect(try store.read { try Int.fetchOne($0, sql: "SELECT count(*) FROM event") } == 0)
        options.appLogFormat = "<%(asctime)s> %(name)s %(levelname)s :: %(message)s"
        let other = try TimelineStore()
        _ = try TimelineUpdate.run(store: other, paths: [dir.path], options: options)
        #expect(try other.read { try String.fetchAll($0, sql: "SELECT level FROM event ORDER BY id") } == ["INFO", "WARNING"])
    }
}

extension HostStackScenarioTests {
    /// auth_basic logs refused credentials, not the challenge: a 401 with no error-log line, on a
    /// location whose refusals are logged, is the challenge to a client that sent none.
    @Test func aBareAuthBasic401IsTheChallenge() throws {
        let d = try t.diagnose([
            "nginx/access.log": Self.nginx([(5, "192.0.2.7", "GET /internal/report", 401), (20, "203.0.113.90", "GET /internal/dashboard", 401)]),
            "nginx/error.log": Self.nginxError(5, #"user "bob" was not found in "/etc/nginx/.htpasswd""#, client: "192.0.2.7", request: "GET /internal/report") + "\n",
        ], at: 10, status: "401")
        let f = try #require(d.findings.first { $0.client_ip == "203.0.113.90" })
        #expect(f.responder == "nginx" && f.cause == "client" && f.rule == "nginx-own-status", "\(f.explanation)")
        #expect(f.explanation.contains("sent no credentials"))
    }

    /// A traceback naming the same path twenty seconds before another client's 500 is that
    /// earlier request's: each 500 cites the error logged while it was in flight, at high confidence.
    @Test func eachFiveHundredCitesItsOwnTraceback() throws {
        func traceback(_ s: Double) -> [(Double, String)] {
            [(s, Self.python(s, "ERROR", "shop", "Exception on /api/invoices/8842/pdf [GET]")),
             (s, "Traceback (most recent call last):"), (s, "  File \"/srv/shop/invoices.py\", line 40, in render"),
             (s, "AttributeError: 'NoneType' object has no attribute 'line\(Int(s))'")]
        }
        let app = Self.appLog(traceback(-3.4) + traceback(19.6))
        let d = try t.diagnose([
            "nginx/access.log": Self.nginx([(-3, "192.0.2.7", "GET /api/invoices/8842/pdf", 500), (20, "203.0.113.90", "GET /api/invoices/8842/pdf", 500)]),
            "app/app.log": app,
        ], at: 10, status: "500")
        let f = try #require(d.findings.first { $0.client_ip == "203.0.113.90" })
        #expect(f.responder == "app" && f.confidence == .high, "\(f.explanation)")
        #expect(f.explanation.contains("line19") && !f.evidence.contains { $0.text.contains("line-3") })
    }
}

extension EdgeIncidentScenarioTests {
    /// The ALB chose a target and got no response, while nginx's log spans the moment without the
    /// request: nginx never read it, the mark of a keep-alive connection closed under the ALB.
    @Test func anAlb502ThatNginxNeverReadNamesTheConnection() throws {
        let files = [
            "alb.log": Self.alb(0.5, created: 0.4, elb: 502, target: "10.1.1.40:80", targetStatus: "-", times: "0.000 -1 -1", path: "/search") + "\n",
            "access.log": (0..<40).map { Self.nginxXFF(Double($0) * 3 - 60, "/api/items", 200, rt: "0.004") }.joined(separator: "\n") + "\n",
        ]
        let d = try t.diagnose(files, at: 0, status: "502")
        let f = try #require(d.findings.first)
        #expect(f.responder == "alb" && f.cause == "nginx", "\(f.explanation)")
        #expect(f.explanation.contains("keepalive_timeout"))
        let nginx = try #require(f.absent.first { $0.layer == "nginx" })
        #expect(nginx.expected && nginx.why.contains("whole request"))
    }
}

extension DiagnosisScenarioTests {
    /// A rule in COUNT mode matched the request the app refused: the WAF is named and ruled out.
    @Test func aCountOnlyRuleIsRuledOutByName() throws {
        let ms = (Self.base + 19_990_000) / 1000
        let waf = #"{"timestamp":\#(ms),"formatVersion":1,"webaclId":"arn:aws:wafv2:ap-northeast-1:111122223333:regional/webacl/web-acl-prod/4f7d2c1a","terminatingRuleId":"Default_Action","terminatingRuleType":"REGULAR","action":"ALLOW","terminatingRuleMatchDetails":[],"httpSourceName":"ALB","httpSourceId":"111122223333-app/web-prod/5f2c1a8e9b3d4c71","ruleGroupList":[],"rateBasedRuleList":[],"nonTerminatingMatchingRules":[{"ruleId":"admin-paths-outside-office","action":"COUNT","ruleMatchDetails":[]}],"requestHeadersInserted":null,"responseCodeSent":null,"httpRequest":{"clientIp":"203.0.113.60","country":"JP","headers":[{"name":"Host","value":"example.com"}],"uri":"/app/admin","args":"","httpVersion":"HTTP/1.1","httpMethod":"GET","requestId":"1-67a44a04-d333e9427f188569ca660001"}}"#
        let nginx = (0..<40).map { EdgeIncidentScenarioTests.nginxXFF(Double($0) * 3 - 60, "/api/items", 200, rt: "0.004") }
            + [EdgeIncidentScenarioTests.nginxXFF(20, "/app/admin", 403, rt: "0.008")]
        let d = try diagnose(["waf/waf.log": waf + "\n", "var/log/nginx/access.log": nginx.sorted().joined(separator: "\n") + "\n",
                              "app/logs/app.log": Self.appLog(errorsAt: [(20, "/app/admin", 403)])],
                             at: 10, status: "403", ip: "203.0.113.60")
        let f = try #require(d.findings.first)
        #expect(f.responder == "app", "\(f.rule): \(f.explanation)")
        #expect(f.explanation.contains("`admin-paths-outside-office` matched it in COUNT mode only"))
    }
}

extension HostStackScenarioTests {
    /// A write to the upstream that broke mid-request is the upstream dying, as a premature close is.
    @Test func aBrokenPipeToTheUpstreamIsItsDeath() throws {
        let f = try diagnose([
            "nginx/access.log": Self.nginx([(20, "203.0.113.90", "POST /api/import", 502)]),
            "nginx/error.log": Self.nginxError(19.9, "writev() failed (32: Broken pipe) while sending request to upstream", client: "203.0.113.90", request: "POST /api/import") + "\n",
        ], status: "502")
        #expect(f.responder == "nginx" && f.cause == "gunicorn" && f.reason == "nginx-upstream-closed", "\(f.explanation)")
    }
}

extension HostStackScenarioTests {
    @Test func theUpstreamIsReadFromTheErrorLine() {
        #expect(NginxRule.upstreamAddress(#"recv() failed, client: 1.2.3.4, upstream: "http://10.0.1.12:8000/api/pay", host: "x""#) == "10.0.1.12:8000")
        #expect(NginxRule.upstreamAddress(#"connect() failed, upstream: "http://unix:/run/gunicorn.sock:/api/pay", host: "x""#) == "unix:/run/gunicorn.sock")
        #expect(NginxRule.upstreamAddress("no upstream named") == nil)
    }

    /// A reset within milliseconds, while nginx could not connect to the same upstream either, is
    /// a crashing backend, not a worker timeout: no `--timeout` advice, the backend named.
    @Test func aQuickResetOnACrashingBackendIsNoTimeout() throws {
        let access = (0..<40).map { i in
            "198.51.100.\(i % 9 + 1) - - [\(S.clf(Double(i * 10 - 300)))] \"GET /api/items HTTP/1.1\" 200 512 \"-\" \"curl/8.4.0\" rt=0.012"
        } + ["203.0.113.90 - - [\(S.clf(20))] \"POST /api/pay HTTP/1.1\" 502 157 \"-\" \"curl/8.4.0\" rt=0.061"]
        let error = [
            Self.nginxError(12, "connect() failed (111: Connection refused) while connecting to upstream", client: "198.51.100.4", request: "GET /api/items")
                .replacingOccurrences(of: ", host:", with: #", upstream: "http://10.0.1.12:8000/api/items", host:"#),
            Self.nginxError(20, "recv() failed (104: Connection reset by peer) while reading response header from upstream", client: "203.0.113.90", request: "POST /api/pay")
                .replacingOccurrences(of: ", host:", with: #", upstream: "http://10.0.1.12:8000/api/pay", host:"#),
        ].joined(separator: "\n") + "\n"
        let f = try diagnose(["nginx/access.log": access.joined(separator: "\n") + "\n", "nginx/error.log": error], status: "502")
        #expect(f.responder == "nginx" && f.cause == "gunicorn", "\(f.explanation)")
        #expect(f.explanation.contains("too soon for a timeout") && f.explanation.contains("10.0.1.12:8000"), "\(f.explanation)")
        #expect(!f.next_steps.contains { $0.contains("--timeout") })
    }
}

extension EdgeIncidentScenarioTests {
    /// The ALB passed on its target's 502 and the nginx logs given (another target's) have no
    /// record of it: the target's address is named, the cause left open, its host's logs asked for.
    @Test func aTargetsAnswerWithAnotherHostsLogsNamesTheTarget() throws {
        let files = [
            "alb.log": Self.alb(0.5, created: 0.4, elb: 502, target: "10.0.12.48:80", targetStatus: "502", times: "0.000 0.004 0.000", path: "/api/search") + "\n",
            "access.log": (0..<40).map { Self.nginxXFF(Double($0) * 3 - 60, "/api/items", 200, rt: "0.004") }.joined(separator: "\n") + "\n",
        ]
        let d = try t.diagnose(files, at: 0, status: "502")
        let f = try #require(d.findings.first)
        #expect(f.responder == "nginx" && f.cause == Finding.unknownCause && f.rule == "innermost-record", "\(f.explanation)")
        #expect(f.explanation.contains("10.0.12.48:80") && f.next_steps.contains { $0.contains("10.0.12.48:80") })
        let nginx = try #require(f.absent.first { $0.layer == "nginx" })
        #expect(nginx.why.contains("another target's"), "\(nginx.why)")
    }
}

extension HostStackScenarioTests {
    @Test func theExceptionLineIsNamedNotWhatFollowsIt() {
        let psycopg = ["Traceback (most recent call last):", "  File \"/srv/app/orders.py\", line 9, in create",
                       "django.db.utils.IntegrityError: duplicate key value violates unique constraint \"orders_ref_key\"",
                       "DETAIL:  Key (payment_ref)=(pi_3OtR2vKZ9x) already exists."].joined(separator: "\n")
        #expect(ExceptionText.summary(psycopg) == "django.db.utils.IntegrityError: duplicate key value violates unique constraint \"orders_ref_key\"")
        let sqlalchemy = ["Traceback (most recent call last):", "  File \"/srv/app/db.py\", line 3, in get",
                          "sqlalchemy.exc.OperationalError: (psycopg2.OperationalError) connection failed",
                          "(Background on this error at: https://sqlalche.me/e/20/e3q8)"].joined(separator: "\n")
        #expect(ExceptionText.summary(sqlalchemy)?.hasPrefix("sqlalchemy.exc.OperationalError") == true)
        #expect(ExceptionText.summary("Jan 14 16:02:01 web-1 gunicorn[40214]: Traceback (most recent call last):\nJan 14 16:02:01 web-1 gunicorn[40214]:     import stripe\nJan 14 16:02:01 web-1 gunicorn[40214]: ModuleNotFoundError: No module named 'stripe'")
                == "ModuleNotFoundError: No module named 'stripe'")
    }

    @Test func djangosVerboseFormatIsRead() {
        let lines = ["INFO 2025-03-11 14:00:10,743 views 2818 140211856627456 cart item added sku=5534 qty=1",
                     "ERROR 2025-03-11 14:32:05,102 log 2819 140211856627456 Internal Server Error: /checkout/"]
        #expect(ImporterRegistry.standard.detect(lines, fileName: "django.log").importer?.id == "flask")
    }

    /// nginx passing on a 500 that no rule explains, with the app's logs covering the moment and
    /// silent: which layer made it is not known, and nginx is not blamed for it.
    @Test func anUnexplainedProxied500HasNoKnownCause() throws {
        let f = try diagnose(["nginx/access.log": Self.nginx([(20, "203.0.113.90", "GET /api/items", 500)]),
                              "app/app.log": Self.appLog([])], status: "500")
        #expect(f.responder == "nginx" && f.cause == Finding.unknownCause, "\(f.explanation)")
    }
}

extension HostStackScenarioTests {
    /// nginx's access and error lines in syslog (`access_log syslog:`, `error_log syslog:`, or a
    /// journal export) are nginx's records; beside nginx's own files they are copies, counted once.
    @Test(arguments: [false, true]) func nginxLinesInSyslogAreNginxs(withFile: Bool) throws {
        let request = S.combined(20, peer: "203.0.113.90", "POST /api/orders", 500)
        let background = (0..<10).map { S.combined(Double($0 * 10 - 100), peer: "198.51.100.\($0 + 1)", "GET /api/items", 200) }
        func syslog(_ line: String, _ s: Double) -> String {
            let clock = TimeFormat.display(S.base + Int64(s * 1e6), zone: .utc, millis: false).split(separator: " ")[1]
            return "Feb  6 \(clock) web-1 nginx[813]: \(line)"
        }
        // `error_log syslog:` sends its lines the same way, stamped in the host's zone-less time.
        let error = Self.nginxError(20, "upstream prematurely closed connection while reading response header from upstream",
                                    client: "203.0.113.90", request: "POST /api/orders")
        let lines = zip(background, (0..<10).map { Double($0 * 10 - 100) }).map { syslog($0.0, $0.1) } + [syslog(error, 20), syslog(request, 20)]
        var files = ["syslog": lines.joined(separator: "\n") + "\n"]
        if withFile {
            files["nginx/access.log"] = (background + [request]).joined(separator: "\n") + "\n"
            files["nginx/error.log"] = error + "\n"
        }
        let dir = try TemporaryDirectory()
        for (name, text) in files { try dir.write(name, text) }
        let store = try TimelineStore()
        _ = try TimelineUpdate.run(store: store, paths: [dir.path], options: ImportOptions(appTimeZone: .utc))
        let counts = try store.read { db in
            (try Int.fetchOne(db, sql: "SELECT count(*) FROM event WHERE layer = 'nginx' AND kind = 'access' AND copy_of IS NULL") ?? -1,
             try Int.fetchOne(db, sql: "SELECT count(*) FROM event WHERE layer = 'nginx' AND kind = 'access' AND copy_of IS NOT NULL") ?? -1)
        }
        #expect(counts.0 == 11 && counts.1 == (withFile ? 11 : 0), "\(counts)")
        let errors = try store.read { db in
            try Row.fetchAll(db, sql: "SELECT path, client_ip, copy_of IS NOT NULL AS copy FROM event WHERE layer = 'nginx' AND kind = 'log' ORDER BY copy")
        }
        #expect(errors.count == (withFile ? 2 : 1) && errors.allSatisfy { ($0["path"] as String?) == "/api/orders" && ($0["client_ip"] as String?) == "203.0.113.90" })
        #expect(errors.filter { ($0["copy"] as Bool) }.count == (withFile ? 1 : 0))
        let q = DiagnosisQuery(at: S.base + 10_000_000, halfWindow: 120_000_000, zone: .utc, status: StatusFilter("5xx"), clientIP: nil)
        let d = try Diagnoser(store: store).diagnose(q)
        #expect(d.findings.count == 1 && d.findings[0].client_ip == "203.0.113.90" && d.findings[0].count == 1)
        // The error line is read as nginx's, whichever file holds it: the answer rests on it.
        #expect(d.findings[0].explanation.contains("upstream closed the connection"), "\(d.findings[0].explanation)")
    }
}

extension HostStackScenarioTests {
    @Test func aJSONRecordsTracebackFieldIsNamed() {
        let structlog = #"{"event": "request_failed", "level": "error", "path": "/api/pay", "exception": "Traceback (most recent call last):\n  File \"/srv/pay.py\", line 8, in charge\n    r = client.post(url)\nhttpx.ReadTimeout: timed out"}"#
        #expect(ExceptionText.summary(structlog) == "httpx.ReadTimeout: timed out")
    }
}

extension HostStackScenarioTests {
    /// A warning at the request's moment naming a part of its path (`Product 1234 not found` for
    /// /products/1234) is the app's reason; a lone warning about something else is not cited.
    @Test func aWarningNamingPartOfThePathIsTheAppsReason() throws {
        let f = try diagnose([
            "nginx/access.log": Self.nginx([(20, "203.0.113.90", "GET /products/1234", 404), (20, "192.0.2.9", "GET /wp-login.php", 404)]),
            "app/app.log": Self.appLog([(19.99, Self.python(19.99, "WARNING", "shop.views", "Product 1234 not found"))]),
        ], status: "404")
        #expect(f.responder == "app" && f.cause == "client" && f.reason == "app-404-related", "\(f.explanation)")
        #expect(f.explanation.contains("Product 1234 not found"))
        let d = try t.diagnose(["nginx/access.log": Self.nginx([(20, "203.0.113.90", "GET /products/1234", 404), (20, "192.0.2.9", "GET /wp-login.php", 404)]),
                                "app/app.log": Self.appLog([(19.99, Self.python(19.99, "WARNING", "shop.views", "Product 1234 not found"))])], at: 10, status: "404")
        let scanner = try #require(d.findings.first { $0.client_ip == "192.0.2.9" })
        #expect(!scanner.explanation.contains("Product 1234"))
    }

    /// nginx writes every upstream failure it answers for to its error log: a 503 with that log
    /// given and silent was the upstream's own, not "gunicorn, no error-log line explains it".
    @Test func a503WithASilentErrorLogIsNotNginxs() throws {
        let f = try diagnose([
            "nginx/access.log": Self.nginx([(20, "203.0.113.90", "POST /api/payments/charge", 503)]),
            "nginx/error.log": Self.nginxError(-200, "open() \"/srv/www/favicon.ico\" failed (2: No such file or directory)", client: "198.51.100.3", request: "GET /favicon.ico") + "\n",
        ], status: "503")
        #expect(f.responder == "nginx" && f.cause == Finding.unknownCause && f.rule == "innermost-record", "\(f.rule): \(f.explanation)")
    }
}

extension EdgeIncidentScenarioTests {
    /// A listener rule's fixed response is the ALB's own answer, not an empty target group.
    @Test func aFixedResponseRuleIsTheAlbsAnswer() throws {
        let line = Self.alb(0.5, created: 0.5, elb: 503, target: "-", targetStatus: "-", times: "-1 -1 -1", path: "/api/orders")
            .replacingOccurrences(of: "\"waf,forward\"", with: "\"fixed-response\"")
        let d = try t.diagnose(["alb.log": line + "\n"], at: 0, status: "503")
        let f = try #require(d.findings.first)
        #expect(f.responder == "alb" && f.cause == "alb" && f.explanation.contains("fixed response"), "\(f.explanation)")
        #expect(!f.explanation.contains("no registered"))
    }
}

extension LambdaIncidentScenarioTests {
    /// Lambda throttled the invocation (integration status 429, `Rate Exceeded.`): the function
    /// never started, so its silence is expected, not "unlinked".
    @Test func aThrottledInvocationIsNamed() throws {
        let access = Self.access(0.1, status: 500, error: "Internal server error", integration: "429")
            .replacingOccurrences(of: #""integrationStatus":"429""#, with: #""integrationStatus":"429", "integrationErrorMessage":"Rate Exceeded.""#)
        let d = try t.diagnose(files(access: access, execution: nil, lambda: Self.lambda(-100, ["[INFO] other invocation"])), at: 0, status: "500")
        let f = try #require(d.findings.first)
        #expect(f.responder == "apigateway" && f.cause == "lambda" && f.explanation.contains("throttled"), "\(f.explanation)")
        let lambda = try #require(f.absent.first { $0.layer == "lambda" })
        #expect(lambda.expected && lambda.why.contains("never starts"))
    }
}

extension HostStackScenarioTests {
    /// copytruncate's race: the live file begins with the rotated copy's last lines. Those are
    /// one record each, cited from the rotated file; a line merely alike (another second) is not.
    @Test func copytruncatesRepeatedLinesAreCountedOnce() throws {
        let older = (0..<20).map { S.combined(Double($0 * 3 - 60), peer: "198.51.100.\($0 % 9 + 1)", "GET /api/items", 200) }
            + [S.combined(1, peer: "203.0.113.90", "POST /api/orders", 502), S.combined(2, peer: "203.0.113.90", "GET /api/orders", 502)]
        let newer = Array(older.suffix(2)) + [S.combined(3, peer: "203.0.113.90", "GET /api/orders", 502)]
            + (0..<20).map { S.combined(Double($0 * 3 + 10), peer: "198.51.100.\($0 % 9 + 1)", "GET /api/items", 200) }
        let dir = try TemporaryDirectory()
        try dir.write("nginx/access.log.1", older.joined(separator: "\n") + "\n")
        try dir.write("nginx/access.log", newer.joined(separator: "\n") + "\n")
        let store = try TimelineStore()
        _ = try TimelineUpdate.run(store: store, paths: [dir.path], options: ImportOptions(appTimeZone: .utc))
        let copies = try store.read { try Int.fetchOne($0, sql: "SELECT count(*) FROM event WHERE copy_of IS NOT NULL") }
        #expect(copies == 2)
        let q = DiagnosisQuery(at: S.base, halfWindow: 60_000_000, zone: .utc, status: StatusFilter("502"), clientIP: nil)
        let d = try Diagnoser(store: store).diagnose(q)
        #expect(d.findings.map(\.count).reduce(0, +) == 3, "\(d.findings.map { ($0.path ?? "", $0.count) })")
        #expect(d.findings.allSatisfy { f in f.evidence.allSatisfy { !($0.source.hasSuffix("access.log") && $0.line <= 2) } })
        // Read again: nothing is added, nothing marked twice.
        _ = try TimelineUpdate.run(store: store, paths: [dir.path], options: ImportOptions(appTimeZone: .utc))
        #expect(try store.read { try Int.fetchOne($0, sql: "SELECT count(*) FROM event WHERE copy_of IS NOT NULL") } == 2)
    }

    @Test func theOlderRotationIsFound() {
        let stored: [String: Any] = ["a/access.log.1": 1, "a/access.log.2.gz": 1, "a/error.log": 1]
        #expect(RotationOverlap.olderRotation(of: "a/access.log", in: stored) == "a/access.log.1")
        #expect(RotationOverlap.olderRotation(of: "a/access.log.1", in: stored) == "a/access.log.2.gz")
        #expect(RotationOverlap.olderRotation(of: "a/error.log", in: stored) == nil)
        // logrotate's dateext: the live file's older rotation is its latest dated sibling.
        let dated: [String: Any] = ["n/access.log": 1, "n/access.log-20250205.gz": 1, "n/access.log-20250206": 1, "n/other.log-20250206": 1]
        #expect(RotationOverlap.olderRotation(of: "n/access.log", in: dated) == "n/access.log-20250206")
        #expect(RotationOverlap.olderRotation(of: "n/access.log-20250206", in: dated) == "n/access.log-20250205.gz")
        #expect(RotationOverlap.olderRotation(of: "n/access.log-20250205.gz", in: dated) == nil)
    }
}

extension HostStackScenarioTests {
    @Test func aDaylightSavingSwitchNamesTheRules() {
        // 2026-03-29 01:00 UTC: Europe's switch from +0100 to +0200.
        let before: Int64 = 1_774_745_000_000_000, after: Int64 = 1_774_746_000_000_000
        #expect(DSTZoneInference.zone(before: 3600, at: before, after: 7200, at: after) == .named("Europe/Berlin"))
        #expect(DSTZoneInference.zone(before: 3600, at: before, after: 10800, at: after) == nil)
        var inference = DSTZoneInference()
        #expect(inference.observe(offset: 3600, utc: before - 60_000_000) == nil)
        #expect(inference.observe(offset: 3600, utc: before) == nil)
        #expect(inference.observe(offset: 7200, utc: after) == .named("Europe/Berlin"))
    }

    /// nginx's offsets change from +0100 to +0200 at the switch; the zone-less app stamps after it
    /// are read in summer time, so the app's traceback meets the 500 it caused.
    @Test func anAppLogAcrossTheSwitchIsReadInSummerTimeAfterIt() throws {
        let switchUTC: Int64 = 1_774_746_000_000_000  // 2026-03-29 01:00:00Z
        func clf(_ utc: Int64) -> String {
            let offset: Int64 = utc < switchUTC ? 3600 : 7200
            let parts = TimeFormat.display(utc + offset * 1_000_000, zone: .utc, millis: false).split(separator: " ")
            let d = parts[0].split(separator: "-")
            return "\(d[2])/Mar/\(d[0]):\(parts[1]) \(offset == 3600 ? "+0100" : "+0200")"
        }
        func local(_ utc: Int64) -> String {
            let offset: Int64 = utc < switchUTC ? 3600 : 7200
            let shown = TimeFormat.display(utc + offset * 1_000_000, zone: .utc).split(separator: " ")
            return "\(shown[0]) \(shown[1].replacingOccurrences(of: ".", with: ","))"
        }
        var nginx: [String] = [], app: [String] = []
        for i in 0..<120 {
            let t = switchUTC - 3_600_000_000 + Int64(i) * 45_000_000
            nginx.append("198.51.100.\(i % 9 + 1) - - [\(clf(t))] \"GET /api/items/\(i) HTTP/1.1\" 200 512 \"-\" \"curl/8.4.0\"")
            app.append("[\(local(t - 20_000))] INFO in views: GET /api/items/\(i) 200")
        }
        let failed = switchUTC + 244_000_000  // 03:04:04 CEST
        nginx.append("192.0.2.140 - - [\(clf(failed))] \"POST /api/checkout HTTP/1.1\" 500 265 \"-\" \"curl/8.4.0\"")
        app += ["[\(local(failed - 95_000))] ERROR in app: Exception on /api/checkout [POST]", "Traceback (most recent call last):",
                "  File \"/srv/shop/checkout.py\", line 7, in checkout", "KeyError: 'vat_rate'"]
        let dir = try TemporaryDirectory()
        try dir.write("nginx/access.log", nginx.sorted { $0.contains("[29/Mar/2026:0") && $1.contains("[29/Mar/2026:0") ? $0 < $1 : $0 < $1 }.joined(separator: "\n") + "\n")
        try dir.write("app/app.log", app.joined(separator: "\n") + "\n")
        let store = try TimelineStore()
        _ = try TimelineUpdate.run(store: store, paths: [dir.path], options: ImportOptions())
        let q = DiagnosisQuery(at: failed, halfWindow: 120_000_000, zone: .utc, status: StatusFilter("500"), clientIP: nil)
        let f = try #require(try Diagnoser(store: store).diagnose(q).findings.first)
        #expect(f.responder == "app" && f.explanation.contains("KeyError"), "\(f.explanation)")
    }
}

extension EdgeIncidentScenarioTests {
    /// The ALB's desync mitigation refused a malformed request: its classification is named.
    @Test func aDesyncMitigationRefusalIsNamed() throws {
        let line = Self.alb(0.5, created: 0.5, elb: 400, target: "-", targetStatus: "-", times: "-1 -1 -1", path: "/api/sync")
            .replacingOccurrences(of: #""-" "-" TID_"#, with: #""Severe" "BadContentLength" TID_"#)
        let d = try t.diagnose(["alb.log": line + "\n"], at: 0, status: "400")
        let f = try #require(d.findings.first)
        #expect(f.responder == "alb" && f.cause == "client", "\(f.explanation)")
        #expect(f.explanation.contains("`Severe`") && f.explanation.contains("BadContentLength"), "\(f.explanation)")
    }
}

extension DiagnosisScenarioTests {
    /// CloudFront gave up after 30 s (OriginReadError); the ALB answered 200 after 46 s, its
    /// target's time. The records are one request (arrivals agree), and the slow target is the cause.
    @Test func anOriginAnsweringAfterCloudFrontGaveUpIsTheCause() throws {
        let cf = Self.cloudfront(30, ip: "203.0.113.45", "/api/reports/export", 504, result: "Error", detailed: "OriginReadError",
                                 id: "LATExwn4XV6Q4rgb7XiVGOHms_BGlTAC4KyHmureZmBNrjGdRLiNIQ==", taken: "30.005")
        let alb = Self.albLine(46, client: "130.176.0.9", path: "/api/reports/export", elb: 200, target: "10.0.1.20:80", targetStatus: "200",
                               trace: "1-67a44a18-cccccccccccccccccccccccc")
            .replacingOccurrences(of: "0.000 0.048 0.000", with: "0.001 45.950 0.000")
            .replacingOccurrences(of: Self.iso(45.95).replacingOccurrences(of: "Z", with: "000Z"), with: Self.iso(0.05).replacingOccurrences(of: "Z", with: "000Z"))
        let d = try diagnose(["cf/E2EXAMPLE1ABCD.2025-02-06-05.a1b2c3d4": Self.cloudfrontLog([cf]),
                              "alb/111122223333_elasticloadbalancing_ap-northeast-1_app.web-prod.5f2c1a8e9b3d4c71_20250206T0530Z_10.0.0.5_x.log": Self.albLog([alb])],
                             at: 20, status: "504")
        let f = try #require(d.findings.first)
        #expect(f.responder == "cloudfront" && f.cause == "nginx" && f.reason == "cloudfront-504-late-origin", "\(f.rule) \(f.cause): \(f.explanation)")
        #expect(f.evidence.contains { $0.layer == "alb" })
    }
}

extension LambdaIncidentScenarioTests {
    /// API Gateway gave up at 29 s and no id names the invocation: the one that started with the
    /// request and logged its path's words is cited; another that started then is not.
    @Test func aTimedOutRequestsInvocationIsFoundByItsPath() throws {
        let access = Self.access(0, status: 504, error: "Endpoint request timed out", integration: "-")
        let other = "bbbbbbbb-d5cc-4974-ae08-6e2138b2275c"
        let lambda = [
            "\(DiagnosisScenarioTests.iso(0.4)) START RequestId: \(other) Version: $LATEST",
            "\(DiagnosisScenarioTests.iso(0.41)) [INFO]\t\(DiagnosisScenarioTests.iso(0.41))\t\(other)\tGET /health",
            "\(DiagnosisScenarioTests.iso(0.5)) START RequestId: \(Self.invocation) Version: $LATEST",
            "\(DiagnosisScenarioTests.iso(0.51)) [INFO]\t\(DiagnosisScenarioTests.iso(0.51))\t\(Self.invocation)\tloading items from the warehouse API",
        ].joined(separator: "\n")
        let d = try t.diagnose(files(access: access, execution: nil, lambda: lambda), at: 0, status: "504")
        let f = try #require(d.findings.first)
        #expect(f.responder == "apigateway" && f.cause == "lambda", "\(f.explanation)")
        #expect(f.evidence.contains { $0.text.contains("warehouse") } && !f.evidence.contains { $0.text.contains("/health") })
    }
}

extension EdgeIncidentScenarioTests {
    /// The targets failed their health checks minutes before the ALB, with none left, answered 503.
    @Test func anAlb503CitesHealthChecksFailedMinutesBefore() throws {
        let checks = (0..<6).map { i in
            "10.1.1.210 - - [\(DiagnosisScenarioTests.clf(Double(-400 + i * 30)))] \"GET /health HTTP/1.1\" 500 71 \"-\" \"ELB-HealthChecker/2.0\" \"-\" rt=0.003 urt=\"0.003\""
        }
        let files = [
            "alb.log": Self.alb(0.5, created: 0.5, elb: 503, target: "-", targetStatus: "-", times: "-1 -1 -1", path: "/api/items")
                .replacingOccurrences(of: "\"waf,forward\"", with: "\"forward\"") + "\n",
            "access.log": ((0..<20).map { Self.nginxXFF(Double($0) * 3 - 700, "/api/items", 200, rt: "0.004") } + checks).joined(separator: "\n") + "\n",
        ]
        let d = try t.diagnose(files, at: 0, status: "503")
        let f = try #require(d.findings.first)
        #expect(f.responder == "alb" && f.explanation.contains("failing their health checks"), "\(f.explanation)")
        #expect(f.evidence.contains { $0.text.contains("ELB-HealthChecker") })
    }
}

extension HostStackScenarioTests {
    /// An error written by the module named after the path (`ERROR in payments:` for
    /// /api/payments/charge), in the singular in its text, is the app's reason for its 503.
    @Test func aModuleNamedAfterThePathSpeaksForIt() throws {
        let line = "[2025-02-06 14:32:19,900] ERROR in payments: Payment gateway call failed for order 88219"  // 05:32:19.9Z at +0900
        let f = try diagnose([
            "nginx/access.log": Self.nginx([(20, "203.0.113.90", "POST /api/payments/charge", 503)]),
            "nginx/error.log": Self.nginxError(-200, "open() \"/srv/www/favicon.ico\" failed (2: No such file or directory)", client: "198.51.100.3", request: "GET /favicon.ico") + "\n",
            "app/app.log": Self.appLog([]) + line + "\n",
        ], status: "503")
        #expect(f.responder == "app" && f.reason == "app-503-related", "\(f.rule): \(f.explanation)")
    }
}

extension DiagnosisScenarioTests {
    /// A rate-based block of an address behind which many browsers sit (a company's NAT): the
    /// answer says the address looks shared, and scoping the rule comes first in the next steps.
    @Test(arguments: [2, 8]) func aRateBlockOfASharedAddressSaysSo(agents: Int) throws {
        let rate = #"[{"rateBasedRuleId":"7b2f","rateBasedRuleName":"RateLimitPerIP","limitKey":"IP","maxRateAllowed":1000,"limitValue":"198.51.100.77"}]"#
        var lines = [Self.waf(20, ip: "198.51.100.77", uri: "/api/items", action: "BLOCK", rule: "RateLimitPerIP", type: "RATE_BASED", rate: rate)]
        for i in 0..<agents {
            lines.append(Self.waf(Double(-100 + i), ip: "198.51.100.77", uri: "/api/items")
                .replacingOccurrences(of: "curl/8.5.0", with: "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/13\(i).0"))
        }
        let d = try diagnose(["waf/waf.log": lines.joined(separator: "\n") + "\n"], at: 10, status: "403")
        let f = try #require(d.findings.first)
        #expect(f.responder == "waf" && f.cause == "client")
        #expect(f.explanation.contains("looks shared") == (agents >= 5), "\(f.explanation)")
    }
}

extension HostStackScenarioTests {
    /// With nginx's error log and no access log, nothing in front logged the traffic: the answer
    /// from absence must not say it did.
    @Test func anErrorLogAloneIsNotTrafficLoggedInFront() throws {
        let d = try t.diagnose(["nginx/error.log": Self.nginxError(20, "upstream timed out (110: Connection timed out) while reading response header from upstream", client: "203.0.113.90", request: "GET /api/report") + "\n",
                                "app/app.log": Self.appLog([])], at: 10)
        let text = d.findings.map(\.explanation).joined() + (d.headline ?? "")
        #expect(!text.contains("logged the traffic"), "\(text)")
    }
}

extension HostStackScenarioTests {
    static func traceback(_ s: Double, path: String, _ exception: String) -> (Double, String) {
        (s, python(s, "ERROR", "shop.app", "Exception on \(path) [GET]") + "\nTraceback (most recent call last):\n  File \"/srv/shop/db.py\", line 12, in connect\n    return engine.connect()\n\(exception)")
    }

    /// A database refusing connections fails every route at once: the answer names the database
    /// and how widely it failed, not "fix the exception" in the route (round 11's DB outage).
    @Test func aDatabaseOutageIsNamedAsTheDependency() throws {
        let refused = #"sqlalchemy.exc.OperationalError: (psycopg2.OperationalError) connection to server at "db.internal" (10.0.3.15), port 5432 failed: Connection refused"#
        let f = try diagnose([
            "nginx/access.log": Self.nginx([(16, "192.0.2.7", "GET /api/orders", 500), (18, "192.0.2.8", "GET /api/customers/7", 500),
                                            (20, "203.0.113.90", "GET /api/inventory/3", 500)]),
            "app/app.log": Self.appLog([Self.traceback(15.99, path: "/api/orders", refused), Self.traceback(17.99, path: "/api/customers/7", refused),
                                        Self.traceback(19.99, path: "/api/inventory/3", refused)]),
        ], status: "500")
        #expect(f.responder == "app" && f.cause == "app" && f.dependency == "database", "\(f.rule): \(f.explanation)")
        #expect(f.explanation.contains("not a bug in this route") && f.explanation.contains("2 other application errors"))
        #expect(f.next_steps.first?.contains("Check the database") == true && !f.next_steps.contains { $0.contains("fix the exception") })
        #expect(f.causePhrase == "caused by app (its database)")
    }

    @Test func anOrdinaryExceptionNamesNoDependency() throws {
        let f = try diagnose([
            "nginx/access.log": Self.nginx([(20, "203.0.113.90", "GET /api/inventory/3", 500)]),
            "app/app.log": Self.appLog([Self.traceback(19.99, path: "/api/inventory/3", "KeyError: 'vat_rate'")]),
        ], status: "500")
        #expect(f.dependency == nil && f.cause == "app")
        #expect(DependencyFailure.classify("sqlite3.OperationalError: no such table: orders") == nil)
        #expect(DependencyFailure.classify("redis.exceptions.ConnectionError: Error 111 connecting to cache:6379. Connection refused.")?.dependency == "Redis")
    }
}

extension HostStackScenarioTests {
    /// Django's CSRF refusal is the client's missing token, not the app's policy; a permission
    /// refusal at the same time stays the app's own decision.
    @Test func aCSRFRefusalIsTheClientsMissingToken() throws {
        let files = [
            "nginx/access.log": Self.nginx([(20, "203.0.113.90", "POST /accounts/profile/", 403), (25, "192.0.2.7", "GET /admin/reports/", 403)]),
            "app/app.log": Self.appLog([(19.99, Self.python(19.99, "WARNING", "django.security.csrf", "Forbidden (CSRF token missing.): /accounts/profile/")),
                                        (24.99, Self.python(24.99, "WARNING", "django.request", "Forbidden (Permission denied): /admin/reports/"))]),
        ]
        let f = try diagnose(files, status: "403")
        #expect(f.responder == "app" && f.cause == "client", "\(f.rule): \(f.explanation)")
        #expect(f.explanation.contains("CSRF") && !f.explanation.contains("own decision"))
        let d = try t.diagnose(files, at: 10, status: "403")
        let other = try #require(d.findings.first { $0.client_ip == "192.0.2.7" })
        #expect(other.responder == "app" && other.cause == "app")
    }
}

extension HostStackScenarioTests {
    /// The app's own request line names the 500; its traceback ends in Redis refusing connections:
    /// the reason is the exception, not the traceback's head, and Redis is named (round 14).
    @Test func aRequestLinesReasonIsItsExceptionAndItsDependency() throws {
        let redis = "redis.exceptions.ConnectionError: Error 111 connecting to redis-sessions.internal:6379. Connection refused."
        let f = try diagnose([
            "nginx/access.log": Self.nginx([(18, "192.0.2.7", "GET /api/cart", 500), (20, "203.0.113.90", "GET /api/orders", 500)]),
            "app/app.log": Self.appLog([Self.traceback(17.99, path: "/api/cart", redis), Self.traceback(19.98, path: "/api/orders", redis),
                                        (19.99, Self.python(19.99, "ERROR", "shop.requests", "GET /api/orders -> 500 (3 ms)"))]),
        ], status: "500")
        #expect(f.responder == "app" && f.dependency == "Redis", "\(f.rule): \(f.explanation)")
        #expect(f.explanation.contains("redis.exceptions.ConnectionError") || f.explanation.contains("Redis"))
    }
}

extension HostStackScenarioTests {
    /// nginx gave up at proxy_read_timeout; the app logged a slow query naming the request's query
    /// value, then finished the request: both are cited, and the app's silence is explained (round 14).
    @Test func aTimeoutCitesWhatTheAppLoggedAfterNginxGaveUp() throws {
        let f = try diagnose([
            "nginx/access.log": Self.nginx([(20, "203.0.113.90", "GET /api/orders/search?customer=acme-logistics", 504)]),
            "nginx/error.log": Self.nginxError(20, "upstream timed out (110: Connection timed out) while reading response header from upstream",
                                              client: "203.0.113.90", request: "GET /api/orders/search?customer=acme-logistics") + "\n",
            "app/app.log": Self.appLog([(22.4, Self.python(22.4, "WARNING", "db", "slow query 12.31s: SELECT id FROM orders JOIN customers ON … WHERE slug = 'acme-logistics'")),
                                        (22.6, Self.python(22.6, "INFO", "request_log", "GET /api/orders/search 200 12520ms user=jmorales"))]),
        ], status: "504")
        #expect(f.responder == "nginx" && f.cause == "app", "\(f.rule): \(f.explanation)")
        #expect(f.explanation.contains("slow query 12.31s") && f.explanation.contains("12520ms"))
        #expect(f.absent.first { $0.layer == "app" }?.expected == true)
    }
}
