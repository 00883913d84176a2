import Foundation
import GRDB
import Testing
@testable import InvestigateKit

/// The bundled incident fixtures, ingested once per test process.
enum FixtureTimelines {
    static let root = Corpus.repositoryRoot.appendingPathComponent("Fixtures/incidents")
    private static let lock = NSLock()
    nonisolated(unsafe) private static var stores: [String: TimelineStore] = [:]

    static func store(_ name: String) throws -> TimelineStore {
        lock.lock(); defer { lock.unlock() }
        if let s = stores[name] { return s }
        let store = try TimelineStore()
        _ = try TimelineUpdate.run(store: store, paths: [root.appendingPathComponent(name).path], options: ImportOptions())
        stores[name] = store
        return store
    }

    static func at(_ text: String, _ zone: String) -> Int64 { UserTime.parse(text, zone: ZoneSpec(zone)!)! }

    struct TruthRequest {
        var status: Int
        var responder: String
        var cause: String
        var reason: String
        var records: [(file: String, line: Int)]
    }

    static func truth(_ name: String) throws -> [TruthRequest] {
        let text = try String(contentsOf: root.appendingPathComponent(name).appendingPathComponent("truth.jsonl"), encoding: .utf8)
        return text.split(separator: "\n").compactMap { line in
            guard let o = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else { return nil }
            let records = (o["records"] as? [[String: Any]] ?? []).compactMap { r -> (String, Int)? in
                guard let f = r["file"] as? String, let l = r["line"] as? Int else { return nil }
                return (f, l)
            }
            return TruthRequest(status: o["status"] as? Int ?? 0, responder: o["responder"] as? String ?? "", cause: o["cause"] as? String ?? "",
                                reason: o["reason"] as? String ?? "", records: records)
        }
    }
}

@Suite(.serialized) struct FixtureTests {
    static let names = ["waf-block-2025-02-06", "waf-block-2025-02-06-no-edge-logs", "apigw-bot-scan-2026-01-22"]

    @Test(arguments: names) func everyLineIsAcceptedAndCorrelationMeetsItsTargets(_ name: String) throws {
        let store = try FixtureTimelines.store(name)
        let rejected = try store.read { try Int.fetchOne($0, sql: "SELECT count(*) FROM rejected") }
        #expect(rejected == 0)
        let dir = FixtureTimelines.root.appendingPathComponent(name)
        let score = try GroundTruthScore.evaluate(store: store, truth: dir.appendingPathComponent("truth.jsonl"), root: dir)
        print("correlation on \(name): \(score)")
        #expect(score.precision >= 0.99, "\(score)")
        #expect(score.recall >= 0.95, "\(score)")
        #expect(score.recordsMissing == 0)
    }

    @Test func wafBlockFixtureNamesTheWafRule() throws {
        let store = try FixtureTimelines.store("waf-block-2025-02-06")
        let q = DiagnosisQuery(at: FixtureTimelines.at("2025-02-06 14:32", "Asia/Tokyo"), zone: ZoneSpec("Asia/Tokyo")!, status: .code(403))
        let d = try Diagnoser(store: store).diagnose(q)
        let user = try #require(d.findings.first { $0.client_ip == "203.0.113.45" })
        #expect(user.responder == "waf" && user.cause == "waf" && user.confidence == .high)
        #expect(user.count == 3)
        #expect(user.explanation.contains("AWS-AWSManagedRulesCommonRuleSet"))
        #expect(user.explanation.contains("GenericRFI_QUERYARGUMENTS"))
        #expect(user.absent.contains { $0.layer == "nginx" && $0.expected })
        #expect(user.evidence.contains { $0.layer == "waf" && $0.text.contains("\"BLOCK\"") })
        // The app's own 403 in the same window stays the app's.
        let member = try #require(d.findings.first { $0.client_ip == "198.51.100.23" })
        #expect(member.responder == "app" && member.cause == "app")
    }

    @Test func withoutEdgeLogsTheAnswerIsUpstreamAndNamesTheLogsToFetch() throws {
        let store = try FixtureTimelines.store("waf-block-2025-02-06-no-edge-logs")
        let q = DiagnosisQuery(at: FixtureTimelines.at("2025-02-06 14:32", "Asia/Tokyo"), zone: ZoneSpec("Asia/Tokyo")!,
                               status: .code(403), clientIP: "203.0.113.45")
        let d = try Diagnoser(store: store).diagnose(q)
        #expect(d.findings.count == 1)
        let f = try #require(d.findings.first)
        #expect(f.responder == "upstream" && f.rule == "absence" && f.confidence == .medium)
        #expect(f.explanation.contains("10.1.1.210"))
        #expect(f.next_steps.contains { $0.contains("WAF") && $0.contains("WAFLogs") })
        #expect(f.next_steps.contains { $0.contains("ALB") && $0.contains("elasticloadbalancing") })
        #expect(!d.coverage.contains { $0.layer == "waf" || $0.layer == "alb" })
    }

