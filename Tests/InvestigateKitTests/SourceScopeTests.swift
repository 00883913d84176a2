import Foundation
import GRDB
import Testing
@testable import InvestigateKit

/// One case per question: two investigations in one database (the default `./investigate.db` of
/// a folder), their times overlapping, and a question asked with one case's PATH answered from
/// that case's files only.
@Suite(.serialized) struct SourceScopeTests {
    static let edge = FixtureTimelines.root.appendingPathComponent("waf-block-2025-02-06").path
    static let noEdge = FixtureTimelines.root.appendingPathComponent("waf-block-2025-02-06-no-edge-logs").path

    static func found(_ summary: IngestSummary) -> [SourceScope.Found] {
        summary.files.filter { $0.status != .skipped && $0.status != .failed }.map { SourceScope.Found(path: $0.path, sha256: $0.sha256) }
    }

    /// The admin's three 403s at 14:32 JST.
    static func question() -> DiagnosisQuery {
        DiagnosisQuery(at: FixtureTimelines.at("2025-02-06 14:32", "Asia/Tokyo"), zone: ZoneSpec("Asia/Tokyo")!,
                       status: StatusFilter("403"), clientIP: "203.0.113.45")
    }

    @Test func aSecondCaseInTheSameDatabaseIsNotContaminated() throws {
        // The first investigation (with the WAF and ALB logs), then the second in the same database.
        let mixed = try TimelineStore()
        _ = try TimelineUpdate.run(store: mixed, paths: [Self.edge], options: ImportOptions())
        let second = try TimelineUpdate.run(store: mixed, paths: [Self.noEdge], options: ImportOptions()).ingest
        // Its nginx, syslog and app files are byte-identical to the first case's: stored once.
        #expect(second.files.contains { $0.status == .unchanged })

        // Unscoped, the second case's question is answered from the first case's WAF log.
        let contaminated = try Diagnoser(store: mixed).diagnose(Self.question())
        #expect(contaminated.findings.contains { $0.responder == "waf" })

        var q = Self.question()
        q.sources = try SourceScope.resolve(mixed, paths: [Self.noEdge], found: Self.found(second))
        let scope = try #require(q.sources)
        #expect(scope.total == 36 && scope.named == 6 && scope.ids.count == 12)
        let scoped = try Diagnoser(store: mixed).diagnose(q)
        #expect(!scoped.findings.isEmpty)
        #expect(!scoped.findings.contains { $0.responder == "waf" || $0.responder == "alb" })
        #expect(scoped.coverage.allSatisfy { !["waf", "alb"].contains($0.layer) })
        // Every line cited is under the second case's folder, even where the same bytes were first
        // stored under the first case's name.
        let cited = scoped.findings.flatMap(\.evidence).map(\.source)
        #expect(!cited.isEmpty && cited.allSatisfy { $0.hasPrefix(Self.noEdge + "/") })

        // The answer is the one a database holding only the second case gives.
        let alone = try TimelineStore()
        _ = try TimelineUpdate.run(store: alone, paths: [Self.noEdge], options: ImportOptions())
        let reference = try Diagnoser(store: alone).diagnose(Self.question())
        #expect(scoped.outcome == reference.outcome)
        #expect(scoped.findings.map { [$0.responder, $0.cause, $0.confidence.rawValue, $0.rule] }
                == reference.findings.map { [$0.responder, $0.cause, $0.confidence.rawValue, $0.rule] })
        #expect(scoped.findings.map { $0.evidence.map { "\($0.source):\($0.line)" } }
                == reference.findings.map { $0.evidence.map { "\($0.source):\($0.line)" } })
        #expect(scoped.findings.map(\.explanation) == reference.findings.map(\.explanation))

        // The timeline, the export and the report answer from the same files.
        var tq = TimelineQuery(from: q.from, to: q.to)
        tq.sources = scope
        let chains = try TimelineView.build(mixed, tq).chains
        #expect(!chains.isEmpty && chains.allSatisfy { $0.members.allSatisfy { $0.source.hasPrefix(Self.noEdge + "/") } })
        #expect(!chains.contains { $0.layers.contains(.waf) || $0.layers.contains(.alb) })
        var eq = ExportQuery(from: q.from, to: q.to)
        eq.sources = scope
        var layers = Set<Layer>(), files = Set<String>()
        _ = try ExportReader.read(mixed, eq) { layers.insert($0.layer); files.insert($0.source.path) }
        #expect(!layers.isEmpty && layers.isDisjoint(with: [.waf, .alb]))
        #expect(files.allSatisfy { $0.hasPrefix(Self.noEdge + "/") })
        let report = try ReportBuilder(store: mixed).build(scoped, query: q, options: ReportOptions(generatedAt: 0, commandLine: "test"))
        #expect(!report.contains(Self.edge + "/"))
        #expect(report.contains(Self.noEdge + "/"))

        // The first case, asked with its own PATH, still has its WAF answer.
        var first = Self.question()
        first.sources = try SourceScope.resolve(mixed, paths: [Self.edge], found: [])
        #expect(first.sources?.ids.count == 30)
        #expect(try Diagnoser(store: mixed).diagnose(first).findings.contains { $0.responder == "waf" })
    }

    @Test func aSiblingFolderWhoseNameExtendsThePathIsNotUnderIt() {
        #expect(SourceScope.isUnder("/x/waf-block-2025-02-06/var/log/syslog", ["/x/waf-block-2025-02-06"]))
        #expect(!SourceScope.isUnder("/x/waf-block-2025-02-06-no-edge-logs/var/log/syslog", ["/x/waf-block-2025-02-06"]))
        #expect(SourceScope.isUnder("/x/a.log", ["/x/a.log"]))
        #expect(SourceScope.isUnder("/x/a.log", ["/"]))
        #expect(SourceScope.standardised("logs/../logs/./a.log", cwd: "/srv/case") == "/srv/case/logs/a.log")
        #expect(SourceScope.standardised("/srv/case/logs/", cwd: "/") == "/srv/case/logs")
    }

    @Test func aRelativePathAndEveryVersionOfAGrownFile() throws {
        let dir = try TemporaryDirectory(), other = try TemporaryDirectory()
        func line(_ i: Int) -> String {
            "198.51.100.\(i % 200 + 1) - - [06/Feb/2025:05:30:\(String(format: "%02d", i % 60)) +0000] \"GET /x\(i) HTTP/1.1\" 404 5 \"-\" \"curl/8\"\n"
        }
        let log = try dir.write("case/access.log", (0..<10).map(line).joined())
        try other.write("access.log", (100..<110).map(line).joined())
        let store = try TimelineStore()
        _ = try TimelineUpdate.run(store: store, paths: [other.path], options: ImportOptions())
        // The case is ingested, then the file grows and is read again (the CLI test covers paths
        // stored relative to the folder the user ran in).
        let caseDir = dir.url.appendingPathComponent("case").path
        _ = try TimelineUpdate.run(store: store, paths: [caseDir], options: ImportOptions())
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        try handle.seekToEnd()
        try handle.write(contentsOf: Data((10..<15).map(line).joined().utf8))
        try handle.close()
        let grown = try TimelineUpdate.run(store: store, paths: [caseDir], options: ImportOptions()).ingest
        #expect(grown.files.first?.status == .grown)
        let scope = try SourceScope.resolve(store, paths: ["./case/"], found: Self.found(grown), cwd: dir.path)
        #expect(scope.ids.count == 2 && scope.total == 3)
        var q = ExportQuery()
        q.sources = scope
        var n = 0
        _ = try ExportReader.read(store, q) { _ in n += 1 }
        #expect(n == 15)
        // Outside the scope the views are gone: the store writes and reads every source again.
        _ = try TimelineUpdate.run(store: store, paths: [other.path], options: ImportOptions())
        #expect(try store.read { try Int.fetchOne($0, sql: "SELECT count(*) FROM event") } == 25)
        #expect(try store.read { try Int.fetchOne($0, sql: "SELECT count(*) FROM sqlite_temp_master") } == 0)
    }

    @Test func sourcesListsEveryFileWithItsReason() throws {
        let store = try TimelineStore()
        _ = try TimelineUpdate.run(store: store, paths: [Self.noEdge], options: ImportOptions())
        let listing = try SourceListing.load(store, database: "case.db")
        #expect(listing.complete == 6 && listing.skipped == 2)
        let readme = try #require(listing.sources.first { $0.path.hasSuffix("README.md") })
        #expect(readme.status == "skipped" && readme.skipped?.contains("not recognised") == true)
        let syslog = try #require(listing.sources.first { $0.path.hasSuffix("var/log/syslog") })
        #expect(syslog.format == "syslog" && syslog.lines > 0 && syslog.first != nil && syslog.sha256.count == 64)
        let text = listing.render()
        #expect(text.hasPrefix("Database case.db: 8 sources (6 with records, 2 skipped)"))
        #expect(text.contains("[skipped: format not recognised"))
        let json = try JSONSerialization.jsonObject(with: try JSONEncoder().encode(listing)) as? [String: Any]
        #expect((json?["sources"] as? [[String: Any]])?.count == 8)
    }
}

