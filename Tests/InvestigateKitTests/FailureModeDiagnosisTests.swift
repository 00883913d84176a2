import Foundation
import GRDB
import Testing
@testable import InvestigateKit
import LogSimKit

/// Every failure mode the simulator has, alone, with a random seed (printed, so a failure can be
/// replayed with DIAGNOSIS_SEED), with all logs and with the edge logs left out: the diagnosis of
/// each failed request must agree with the simulator's truth on responder and cause, and name the
/// reason's keyword.
@Suite(.serialized) struct FailureModeDiagnosisTests {
    static let seed: UInt64 = ProcessInfo.processInfo.environment["DIAGNOSIS_SEED"].flatMap(UInt64.init) ?? UInt64.random(in: 1...1_000_000)

    /// Words the explanation must contain for a truth reason (prefix match on the reason).
    static let keywords: [(String, String)] = [
        ("waf-rule", "WAF"), ("worker-timeout", "WORKER TIMEOUT"), ("gunicorn-down", "Connection refused"),
        ("body-too-large", "too large"), ("alb-idle-timeout", "idle timeout"), ("missing-authentication-token", "Missing Authentication Token"),
        ("throttl", "throttl"), ("rate", "WAF"),
    ]

    struct Case: CustomTestStringConvertible {
        var failure: Failure
        var without: Set<LogKind>
        var testDescription: String { failure.rawValue + (without.isEmpty ? "" : " without \(without.map(\.rawValue).sorted().joined(separator: ","))") }
    }

    static let cases: [Case] = Failure.forStack(.edge).flatMap { f in [Case(failure: f, without: []), Case(failure: f, without: [.waf, .alb])] }
        + Failure.forStack(.api).map { Case(failure: $0, without: []) }

    @Test(arguments: cases) func failureModeIsDiagnosedAsTheTruthSays(_ c: Case) throws {
        let stack: Stack = Failure.forStack(.edge).contains(c.failure) ? .edge : .api
        let start = stack == .edge ? SimClock.micros(year: 2025, month: 2, day: 6, hour: 5) : SimClock.micros(year: 2026, month: 1, day: 22, hour: 3)
        let config = SimulationConfig(stack: stack, seed: Self.seed, start: start, requests: 700, rate: 3,
                                      failures: [c.failure], without: c.without, rotation: .none)
        let dir = try TemporaryDirectory()
        _ = try Simulator.run(config, into: dir.url)
        let store = try TimelineStore()
        let outcome = try TimelineUpdate.run(store: store, paths: [dir.path], options: ImportOptions())
        #expect(outcome.ingest.rejected == 0)

        let root = dir.url.standardizedFileURL.path
        let (index, span) = try store.read { db -> ([String: Int64], (Int64, Int64)) in
            var m: [String: Int64] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT e.id, e.line, s.path FROM event e JOIN source s ON s.id = e.source_id WHERE e.copy_of IS NULL") {
                let path = URL(fileURLWithPath: row["path"] as String).standardizedFileURL.path
                m[String(path.dropFirst(root.count + 1)) + ":" + String(row["line"] as Int)] = row["id"]
            }
            return (m, (try Int64.fetchOne(db, sql: "SELECT min(time) FROM event") ?? 0, try Int64.fetchOne(db, sql: "SELECT max(time) FROM event") ?? 0))
        }
        let judged = try Diagnoser(store: store).judgeEach(DiagnosisQuery(at: (span.0 + span.1) / 2, halfWindow: (span.1 - span.0) / 2 + 60_000_000))
        let text = try String(contentsOf: dir.url.appendingPathComponent("truth.jsonl"), encoding: .utf8)
        var failed = 0, agree = 0, ofThisFailure = 0
        var mismatches: [String] = []
        for line in text.split(separator: "\n") {
            guard let t = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                  let status = t["status"] as? Int, status >= 400,
                  let responder = t["responder"] as? String, let cause = t["cause"] as? String else { continue }
            let reason = t["reason"] as? String ?? ""
            let ids = Set((t["records"] as? [[String: Any]] ?? []).compactMap { r in
                (r["file"] as? String).flatMap { f in (r["line"] as? Int).flatMap { index["\(f):\($0)"] } }
            })
            guard !ids.isEmpty else { continue } // left no record in the logs given: only absence can speak
            failed += 1
            let isThisFailure = reason.hasPrefix(c.failure.rawValue) || (c.failure == .flood && reason.contains("rate"))
                || (c.failure == .wafBlock && reason.hasPrefix("waf-rule"))
                || (c.failure == .missingAuthToken && reason == "missing-authentication-token") || (c.failure == .throttling && reason.contains("throttl"))
            if isThisFailure { ofThisFailure += 1 }
            guard let f = judged.first(where: { !$0.records.isDisjoint(with: ids) })?.finding else {
                mismatches.append("\(status) \(responder)/\(cause) (\(reason)): not judged"); continue
            }
            let keyword = Self.keywords.first { reason.hasPrefix($0.0) }?.1
            let keywordOK = keyword.map { f.explanation.localizedCaseInsensitiveContains($0) } ?? true
            // `upstream` is the right name for a layer whose logs were left out.
            let responderOK = f.responder == responder || (f.responder == "upstream" && c.without.map(\.rawValue).contains(responder))
            if responderOK && f.cause == cause && keywordOK { agree += 1 } else {
                mismatches.append("\(status) truth \(responder)/\(cause) (\(reason)) vs \(f.responder)/\(f.cause) by \(f.rule)")
            }
        }
        let share = failed == 0 ? 1 : Double(agree) / Double(failed)
        print("failure mode \(c.testDescription), seed \(Self.seed): \(agree)/\(failed) failed requests agree (\(String(format: "%.1f", share * 100))%), \(ofThisFailure) of this failure")
        for m in Set(mismatches).sorted().prefix(6) { print("  mismatch: \(m)") }
        #expect(share >= 0.95, "seed \(Self.seed)")
    }
}