    @Test func botScanFixtureIsApiGatewayAndTheScannersAddress() throws {
        let store = try FixtureTimelines.store("apigw-bot-scan-2026-01-22")
        let q = DiagnosisQuery(at: FixtureTimelines.at("2026-01-22 03:55", "UTC"), zone: .utc)
        let d = try Diagnoser(store: store).diagnose(q)
        let scan = try #require(d.findings.first { $0.client_ip == "20.171.207.31" })
        #expect(scan.responder == "apigateway" && scan.cause == "client" && scan.confidence == .high)
        #expect(scan.count == 320)
        #expect(scan.paths.count > 10 && scan.paths.contains { $0.hasSuffix("/aa.php") })
        #expect(scan.explanation.contains("Missing Authentication Token"))
        #expect(scan.absent.contains { $0.layer == "lambda" && $0.expected })
        #expect(d.findings.filter { $0.client_ip == "20.171.207.31" }.count == 1)
    }

    /// Every failed request of every fixture, judged on its own, against the simulator's answer.
    @Test(arguments: names) func responderAndCauseAgreeWithGroundTruth(_ name: String) throws {
        let store = try FixtureTimelines.store(name)
        let truth = try FixtureTimelines.truth(name).filter { $0.status >= 400 }
        let dir = FixtureTimelines.root.appendingPathComponent(name).standardizedFileURL.path
        let (index, span) = try store.read { db -> ([String: Int64], (Int64, Int64)) in
            var m: [String: Int64] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT e.id, e.line, s.path FROM event e JOIN source s ON s.id = e.source_id WHERE e.copy_of IS NULL") {
                let path = URL(fileURLWithPath: row["path"] as String).standardizedFileURL.path
                m[String(path.dropFirst(dir.count + 1)) + ":" + String(row["line"] as Int)] = row["id"]
            }
            let lo = try Int64.fetchOne(db, sql: "SELECT min(time) FROM event") ?? 0
            let hi = try Int64.fetchOne(db, sql: "SELECT max(time) FROM event") ?? 0
            return (m, (lo, hi))
        }
        let q = DiagnosisQuery(at: (span.0 + span.1) / 2, halfWindow: (span.1 - span.0) / 2 + 60_000_000)
        let judged = try Diagnoser(store: store).judgeEach(q)
        var agree = 0, judgedCount = 0, unseen = 0
        var mismatches: [String] = []
        for t in truth {
            let ids = Set(t.records.compactMap { index["\($0.file):\($0.line)"] })
            guard !ids.isEmpty else { unseen += 1; continue } // no log given holds it: only absence can speak
            guard let verdict = judged.first(where: { !$0.records.isDisjoint(with: ids) })?.finding else {
                mismatches.append("\(t.status) \(t.responder)/\(t.cause): not judged"); judgedCount += 1; continue
            }
            judgedCount += 1
            let keywordOK: Bool
            if t.reason.hasPrefix("waf-rule ") {
                let parts = t.reason.dropFirst(9).split(separator: "/")
                keywordOK = parts.allSatisfy { verdict.explanation.contains($0) }
            } else if t.reason == "missing-authentication-token" {
                keywordOK = verdict.explanation.contains("Missing Authentication Token")
            } else { keywordOK = true }
            if verdict.responder == t.responder && verdict.cause == t.cause && keywordOK { agree += 1 } else {
                mismatches.append("\(t.status) truth \(t.responder)/\(t.cause) (\(t.reason)) vs \(verdict.responder)/\(verdict.cause) by \(verdict.rule)")
            }
        }
        let share = judgedCount == 0 ? 1 : Double(agree) / Double(judgedCount)
        print("diagnosis on \(name): \(agree)/\(judgedCount) failed requests agree with the truth (\(String(format: "%.1f", share * 100))%); \(unseen) left no record in the logs given")
        for m in Set(mismatches).sorted().prefix(10) { print("  mismatch: \(m)") }
        #expect(share >= 0.95)
    }
}