/// The same, as a user runs it: two investigations in one folder and its default database.
@Suite struct SourceScopeCommandTests {
    @Test func theSecondInvestigationInAFolderAnswersFromItsOwnFiles() throws {
        let dir = try TemporaryDirectory()
        let fm = FileManager.default
        try fm.copyItem(atPath: SourceScopeTests.edge, toPath: dir.url.appendingPathComponent("case-a").path)
        try fm.copyItem(atPath: SourceScopeTests.noEdge, toPath: dir.url.appendingPathComponent("case-b").path)
        let ask = ["--at", "2025-02-06 14:32", "--tz", "Asia/Tokyo", "--status", "403", "--ip", "203.0.113.45"]
        guard let a = try CLIRun.investigate(ask + ["case-a"], cwd: dir.path) else { return }
        #expect(a.status == 0)
        #expect(a.out.hasPrefix("Database investigate.db: answering from 30 of 30 sources"))
        #expect(a.out.contains("responder waf"))
        guard let b = try CLIRun.investigate(ask + ["case-b"], cwd: dir.path) else { return }
        #expect(b.status == 0)
        #expect(b.out.hasPrefix("Database investigate.db: answering from 6 of 36 sources, the files under the PATHs given"))
        #expect(!b.out.contains("responder waf") && !b.out.contains("case-a/"))
        #expect(b.out.contains("case-b/var/log/nginx/"))
        // Without PATHs the whole database answers, and says so.
        guard let all = try CLIRun.investigate(ask, cwd: dir.path) else { return }
        #expect(all.out.hasPrefix("Database investigate.db: answering from all 36 sources it holds"))
        // `sources --json`: one document.
        guard let s = try CLIRun.investigate(["sources", "--json"], cwd: dir.path) else { return }
        #expect(s.status == 0)
        let listing = try #require(try JSONSerialization.jsonObject(with: s.outBytes) as? [String: Any])
        #expect(listing["database"] as? String == "investigate.db")
        #expect((listing["sources"] as? [[String: Any]])?.count == 40)
        guard let t = try CLIRun.investigate(["timeline", "--at", "2025-02-06 14:32:10", "--window", "5s", "--tz", "Asia/Tokyo", "case-b"], cwd: dir.path) else { return }
        #expect(t.out.hasPrefix("Database investigate.db: answering from 6 of 36 sources"))
        #expect(!t.out.contains(" waf ") && !t.out.contains(" alb "))
        guard let none = try CLIRun.investigate(["sources", "--db", "missing.db"], cwd: dir.path) else { return }
        #expect(none.status == 3 && !fm.fileExists(atPath: dir.url.appendingPathComponent("missing.db").path))
    }
}
