import Foundation
import Testing
@testable import InvestigateKit

/// nginx's error log given without its access log (a host that logs errors only, or an access log
/// rotated away): the error-log line is the request's one record at nginx, and the status is the
/// one nginx sends for that failure.
@Suite struct ErrorLogOnlyTests {
    let t = DiagnosisScenarioTests()
    typealias S = DiagnosisScenarioTests
    typealias H = HostStackScenarioTests

    /// gunicorn's access log (`%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s"`) behind a
    /// local nginx: quiet traffic every ten seconds.
    static func gunicornAccess(from: Double = -300, to: Double = 300) -> String {
        stride(from: from, to: to, by: 10).map { s in
            "127.0.0.1 - - [\(S.clf(s))] \"GET /api/items HTTP/1.0\" 200 812 \"-\" \"Mozilla/5.0\""
        }.joined(separator: "\n") + "\n"
    }

    @Test func statusesNginxSendsForItsErrorLines() {
        #expect(NginxErrorStatus.statuses(for: "upstream timed out (110: Connection timed out) while reading response header from upstream") == [504])
        #expect(NginxErrorStatus.statuses(for: "connect() failed (111: Connection refused) while connecting to upstream") == [502])
        #expect(NginxErrorStatus.statuses(for: "upstream prematurely closed connection while reading response header from upstream") == [502])
        #expect(NginxErrorStatus.statuses(for: "limiting requests, excess: 10.500 by zone \"api\"") == [503, 429])
        #expect(NginxErrorStatus.statuses(for: "client intended to send too large body: 10485761 bytes") == [413])
        #expect(NginxErrorStatus.statuses(for: "access forbidden by rule") == [403])
        #expect(NginxErrorStatus.statuses(for: "open() \"/srv/www/robots.txt\" failed (2: No such file or directory)") == [404])
        #expect(NginxErrorStatus.statuses(for: "rewrite or internal redirection cycle while internally redirecting to \"/index.html\"") == [500])
        // Lines that are not a request's failure stand for no status.
        #expect(NginxErrorStatus.statuses(for: "signal process started").isEmpty)
        #expect(NginxErrorStatus.statuses(for: "upstream server temporarily disabled while reading response header from upstream").isEmpty)
        // Under a filter, the status the filter takes.
        #expect(NginxErrorStatus.status(for: "limiting requests, excess: 3.2 by zone \"api\"", matching: StatusFilter("429")) == 429)
        #expect(NginxErrorStatus.status(for: "limiting requests, excess: 3.2 by zone \"api\"", matching: StatusFilter("5xx")) == 503)
        #expect(NginxErrorStatus.status(for: "upstream timed out (110: Connection timed out)", matching: StatusFilter("502")) == nil)
    }

    /// Before, the answer was "no layer recorded an error response" and "nginx passed the request
    /// on", beside the very line that says nginx gave up on its upstream.
    @Test func anUpstreamTimeoutInTheErrorLogIsTheRequestsAnswer() throws {
        let d = try t.diagnose([
            "nginx/error.log": H.nginxError(10, "upstream timed out (110: Connection timed out) while reading response header from upstream",
                                            client: "203.0.113.90", request: "POST /api/report") + ", upstream: \"http://127.0.0.1:8000/api/report\"\n",
            "gunicorn/access.log": Self.gunicornAccess(),
        ], at: 10, status: "504")
        let f = try #require(d.findings.first)
        #expect(f.status == 504 && f.path == "/api/report" && f.client_ip == "203.0.113.90")
        #expect(f.responder == "nginx" && f.cause == "app" && f.rule == "nginx-own-status", "\(f.rule): \(f.explanation)")
        #expect(f.explanation.contains("the status is the one nginx sends for this error-log line"))
        #expect(f.evidence.contains { $0.layer == "nginx" && $0.source.hasSuffix("error.log") })
        // The request reached gunicorn; its access log covers the moment and holds no linked line.
        #expect(!f.absent.contains { $0.layer == "gunicorn" && $0.why.contains("answered before") })
        #expect(!f.absent.contains { $0.layer == "nginx" })
    }

    @Test func theStatusFilterChoosesAmongTheErrorLines() throws {
        let error = H.nginxError(10, "connect() failed (111: Connection refused) while connecting to upstream",
                                 client: "203.0.113.90", request: "GET /api/cart") + "\n"
            + H.nginxError(30, "limiting requests, excess: 20.600 by zone \"api\"", client: "198.51.100.44", request: "GET /api/search") + "\n"
        let refused = try t.diagnose(["nginx/error.log": error, "gunicorn/access.log": Self.gunicornAccess()], at: 10, status: "502")
        #expect(refused.findings.count == 1)
        #expect(refused.findings.first?.path == "/api/cart" && refused.findings.first?.cause == "gunicorn")
        // limit_req's status is configurable: a user who saw 429 finds the limit's line.
        let limited = try t.diagnose(["nginx/error.log": error, "gunicorn/access.log": Self.gunicornAccess()], at: 10, status: "429")
        let f = try #require(limited.findings.first)
        #expect(limited.findings.count == 1 && f.status == 429 && f.path == "/api/search" && f.cause == "client", "\(f.rule): \(f.explanation)")
    }

    /// With nginx's access log covering the window, its records are the answers, and the error
    /// line is their evidence, not a second request.
    @Test func anAccessLogThatCoversTheWindowKeepsTheErrorLineAsEvidence() throws {
        let d = try t.diagnose([
            "nginx/access.log": H.nginx([(10, "203.0.113.90", "POST /api/report", 504)]),
            "nginx/error.log": H.nginxError(10, "upstream timed out (110: Connection timed out) while reading response header from upstream",
                                            client: "203.0.113.90", request: "POST /api/report") + "\n",
        ], at: 10, status: "504")
        #expect(d.findings.count == 1)
        let f = try #require(d.findings.first)
        #expect(!f.explanation.contains("the status is the one nginx sends"))
        #expect(f.evidence.contains { $0.source.hasSuffix("access.log") } && f.evidence.contains { $0.source.hasSuffix("error.log") })
    }
}
