import Foundation
import Testing
@testable import InvestigateKit

/// An app host's clock minutes off: its request lines are compared with the access records of the
/// same paths, and a clear whole-second shift moves its records.
@Suite struct AppClockSkewTests {
    typealias S = DiagnosisScenarioTests

    /// nginx access lines for varied paths every 7 s over 20 minutes, and the app's own line for
    /// each, `skew` seconds off (negative: the app's clock is behind), written in UTC.
    static func logs(skew: Double, paths: (Int) -> String = { "/api/orders/\(1000 + $0 * 37 % 900)" }, extra: [(Double, String, Int)] = [])
        -> (nginx: String, app: String) {
        var nginx: [(Double, String)] = [], app: [(Double, String)] = []
        for i in 0..<170 {
            let s = -600 + Double(i) * 7
            let path = paths(i)
            nginx.append((s, S.combined(s, peer: "198.51.100.\(i % 9 + 1)", "GET \(path)", 200)))
            app.append((s - 0.02 + skew, line(s - 0.02 + skew, "INFO", "GET \(path) 200 14ms")))
        }
        for (s, path, status) in extra {
            nginx.append((s, S.combined(s, peer: "203.0.113.90", "GET \(path)", status)))
            app.append((s - 0.05 + skew, line(s - 0.05 + skew, "ERROR", "Exception on \(path) [GET]")))
            app.append((s - 0.05 + skew, "Traceback (most recent call last):"))
            app.append((s - 0.05 + skew, "KeyError: 'vat_breakdown'"))
        }
        func text(_ l: [(Double, String)]) -> String { l.sorted { $0.0 < $1.0 }.map(\.1).joined(separator: "\n") + "\n" }
        return (text(nginx), text(app))
    }

    static func line(_ s: Double, _ level: String, _ message: String) -> String {
        let shown = TimeFormat.display(S.base + Int64(s * 1e6), zone: .utc).split(separator: " ")
        return "[\(shown[0]) \(shown[1].replacingOccurrences(of: ".", with: ","))] \(level) in views: \(message)"
    }

    func ingest(_ logs: (nginx: String, app: String)) throws -> (TimelineStore, [String]) {
        let dir = try TemporaryDirectory()
        try dir.write("nginx/access.log", logs.nginx)
        try dir.write("app/app.log", logs.app)
        let store = try TimelineStore()
        _ = try TimelineUpdate.run(store: store, paths: [dir.path], options: ImportOptions(appTimeZone: .utc))
        let notes = try store.read { db in try String.fetchAll(db, sql: "SELECT notes FROM source WHERE format = 'flask'") }
        return (store, notes)
    }

    @Test func anAppClockMinutesBehindIsMovedAndItsTracebackAnswers() throws {
        let (store, notes) = try ingest(Self.logs(skew: -160, extra: [(20, "/api/v1/invoices/8840/pdf", 500)]))
        #expect(notes.joined().contains("moved by +160 s"), "\(notes)")
        let q = DiagnosisQuery(at: S.base + 10_000_000, halfWindow: 120_000_000, zone: .utc, status: StatusFilter("500"), clientIP: nil)
        let d = try Diagnoser(store: store).diagnose(q)
        let f = try #require(d.findings.first)
        #expect(f.responder == "app" && f.cause == "app", "\(f.explanation)")
        #expect(f.explanation.contains("KeyError"))
        #expect(d.notes.contains { $0.contains("ran 160 s behind") })
    }

    @Test(arguments: [0.0, -4.0]) func aClockWithinSecondsStays(skew: Double) throws {
        // A few seconds apart is the correlation's to absorb (a slow endpoint differs as much).
        let (_, notes) = try ingest(Self.logs(skew: skew))
        #expect(!notes.joined().contains("moved by"), "\(notes)")
    }

    @Test func aPeriodicProbeDecidesNothing() throws {
        // One path every 7 s meets a record at every shift that is a multiple of 7 s.
        let (_, notes) = try ingest(Self.logs(skew: -160, paths: { _ in "/healthz" }))
        #expect(!notes.joined().contains("moved by"), "\(notes)")
    }
}
