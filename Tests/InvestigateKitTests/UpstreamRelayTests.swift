import Foundation
import Testing
@testable import InvestigateKit

/// nginx's access line logs `$upstream_status`: a status its upstream sent is relayed, not nginx's.
@Suite struct UpstreamRelayTests {
    let t = DiagnosisScenarioTests()
    typealias S = DiagnosisScenarioTests

    static let format = #"$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent" $request_length $request_time $upstream_addr $upstream_status $upstream_response_time"#

    static func nginx(_ s: Double, _ client: String, _ request: String, _ status: Int, length: Int, upstreamStatus: String) -> String {
        "\(client) - - [\(S.clf(s))] \"\(request) HTTP/1.1\" \(status) 191 \"-\" \"Mozilla/5.0\" \(length) 0.003 127.0.0.1:8000 \(upstreamStatus) 0.002"
    }

    /// Quiet traffic at nginx and gunicorn every ten seconds, and the app's request lines.
    static func stack(_ extra: [String]) -> [String: String] {
        let times = stride(from: -300.0, to: 300, by: 10)
        let nginx = times.map { Self.nginx($0, "198.51.100.\(Int($0 + 300) / 10 % 9 + 1)", "GET /api/items", 200, length: 1500, upstreamStatus: "200") } + extra
        let gunicorn = times.map { "127.0.0.1 - - [\(S.clf($0 - 0.001))] \"GET /api/items HTTP/1.0\" 200 812 \"-\" \"Mozilla/5.0\"" }
        let app = times.map { S.flask($0 - 0.002, "INFO", "GET /api/items -> 200") }
        return ["nginx/access.log": nginx.joined(separator: "\n") + "\n",
                "gunicorn/access.log": gunicorn.joined(separator: "\n") + "\n",
                "app/app.log": app.joined(separator: "\n") + "\n"]
    }

    @Test func relayedStatusesAreTheUpstreams() {
        let record = { (status: Int, upstream: String) in
            StoredEvent(id: 1, sourceID: 1, event: {
                var e = Event(time: 0, layer: .nginx, kind: .access, line: 1, raw: [])
                e.status = status
                e.extra["upstream_status"] = upstream
                return e
            }())
        }
        #expect(UpstreamRelayRule.relayed(record(400, "400"), status: 400))
        // The last upstream tried answered (`proxy_next_upstream` lists each).
        #expect(UpstreamRelayRule.relayed(record(404, "502, 404"), status: 404))
        #expect(!UpstreamRelayRule.relayed(record(400, "-"), status: 400))
        // nginx writes 502/504 there for its own upstream failures too.
        #expect(!UpstreamRelayRule.relayed(record(504, "504"), status: 504))
    }

    /// gunicorn refuses a header over `limit_request_field_size` before any access line or app
    /// code: before, the answer was "nginx refused the request itself (a malformed request)".
    @Test func anOversizedHeaderRefusedByGunicornIsTheClients() throws {
        let d = try t.diagnose(Self.stack([Self.nginx(10, "203.0.113.90", "GET /api/tickets", 400, length: 10540, upstreamStatus: "400")]),
                               at: 10, status: "400", nginxLogFormat: Self.format)
        let f = try #require(d.findings.first)
        #expect(f.responder == "gunicorn" && f.cause == "client" && f.rule == "upstream-relay", "\(f.rule): \(f.explanation)")
        #expect(f.explanation.contains("10540 bytes") && f.explanation.contains("limit_request_field_size"))
        #expect(f.absent.contains { $0.layer == "gunicorn" && $0.expected })
        #expect(!f.explanation.contains("nginx refused"))
    }

    /// The app's own record of the status still makes the app the responder.
    @Test func anAppThatLoggedTheStatusIsStillTheResponder() throws {
        var files = Self.stack([Self.nginx(10, "203.0.113.90", "POST /api/tickets", 400, length: 900, upstreamStatus: "400")])
        files["gunicorn/access.log"]! += "127.0.0.1 - - [\(S.clf(9.999))] \"POST /api/tickets HTTP/1.0\" 400 64 \"-\" \"Mozilla/5.0\"\n"
        files["app/app.log"]! += S.flask(9.998, "WARNING", "validation failed for POST /api/tickets: 'title' is required") + "\n"
        let d = try t.diagnose(files, at: 10, status: "400", nginxLogFormat: Self.format)
        let f = try #require(d.findings.first)
        #expect(f.responder != "nginx" && f.rule != "upstream-relay", "\(f.rule): \(f.explanation)")
    }

    /// A scanner's 404s from Flask's router, with only nginx's and the app's logs: the application
    /// answered, and its silence is not "gunicorn answered before the request reached app" (round 14).
    @Test func aRelayed404IsTheApplicationsWithoutALine() throws {
        var files = Self.stack([Self.nginx(10, "203.0.113.90", "POST /wp-login.php", 404, length: 400, upstreamStatus: "404")])
        files["gunicorn/access.log"] = nil
        let d = try t.diagnose(files, at: 10, status: "404", nginxLogFormat: Self.format)
        let f = try #require(d.findings.first)
        #expect(f.responder == "app" && f.cause == "client" && f.rule == "upstream-relay", "\(f.rule): \(f.explanation)")
        #expect(f.absent.first { $0.layer == "app" }.map { $0.expected && !$0.why.contains("before the request reached") } ?? false)
    }
}
