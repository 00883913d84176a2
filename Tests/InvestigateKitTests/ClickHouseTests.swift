import Foundation
import GRDB
import Testing
@testable import InvestigateKit

/// The ClickHouse server the tests use: `INVESTIGATE_CLICKHOUSE_URL` (`.ci/run` starts one and sets
/// it, e.g. clickhouse://127.0.0.1:18123/investigate_ci). Each test works in a database of its own.
/// Without the variable, or with no server answering, these tests are skipped with that message,
/// so `swift test` alone passes on a machine without ClickHouse.
enum ClickHouseTestServer {
    static let configured = ProcessInfo.processInfo.environment["INVESTIGATE_CLICKHOUSE_URL"]

    static let available: Bool = {
        guard let configured, let url = try? ClickHouseURL(configured) else {
            print("ClickHouse tests skipped: INVESTIGATE_CLICKHOUSE_URL is not set (.ci/run starts a server and sets it)")
            return false
        }
        do {
            let version = try ClickHouseClient(url, timeout: 5).version()
            print("ClickHouse tests against \(url.redacted), server version \(version)")
            return true
        } catch {
            print("ClickHouse tests skipped: no server answers at \(url.redacted): \(error)")
            return false
        }
    }()

    /// A client on a fresh database of its own.
    static func client(_ label: String) throws -> ClickHouseClient {
        var url = try ClickHouseURL(configured!)
        url.database = "it_\(label)_\(UUID().uuidString.prefix(8).lowercased())"
        return ClickHouseClient(url)
    }

    static func drop(_ client: ClickHouseClient) {
        _ = try? client.query("DROP DATABASE IF EXISTS \(client.url.database)", database: false)
    }

    static func int(_ client: ClickHouseClient, _ sql: String) throws -> Int {
        Int(String(decoding: try client.query(sql), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)) ?? -1
    }
}

/// What needs no server: the escaping every value travels in, and credentials kept out of output.
@Suite struct ClickHouseFormatTests {
    @Test func everyByteRoundTripsThroughTabSeparated() throws {
        var fields: [[UInt8]] = [Array(0...255), [], Array("\\N".utf8), Array("a\tb\nc\\d\0e'\"".utf8), [0xC3, 0x28, 0xFF, 0x80]]
        fields.append(Array(repeating: 0x5C, count: 7))
        var out: [UInt8] = []
        for (i, f) in fields.enumerated() {
            if i > 0 { out.append(0x09) }
            f.withUnsafeBufferPointer { TabSeparated.appendEscaped($0, to: &out) }
        }
        out.append(0x09)
        TabSeparated.appendNull(to: &out)
        out.append(0x0A)
        let rows = try TabSeparated.parse(out, columns: fields.count + 1)
        #expect(rows.count == 1)
        for (i, f) in fields.enumerated() { #expect(rows[0][i] == f) }
        #expect(rows[0][fields.count] == nil)
    }

    /// The window fetch parses ClickHouse's answer in the pieces the socket delivers: a row, a field
    /// or an escape cut anywhere gives the same rows as the whole answer.
    @Test func rowsCutAnywhereParseTheSame() throws {
        var out: [UInt8] = []
        let fields: [[UInt8]] = [Array("a\\tb".utf8), [0x09, 0x0A, 0x5C, 0x00, 0xFF], Array("\\N".utf8), [], Array("plain text".utf8)]
        for r in 0..<5 {
            for (i, f) in fields.enumerated() {
                if i > 0 { out.append(0x09) }
                if (r + i) % 4 == 0 { TabSeparated.appendNull(to: &out) } else { f.withUnsafeBufferPointer { TabSeparated.appendEscaped($0, to: &out) } }
            }
            out.append(0x0A)
        }
        out += Array("x\\x41\\x7e\ty\\\\\t\\N\t\t-12\n".utf8)  // \x escapes ClickHouse may write
        let whole = try TabSeparated.parse(out, columns: 5)
        #expect(whole.count == 6 && whole[5][0] == Array("xA~".utf8) && whole[5][1] == Array("y\\".utf8) && whole[5][2] == nil)
        for cut in [1, 2, 3, 5, 7, 64] {
            var reader = TabSeparated.Reader(columns: 5)
            var rows: [TabSeparated.Row] = []
            var ints: [Int64?] = []
            try out.withUnsafeBytes { all in
                for start in stride(from: 0, to: all.count, by: cut) {
                    try reader.feed(UnsafeRawBufferPointer(rebasing: all[start..<min(start + cut, all.count)])) { row in
                        rows.append((0..<5).map { row[$0].map(Array.init) })
                        ints.append(row.int(4))
                    }
                }
            }
            try reader.finish()
            #expect(rows == whole, "pieces of \(cut) bytes")
            #expect(ints.last == -12)
        }
        var cutShort = TabSeparated.Reader(columns: 5)
        try out.withUnsafeBytes { try cutShort.feed(UnsafeRawBufferPointer(rebasing: $0[0..<($0.count - 3)])) { _ in } }
        #expect(throws: TabSeparated.Malformed.self) { try cutShort.finish() }
    }

    @Test func theURLNeverShowsThePassword() throws {
        let url = try ClickHouseURL("clickhouse://alice:pa%40ss@db.example:8123/logs", environment: [:])
        #expect(url.user == "alice" && url.password == "pa@ss" && url.host == "db.example" && url.port == 8123 && url.database == "logs")
        #expect(!url.redacted.contains("pa@ss") && !"\(url)".contains("pa"))
        let fromEnv = try ClickHouseURL("clickhouse://127.0.0.1:9/x", environment: ["CLICKHOUSE_USER": "bob", "CLICKHOUSE_PASSWORD": "hunter2"])
        #expect(fromEnv.user == "bob" && fromEnv.password == "hunter2" && !fromEnv.redacted.contains("hunter2"))
        #expect(throws: (any Error).self) { try ClickHouseURL("clickhouse://h:1/bad-name;DROP", environment: [:]) }
        #expect(throws: (any Error).self) { try ClickHouseURL("clickhouse://h:1", environment: [:]) }
        // Unreachable: the error names the server, not the password.
        let client = ClickHouseClient(try ClickHouseURL("clickhouse://u:topsecret@127.0.0.1:9/x", environment: [:]), timeout: 2)
        do { _ = try client.version(); Issue.record("port 9 answered") } catch {
            #expect(!"\(error)".contains("topsecret"))
            #expect((error as? ClickHouseError)?.transient == true)
        }
    }
}

/// docs/clickhouse.md shows the tables exactly as `ingest --store` creates them.
@Suite struct ClickHouseDocTests {
    @Test func theDocumentedDDLIsTheDDLRun() throws {
        let doc = try String(contentsOf: Corpus.repositoryRoot.appendingPathComponent("docs/clickhouse.md"), encoding: .utf8)
        let squeeze = { (s: String) in s.split(whereSeparator: { $0 == " " || $0 == "\n" }).joined(separator: " ") }
        let text = squeeze(doc)
        for statement in ClickHouseSchema.statements(database: "investigate") {
            #expect(text.contains(squeeze(statement)), "docs/clickhouse.md lacks: \(statement.prefix(80))")
        }
    }
}

@Suite(.serialized, .enabled(if: ClickHouseTestServer.available, "no ClickHouse server (set INVESTIGATE_CLICKHOUSE_URL; .ci/run does)"))
struct ClickHouseStoreTests {
    func ingest(_ client: ClickHouseClient, _ paths: [String], batchRows: Int = 50_000) throws -> IngestSummary {
        let ingester = ClickHouseIngester(client: client)
        ingester.batchRows = batchRows
        return try ingester.ingest(paths: paths)
    }

    /// The three fixtures answer the same from ClickHouse as from their files: every diagnosis the
    /// fixture tests ask, compared as JSON, and each fixture's whole span judged request by request.
    @Test(arguments: FixtureTests.names) func fixturesAnswerTheSameFromClickHouse(_ name: String) throws {
        let client = try ClickHouseTestServer.client("fixture")
        defer { ClickHouseTestServer.drop(client) }
        let path = FixtureTimelines.root.appendingPathComponent(name).path
        let summary = try ingest(client, [path], batchRows: 1000)
        #expect(summary.failed.isEmpty)
        let local = try FixtureTimelines.store(name)
        let (lo, hi) = try local.read { db in
            (try Int64.fetchOne(db, sql: "SELECT min(time) FROM event")!, try Int64.fetchOne(db, sql: "SELECT max(time) FROM event")!)
        }
        var questions: [DiagnosisQuery] = [DiagnosisQuery(at: (lo + hi) / 2, halfWindow: (hi - lo) / 2 + 60_000_000)]
        switch name {
        case "waf-block-2025-02-06":
            questions.append(DiagnosisQuery(at: FixtureTimelines.at("2025-02-06 14:32", "Asia/Tokyo"), zone: ZoneSpec("Asia/Tokyo")!, status: .code(403)))
        case "waf-block-2025-02-06-no-edge-logs":
            questions.append(DiagnosisQuery(at: FixtureTimelines.at("2025-02-06 14:32", "Asia/Tokyo"), zone: ZoneSpec("Asia/Tokyo")!,
                                            status: .code(403), clientIP: "203.0.113.45"))
        default:
            questions.append(DiagnosisQuery(at: FixtureTimelines.at("2026-01-22 03:55", "UTC"), zone: .utc))
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        for q in questions {
            let working = try TimelineStore()
            let fetched = try ClickHouseWindow.fetch(client, range: q.from...q.to, into: working)
            #expect(fetched.events > 0)
            let fromFiles = try Diagnoser(store: local).diagnose(q)
            let fromClickHouse = try Diagnoser(store: working).diagnose(q)
            #expect(!fromFiles.findings.isEmpty)
            #expect(String(decoding: try encoder.encode(fromClickHouse), as: UTF8.self)
                    == String(decoding: try encoder.encode(fromFiles), as: UTF8.self), "\(name) at \(q.at)")
        }
        // The whole span: the same events, links and per-request verdicts. Fetched in batches of
        // 97 events and queries of 2 files, so that every fixture's window spans many batches and
        // several queries (each batch is written before the next is read).
        let working = try TimelineStore()
        let spanFetched = try ClickHouseWindow.fetch(client, range: lo...hi, into: working, batchRows: 97, filesPerQuery: 2)
        #expect(spanFetched.events > 97 * 3 && spanFetched.sources > 2)
        let count = { (s: TimelineStore, sql: String) in try s.read { try Int.fetchOne($0, sql: sql) } }
        #expect(try count(working, "SELECT count(*) FROM event") == count(local, "SELECT count(*) FROM event"))
        #expect(try count(working, "SELECT count(*) FROM link") == count(local, "SELECT count(*) FROM link"))
        #expect(try count(working, "SELECT count(*) FROM event WHERE copy_of IS NOT NULL") == count(local, "SELECT count(*) FROM event WHERE copy_of IS NOT NULL"))
        let q = questions[0]
        // Record ids differ (the working set numbers only what it fetched); the verdicts may not.
        let a = try Diagnoser(store: working).judgeEach(q).map { String(decoding: try encoder.encode($0.finding), as: UTF8.self) + " \($0.records.count)" }
        let b = try Diagnoser(store: local).judgeEach(q).map { String(decoding: try encoder.encode($0.finding), as: UTF8.self) + " \($0.records.count)" }
        #expect(a.count == b.count && a.count > 0)
        #expect(a == b, "first difference: \(zip(a, b).first { $0 != $1 }.map { "\($0.0.prefix(300)) ≠ \($0.1.prefix(300))" } ?? "counts")")
        // Stored again: nothing added.
        let again = try ingest(client, [path])
        #expect(again.events == 0)
        #expect(again.files.allSatisfy { $0.status != .ingested })
    }

    /// Quotes, backslashes, tabs, carriage returns, NUL and invalid UTF-8 in records and in rejected
    /// lines come back byte for byte (compared with what a local ingest of the same file stores).
    @Test func hostileBytesRoundTripExactly() throws {
        let client = try ClickHouseTestServer.client("hostile")
        defer { ClickHouseTestServer.drop(client) }
        let dir = try TemporaryDirectory()
        var bytes: [UInt8] = []
        for i in 0..<40 { bytes += Array((IngestPipelineTests.accessLine(i) + "\n").utf8) }
        let nasty: [UInt8] = Array(#"10.1.1.210 - - [06/Feb/2025:14:01:00 +0900] "GET /a'b\"c\\d\te?q=\N&x=%00 HTTP/1.1" 403 12 "-" "curl/8.5.0 \"#.utf8)
            + [0xFF, 0xFE, 0xC3, 0x28, 0x09, 0x0D] + Array("x\\N\" \"203.0.113.9\"\n".utf8)
        bytes += nasty
        bytes += [0x00, 0x01, 0x5C, 0x4E, 0x09, 0x0D, 0xFF, 0x0A]          // a line no importer takes: rejected
        bytes += Array("garbage 'quoted' \\\\ \"dq\" \u{1b}[31m\n".utf8)   // rejected
        let path = try dir.write("access.log", bytes: bytes)
        let summary = try ingest(client, [path])
        let file = try #require(summary.files.first)
        #expect(file.status == .ingested)
        #expect(file.rejected >= 1)

        let local = try TimelineStore()
        _ = try TimelineUpdate.run(store: local, paths: [path], options: ImportOptions())
        let working = try TimelineStore()
        try ClickHouseWindow.fetch(client, range: nil, into: working)
        let events = "SELECT line, time, client_ip, method, path, query, status, user_agent, forwarded_for, extra, raw FROM events ORDER BY line"
        let rejected = "SELECT line, reason, raw FROM rejected_lines ORDER BY line"
        let a = try local.read { try Row.fetchAll($0, sql: events) }, b = try working.read { try Row.fetchAll($0, sql: events) }
        #expect(a.count == 41 && a == b)
        let ra = try local.read { try Row.fetchAll($0, sql: rejected) }, rb = try working.read { try Row.fetchAll($0, sql: rejected) }
        #expect(ra.count == file.rejected && ra == rb)
        // The original bytes of the hostile record, exactly.
        let raw = try working.read { try Data.fetchOne($0, sql: "SELECT raw FROM events WHERE line = 41") }
        #expect(raw.map { [UInt8]($0) } == Array(nasty.dropLast()))
    }

    /// A `source` row another writer left with a digest that is not hex (it would be written back
    /// into the window's queries) stops the question with a message; the process goes on.
    @Test func aMalformedSourceRowIsRefusedNotTrusted() throws {
        let client = try ClickHouseTestServer.client("malformed")
        defer { ClickHouseTestServer.drop(client) }
        let dir = try TemporaryDirectory()
        let path = try dir.write("access.log", (0..<5).map { IngestPipelineTests.accessLine($0) }.joined(separator: "\n") + "\n")
        _ = try ingest(client, [path])
        let db = client.url.database
        _ = try client.query("""
            INSERT INTO \(db).source (sha256, attempt, path, size, compressed, format, content_sha256, content_size, lines, events, rejected,
                first_time, last_time, notes, ingested_by, ingested_at)
            SELECT 'x'') OR 1=1 --', 'a', path, size, compressed, format, content_sha256, content_size, lines, events, rejected,
                first_time, last_time, notes, ingested_by, ingested_at FROM \(db).source LIMIT 1
            """)
        let working = try TimelineStore()
        #expect(throws: ClickHouseURL.Invalid.self) { try ClickHouseWindow.fetch(client, range: nil, into: working) }
    }

    /// The CLI end to end with a password: the answer, the report (which records its command line)
    /// and the errors never show it. Uses the `investigate` user of .ci/clickhouse/users.xml.
    @Test func theCLINeverShowsThePassword() throws {
        let base = try ClickHouseURL(ClickHouseTestServer.configured!)
        let database = "it_cli_\(UUID().uuidString.prefix(8).lowercased())"
        let secret = "s3cr3t-test-pw"
        var withUser = base
        withUser.database = database
        withUser.user = "investigate"
        withUser.password = secret
        let client = ClickHouseClient(withUser)
        guard (try? client.version()) != nil else {
            print("skipped: the server has no `investigate` user (not started from .ci/clickhouse/users.xml)")
            return
        }
        defer { ClickHouseTestServer.drop(client) }
        let store = "clickhouse://investigate:\(secret)@\(base.host):\(base.port)/\(database)"
        let fixture = FixtureTimelines.root.appendingPathComponent("waf-block-2025-02-06").path
        guard let ingest = try CLIRun.investigate(["ingest", "--store", store, fixture]) else { return }
        #expect(ingest.status == 0, "\(ingest.err)")
        let cacheDir = try TemporaryDirectory()
        // Working sets kept in a directory of the test's own (not the user's cache).
        let kept = ["INVESTIGATE_CACHE_DIR": cacheDir.path + "/ws"]
        let runs = [
            try CLIRun.investigate(["--store", store, "--at", "2025-02-06 14:32", "--tz", "Asia/Tokyo", "--status", "403"], environment: kept),
            // The same question again: answered from the working set kept by the first, the same way.
            try CLIRun.investigate(["--store", store, "--at", "2025-02-06 14:32", "--tz", "Asia/Tokyo", "--status", "403"], environment: kept),
            try CLIRun.investigate(["report", "--store=\(store)", "--at", "2025-02-06 14:32", "--tz", "Asia/Tokyo", "--output", "-"],
                                   environment: kept),
            try CLIRun.investigate(["timeline", "--store", "clickhouse://investigate@\(base.host):\(base.port)/\(database)",
                                    "--from", "2025-02-06 14:32", "--to", "2025-02-06 14:33", "--tz", "Asia/Tokyo"],
                                   environment: kept.merging(["CLICKHOUSE_PASSWORD": secret]) { $1 }),
        ].compactMap { $0 }
        for run in runs {
            #expect(run.status == 0, "\(run.err)")
            #expect(!run.out.contains(secret) && !run.err.contains(secret))
        }
        #expect(runs.count == 4 && runs[0].out.contains("203.0.113.45") && runs[2].out.contains("investigate@"))
        #expect(runs[1].out == runs[0].out && runs[1].err.contains("answering from the working set kept then") && !runs[0].err.contains("kept then"))
        // A wrong password: refused at once (exit 3), named as such, and not shown.
        let wrong = "clickhouse://investigate:not-the-pw@\(base.host):\(base.port)/\(database)"
        let started = Date()
        guard let refused = try CLIRun.investigate(["ingest", "--store", wrong, fixture]) else { return }
        #expect(Date().timeIntervalSince(started) < 30)
        #expect(refused.status == 3)
        #expect(refused.err.contains("refused the credentials") && !refused.err.contains("not-the-pw"))
    }

    /// A working set kept for a window is used again only while ClickHouse holds the same committed
    /// files for it: a file stored later (by any machine) whose records meet the window changes the
    /// entry's name, one outside the window does not.
    @Test func aKeptWorkingSetIsNotUsedOnceTheWindowChanges() throws {
        let client = try ClickHouseTestServer.client("cache")
        defer { ClickHouseTestServer.drop(client) }
        let dir = try TemporaryDirectory()
        let first = try dir.write("a/access.log", IngestPipelineTests.accessLog(0..<50))
        let inWindow = try dir.write("b/access.log", IngestPipelineTests.accessLog(20..<60))
        #expect(try ingest(client, [first]).failed.isEmpty)
        let local = try TimelineStore()
        _ = try TimelineUpdate.run(store: local, paths: [first, inWindow], options: ImportOptions())
        let (lo, hi) = try local.read { db in
            (try Int64.fetchOne(db, sql: "SELECT min(time) FROM event")!, try Int64.fetchOne(db, sql: "SELECT max(time) FROM event")!)
        }
        let cache = WorkingSetCache(directory: dir.path + "/cache")
        #expect(cache.prepare())
        let before = cache.path(for: try ClickHouseWindow.plan(client, range: lo...hi), client: client)
        #expect(cache.path(for: try ClickHouseWindow.plan(client, range: lo...hi), client: client) == before)
        // Another window is another entry.
        #expect(cache.path(for: try ClickHouseWindow.plan(client, range: lo...(hi + 1)), client: client) != before)
        // A file whose records lie days away: the window's entry stands.
        let farAway = try dir.write("c/access.log", IngestPipelineTests.accessLog(0..<5).replacingOccurrences(of: "/Feb/2025", with: "/Mar/2025"))
        #expect(try ingest(client, [farAway]).failed.isEmpty)
        #expect(cache.path(for: try ClickHouseWindow.plan(client, range: lo...hi), client: client) == before)
        // A file in the window, stored later: a new entry, fetched afresh.
        #expect(try ingest(client, [inWindow]).failed.isEmpty)
        let plan = try ClickHouseWindow.plan(client, range: lo...hi)
        #expect(cache.path(for: plan, client: client) != before)
        let working = try TimelineStore()
        #expect(try ClickHouseWindow.fetch(client, plan, into: working).sources == 2)
    }

    /// A server error after the answer has begun (HTTP 200 already sent, the error text written into
    /// the body) is reported as ClickHouse's error, not as a malformed row, and no row after it is taken.
    @Test func anErrorMidAnswerIsNamed() throws {
        let client = try ClickHouseTestServer.client("midanswer")
        try client.query("CREATE DATABASE IF NOT EXISTS \(client.url.database)", database: false)
        defer { ClickHouseTestServer.drop(client) }
        var reader = TabSeparated.Reader(columns: 2)
        var rows = 0
        do {
            try client.stream("SELECT toString(number), throwIf(number = 300000) FROM numbers(400000) FORMAT TabSeparated") { piece in
                try reader.feed(piece) { _ in rows += 1 }
            }
            Issue.record("no error")
        } catch let error as ClickHouseError {
            #expect(error.message.contains("failed mid-answer") && error.message.contains("Code: 395"), "\(error.message)")
        }
        #expect(rows > 0 && rows <= 300000)
    }

    /// Two ingests of overlapping file sets at once: each file is read from ClickHouse once, whole.
    @Test func concurrentOverlappingIngestsStoreEachFileOnce() throws {
        let client = try ClickHouseTestServer.client("concurrent")
        defer { ClickHouseTestServer.drop(client) }
        let dir = try TemporaryDirectory()
        var paths: [String] = []
        for f in 0..<6 { paths.append(try dir.write("host\(f)/access.log", IngestPipelineTests.accessLog((f * 1000)..<(f * 1000 + 3000)))) }
        try ClickHouseSchema.create(client)
        let sets = [Array(paths[0..<4]), Array(paths[2..<6])]
        nonisolated(unsafe) var results: [IngestSummary?] = [nil, nil]
        nonisolated(unsafe) var errors: [Error?] = [nil, nil]
        DispatchQueue.concurrentPerform(iterations: 2) { i in
            do {
                let ingester = ClickHouseIngester(client: ClickHouseClient(client.url))
                ingester.batchRows = 700
                results[i] = try ingester.ingest(paths: sets[i])
            } catch { errors[i] = error }
        }
        #expect(errors.allSatisfy { $0 == nil })
        #expect(results.allSatisfy { $0?.failed.isEmpty == true })
        let db = client.url.database
        let canonical = ClickHouseSchema.canonical(db)
        #expect(try ClickHouseTestServer.int(client, "SELECT count() FROM (\(canonical))") == 6)
        #expect(try ClickHouseTestServer.int(client, "SELECT count() FROM \(db).event WHERE (sha256, attempt) IN (\(canonical))") == 6 * 3000)
        let working = try TimelineStore()
        try ClickHouseWindow.fetch(client, range: nil, into: working)
        #expect(try working.read { try Int.fetchOne($0, sql: "SELECT count(*) FROM event") } == 6 * 3000)
        #expect(try working.read { try Int.fetchOne($0, sql: "SELECT count(*) FROM source") } == 6)
        // Each overlapping file was stored by at least one run; the other found it there, lost the
        // race and said so, or committed first and had its copy deleted by the run whose copy is read.
        for p in paths[2..<4] {
            let statuses = results.compactMap { $0?.files.first { $0.path == p }?.status }
            #expect(statuses.count == 2 && statuses.contains(.ingested) && statuses.allSatisfy { $0 == .ingested || $0 == .unchanged },
                    "\(p): \(statuses)")
        }
        // No second copy is left behind once the deletions have run (ClickHouse applies them in the background).
        var left = 0
        for _ in 0..<50 {
            left = try ClickHouseTestServer.int(client, "SELECT count() FROM \(db).source")
            if left == 6 { break }
            Thread.sleep(forTimeInterval: 0.2)
        }
        #expect(left == 6)
    }
}

/// A log that grew, was renamed, compressed or copied since ClickHouse stored it: only its new lines
/// are stored (each line once), its `source` row says what it continues, and the working set
/// answers as a local ingest of the same steps does (`RotationTests` is the local counterpart).
@Suite(.serialized, .enabled(if: ClickHouseTestServer.available, "no ClickHouse server (set INVESTIGATE_CLICKHOUSE_URL; .ci/run does)"))
struct ClickHouseGrownFileTests {
    static func line(_ i: Int) -> String { IngestPipelineTests.accessLine(i, status: i % 17 == 5 ? 403 : 200) }
    static func lines(_ range: Range<Int>) -> String { range.map(line).joined(separator: "\n") + "\n" }

    /// A directory the writer and logrotate change between ingests, each ingest run both into
    /// ClickHouse and into a local timeline.
    final class Logs {
        let dir: TemporaryDirectory
        let client: ClickHouseClient
        let local: TimelineStore
        /// Lines written so far, in any file.
        private(set) var written = 0

        init(_ label: String) throws {
            dir = try TemporaryDirectory()
            client = try ClickHouseTestServer.client(label)
            local = try TimelineStore(path: dir.url.appendingPathComponent("timeline.db").path)
            try FileManager.default.createDirectory(atPath: logs, withIntermediateDirectories: true)
        }

        deinit { ClickHouseTestServer.drop(client) }

        var logs: String { dir.url.appendingPathComponent("nginx").path }
        func path(_ name: String) -> String { logs + "/" + name }

        func append(_ name: String, _ count: Int) throws {
            let text = ClickHouseGrownFileTests.lines(written..<(written + count))
            written += count
            try appendBytes(name, Array(text.utf8))
        }

        private func appendBytes(_ name: String, _ bytes: [UInt8]) throws {
            if !FileManager.default.fileExists(atPath: path(name)) { _ = FileManager.default.createFile(atPath: path(name), contents: nil) }
            let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path(name)))
            try handle.seekToEnd()
            try handle.write(contentsOf: Data(bytes))
            try handle.close()
        }

        /// The writer has written the first `cut` bytes of its next line, not yet its newline.
        func appendHalfLine(_ name: String, cut: Int = 40) throws {
            try appendBytes(name, Array(Array(ClickHouseGrownFileTests.line(written).utf8)[..<cut]))
        }

        /// The writer finishes the line it started.
        func finishHalfLine(_ name: String, cut: Int = 40) throws {
            let text = Array(ClickHouseGrownFileTests.line(written).utf8)
            written += 1
            try appendBytes(name, Array(text[cut...]) + [0x0A])
        }

        func rename(_ from: String, _ to: String) throws { try FileManager.default.moveItem(atPath: path(from), toPath: path(to)) }

        func gzip(_ name: String, keep: Bool = false) throws {
            let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path(name))))
            try Data(GzipInflater.gzip(bytes)).write(to: URL(fileURLWithPath: path(name + ".gz")))
            if !keep { try FileManager.default.removeItem(atPath: path(name)) }
        }

        /// Ingests the directory into ClickHouse and into the local timeline; returns ClickHouse's summary.
        @discardableResult
        func ingest(_ paths: [String]? = nil, sourceLocation: SourceLocation = #_sourceLocation) throws -> IngestSummary {
            let summary = try ClickHouseIngester(client: client).ingest(paths: paths ?? [logs])
            #expect(summary.failed.isEmpty, "\(summary.failed)", sourceLocation: sourceLocation)
            // ClickHouse keeps a rotated file's first name (it does not relocate sources yet): the
            // local reference does too, so the two answer alike.
            var options = ImportOptions()
            options.relocatesRotatedFiles = false
            let localSummary = try TimelineUpdate.run(store: local, paths: paths ?? [logs], options: options).ingest
            #expect(summary.events == localSummary.events, "added to ClickHouse \(summary.events), locally \(localSummary.events)",
                    sourceLocation: sourceLocation)
            try checkEachLineOnce(sourceLocation)
            return summary
        }

        /// ClickHouse's committed events: every line written, each once.
        func checkEachLineOnce(_ location: SourceLocation) throws {
            let db = client.url.database
            let out = try client.query("""
                SELECT count(), uniqExact(raw) FROM \(db).event WHERE (sha256, attempt) IN (\(ClickHouseSchema.canonical(db))) FORMAT TabSeparated
                """)
            let row = try #require(try TabSeparated.parse(out, columns: 2).first, sourceLocation: location)
            #expect(TabSeparated.int(row[0]) == Int64(written) && TabSeparated.int(row[1]) == Int64(written),
                    "ClickHouse holds \(TabSeparated.string(row[0]) ?? "?") events, \(TabSeparated.string(row[1]) ?? "?") distinct; \(written) lines written",
                    sourceLocation: location)
        }

        /// The working set fetched for everything, and for a question's window, answers as the local
        /// timeline does: the same events at the same lines of the same files, the same `source`
        /// rows (a continuation's start line, offset, parent), the same diagnosis and timeline JSON.
        /// Row ids may differ: the working set numbers files as one local ingest of the directory
        /// would (by path), the local timeline in the order the steps stored them.
        /// `legacyHeads`: files stored before `head_sha256` was recorded have none in ClickHouse.
        func checkSameAnswers(legacyHeads: Bool = false, _ location: SourceLocation = #_sourceLocation) throws {
            let working = try TimelineStore()
            try ClickHouseWindow.fetch(client, range: nil, into: working)
            let events = "SELECT s.path, s.sha256, e.line, e.line_end, e.raw FROM events e JOIN source s ON s.id = e.source_id ORDER BY s.path, s.start_line, s.sha256, e.line"
            let a = try local.read { try Row.fetchAll($0, sql: events) }, b = try working.read { try Row.fetchAll($0, sql: events) }
            #expect(a.count == written && a == b, "events differ: \(a.count) local, \(b.count) from ClickHouse", sourceLocation: location)
            // The files with records: a version with no lines of its own has none, and is not fetched.
            let sources = """
                SELECT s.path, s.sha256, s.size, s.compressed, s.format, s.lines, s.events, s.rejected, s.first_time, s.last_time, s.notes,
                       s.content_sha256, s.content_size, \(legacyHeads ? "" : "s.head_sha256, ")s.start_offset, s.start_line, p.sha256 AS parent
                FROM source s LEFT JOIN source p ON p.id = s.parent_id WHERE s.status = 'complete' AND s.first_time IS NOT NULL ORDER BY s.path, s.start_line, s.sha256
                """
            let sa = try local.read { try Row.fetchAll($0, sql: sources) }, sb = try working.read { try Row.fetchAll($0, sql: sources) }
            #expect(sa == sb, "source rows differ:\n\(sa)\n\(sb)", sourceLocation: location)

            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            let at = FixtureTimelines.at("2025-02-06 14:01", "Asia/Tokyo")
            let q = DiagnosisQuery(at: at, zone: ZoneSpec("Asia/Tokyo")!, status: .code(403))
            let window = try TimelineStore()
            try ClickHouseWindow.fetch(client, range: q.from...q.to, into: window)
            let fromFiles = try Diagnoser(store: local).diagnose(q), fromClickHouse = try Diagnoser(store: window).diagnose(q)
            #expect(!fromFiles.findings.isEmpty, sourceLocation: location)
            #expect(String(decoding: try encoder.encode(fromClickHouse), as: UTF8.self) == String(decoding: try encoder.encode(fromFiles), as: UTF8.self),
                    "diagnosis differs", sourceLocation: location)
            let tq = TimelineQuery(from: at - 600_000_000, to: at + 600_000_000)
            // Record ids differ when the window holds part of the timeline; the chains, sources and lines may not.
            let chains = { (s: TimelineStore) in
                try TimelineView.build(s, tq).chains.map { chain in
                    var json = TimelineView.json(chain)
                    json.events = json.events.map { var e = $0; e.id = 0; return e }
                    return String(decoding: try encoder.encode(json), as: UTF8.self)
                }
            }
            let ca = try chains(local), cb = try chains(window)
            #expect(!ca.isEmpty && ca == cb, "timeline differs: \(ca.count) chains local, \(cb.count) from ClickHouse", sourceLocation: location)
        }
    }

    /// A plain log stored, then grown by more lines and stored again: ClickHouse adds only the new
    /// lines, at their true line numbers, and says which file they continue.
    @Test func aGrownLogStoresOnlyItsNewLines() throws {
        let logs = try Logs("grown")
        try logs.append("access.log", 150)
        let first = try logs.ingest()
        #expect(first.files.map(\.status) == [.ingested] && first.events == 150)
        try logs.checkSameAnswers()

        try logs.append("access.log", 90)
        let second = try logs.ingest()
        let grown = try #require(second.files.first)
        #expect(grown.status == .grown && grown.added == 90 && grown.lines == 90)
        #expect(grown.notes.first == "file grew since it was ingested: read only its new lines, from line 151", "\(grown.notes)")
        try logs.checkSameAnswers()
        let db = logs.client.url.database
        let lines = try TabSeparated.parse(logs.client.query("""
            SELECT min(line), max(line) FROM \(db).event WHERE sha256 = \(SQLLiteral.token(try #require(grown.sha256))) FORMAT TabSeparated
            """), columns: 2)
        #expect(lines.first.map { [TabSeparated.int($0[0]), TabSeparated.int($0[1])] } == [151, 240])

        // Unchanged since: nothing to add.
        let third = try logs.ingest()
        #expect(third.events == 0 && third.files.map(\.status) == [.unchanged])
        // Grown again: it continues the longest stored version.
        try logs.append("access.log", 10)
        let fourth = try logs.ingest()
        #expect(fourth.files.first?.notes.first == "file grew since it was ingested: read only its new lines, from line 241")
        try logs.checkSameAnswers()
    }

    /// A question whose window holds only a grown log's new lines: the earlier version's `source` and
    /// per-layer rows come with them (not its events, outside the window), so the answer (evidence at
    /// its true line numbers, the coverage of the whole file) is the local one.
    @Test func aWindowOfOnlyTheNewLinesAnswersAsLocally() throws {
        let logs = try Logs("newonly")
        try logs.append("access.log", 1200)     // 14:00–14:19 (+0900)
        try logs.ingest()
        try logs.append("access.log", 2400)     // 14:20–14:59
        try logs.ingest()
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let q = DiagnosisQuery(at: FixtureTimelines.at("2025-02-06 14:55", "Asia/Tokyo"), halfWindow: 60_000_000,
                               zone: ZoneSpec("Asia/Tokyo")!, status: .code(403))
        let window = try TimelineStore()
        let fetched = try ClickHouseWindow.fetch(logs.client, range: q.from...q.to, into: window)
        #expect(fetched.sources == 2 && fetched.events > 0 && fetched.events < 2400)
        let rows = try window.read { try Row.fetchAll($0, sql: "SELECT id, parent_id, start_line, lines, events FROM source ORDER BY id") }
        #expect(rows.count == 2)
        if rows.count == 2 {
            let parentID: Int64? = rows[1]["parent_id"], firstID: Int64 = rows[0]["id"]
            let starts: [Int] = rows.map { $0["start_line"] }, lines: [Int] = rows.map { $0["lines"] }
            #expect(parentID == firstID && starts == [0, 1200] && lines == [1200, 2400], "\(rows)")
        }
        let fromFiles = try Diagnoser(store: logs.local).diagnose(q), fromClickHouse = try Diagnoser(store: window).diagnose(q)
        #expect(!fromFiles.findings.isEmpty)
        let a = String(decoding: try encoder.encode(fromFiles), as: UTF8.self), b = String(decoding: try encoder.encode(fromClickHouse), as: UTF8.self)
        #expect(a == b, "\(a)\n\(b)")
    }

    /// The same grown log sent by two machines at once: its new lines are stored once.
    @Test func aGrownLogSentByTwoMachinesAtOnceIsStoredOnce() throws {
        let logs = try Logs("grown2")
        try logs.append("access.log", 3000)
        try logs.ingest()
        try logs.append("access.log", 4000)
        nonisolated(unsafe) var results: [IngestSummary?] = [nil, nil]
        DispatchQueue.concurrentPerform(iterations: 2) { i in
            let ingester = ClickHouseIngester(client: ClickHouseClient(logs.client.url))
            ingester.batchRows = 500
            results[i] = try? ingester.ingest(paths: [logs.logs])
        }
        let statuses = results.compactMap { $0?.files.first?.status }
        #expect(statuses.count == 2 && statuses.contains(.grown) && statuses.allSatisfy { $0 == .grown || $0 == .unchanged }, "\(statuses)")
        _ = try TimelineUpdate.run(store: logs.local, paths: [logs.logs], options: ImportOptions())
        try logs.checkEachLineOnce(#_sourceLocation)
        try logs.checkSameAnswers()
    }

    /// A live log caught mid-line: the unfinished line is held back (not stored as a fragment), and
    /// stored whole, at its own number, once the writer has finished it.
    @Test func aLineCaughtMidWriteIsStoredOnceWhole() throws {
        let logs = try Logs("midline")
        try logs.append("access.log", 60)
        try logs.appendHalfLine("access.log")
        let first = try logs.ingest()
        #expect(first.events == 60)
        #expect(first.files.first?.notes.contains { $0.hasPrefix("last line (40 bytes) has no newline yet: held back") } == true,
                "\(first.files)")
        try logs.checkSameAnswers()
        try logs.finishHalfLine("access.log")
        try logs.append("access.log", 9)
        let second = try logs.ingest()
        #expect(second.files.first?.status == .grown && second.events == 10)
        #expect(second.files.first?.notes.first == "file grew since it was ingested: read only its new lines, from line 61")
        try logs.checkSameAnswers()
    }

    /// logrotate: access.log stored; it grows, is renamed access.log.1 beside a new access.log, then
    /// compressed to access.log.1.gz while access.log grows: every line is stored once.
    @Test func logrotateStoresNoLineTwice() throws {
        let logs = try Logs("rotate")
        try logs.append("access.log", 120)
        try logs.ingest()
        try logs.append("access.log", 30)
        try logs.rename("access.log", "access.log.1")
        try logs.append("access.log", 40)
        let rotated = try logs.ingest()
        let renamed = try #require(rotated.files.first { $0.path == logs.path("access.log.1") })
        #expect(renamed.status == .grown && renamed.added == 30, "\(renamed)")
        #expect(renamed.notes.first?.hasPrefix("continues \(logs.path("access.log")) (its first 120 lines are that file's content") == true,
                "\(renamed.notes)")
        #expect(rotated.files.first { $0.path == logs.path("access.log") }?.status == .ingested)
        try logs.checkSameAnswers()

        try logs.gzip("access.log.1")
        try logs.append("access.log", 25)
        let compressed = try logs.ingest()
        let gz = try #require(compressed.files.first { $0.path == logs.path("access.log.1.gz") })
        #expect(gz.status == .unchanged && gz.added == 0, "\(gz)")
        #expect(gz.notes.first == "same content as \(logs.path("access.log.1")) (renamed, copied or compressed, as logrotate does); 0 new lines",
                "\(gz.notes)")
        #expect(compressed.files.first { $0.path == logs.path("access.log") }?.status == .grown)
        #expect(compressed.events == 25)
        try logs.checkSameAnswers()
    }

    /// The same content under another name (a copy, a compressed copy) adds nothing.
    @Test func theSameContentUnderAnotherNameAddsNothing() throws {
        let logs = try Logs("same")
        try logs.append("access.log", 100)
        try logs.ingest()
        try FileManager.default.copyItem(atPath: logs.path("access.log"), toPath: logs.path("copy.log"))
        try logs.gzip("access.log", keep: true)
        let again = try logs.ingest()
        #expect(again.events == 0 && again.rejected == 0)
        let copy = try #require(again.files.first { $0.path == logs.path("copy.log") })
        #expect(copy.status == .unchanged && copy.notes.first?.hasPrefix("already in ClickHouse") == true, "\(copy)")
        let gz = try #require(again.files.first { $0.path == logs.path("access.log.gz") })
        #expect(gz.status == .unchanged && gz.notes.first?.hasPrefix("same content as \(logs.path("access.log"))") == true, "\(gz)")
        // The compressed copy is known by its own bytes now: found at once the next time.
        let third = try logs.ingest()
        #expect(third.files.first { $0.path == logs.path("access.log.gz") }?.notes.first?.hasPrefix("already in ClickHouse") == true)
        try logs.checkSameAnswers()
    }

    /// A database whose `source` table was created before the continuation columns: questions read
    /// it as before, and the next ingest adds the columns and continues its files (found by path);
    /// a compressed copy of a file stored then is found by its content digest and adds nothing.
    @Test func aDatabaseFromTheEarlierSchemaKeepsWorking() throws {
        let logs = try Logs("legacy")
        try logs.append("access.log", 80)
        try logs.ingest()
        let stored = [UInt8](try Data(contentsOf: URL(fileURLWithPath: logs.path("access.log"))))
        let db = logs.client.url.database
        for column in ClickHouseSchema.addedSourceColumns {
            try logs.client.query("ALTER TABLE \(db).source DROP COLUMN \(column.name)")
        }
        #expect(try ClickHouseSchema.missingSourceColumns(logs.client).count == ClickHouseSchema.addedSourceColumns.count)
        try logs.checkSameAnswers(legacyHeads: true)
        try logs.append("access.log", 20)
        let grown = try logs.ingest()
        #expect(grown.files.first?.status == .grown && grown.events == 20, "\(grown.files)")
        #expect(try ClickHouseSchema.missingSourceColumns(logs.client).isEmpty)
        // Migrating again is harmless.
        try ClickHouseSchema.migrate(logs.client)
        try logs.checkSameAnswers(legacyHeads: true)
        // The 80 lines stored by the earlier release, compressed (it recorded no head key for them).
        try Data(GzipInflater.gzip(stored)).write(to: URL(fileURLWithPath: logs.path("access.log.0.gz")))
        let copy = try logs.ingest()
        let gz = try #require(copy.files.first { $0.path == logs.path("access.log.0.gz") })
        #expect(copy.events == 0 && gz.status == .unchanged, "\(gz)")
        #expect(gz.notes == ["same content as \(logs.path("access.log")) (renamed, copied or compressed, as logrotate does); 0 new lines"],
                "\(gz.notes)")
        try logs.checkSameAnswers(legacyHeads: true)
    }
}

/// A server killed mid-ingest and restarted: after a re-run every file is whole or absent. The test
/// runs a ClickHouse of its own (`.ci/clickhouse/server.sh`) so it can kill it; it needs the
/// `clickhouse-server` binary and is skipped without it (or without INVESTIGATE_CLICKHOUSE_URL).
@Suite(.serialized, .enabled(if: ClickHouseTestServer.available && OwnServer.binaryPresent, "no ClickHouse server binary or test server"))
struct ClickHouseCrashTests {
    @Test func aServerKilledMidIngestLeavesEveryFileWholeOrAbsent() throws {
        let server = try OwnServer()
        defer { server.stop() }
        try server.start()
        let url = try ClickHouseURL("clickhouse://127.0.0.1:\(server.port)/crash", environment: [:])
        let client = ClickHouseClient(url, timeout: 10)
        let dir = try TemporaryDirectory()
        var paths: [String] = []
        for f in 0..<4 { paths.append(try dir.write("h\(f)/access.log", IngestPipelineTests.accessLog((f * 20_000)..<(f * 20_000 + 20_000)))) }

        let first = ClickHouseIngester(client: client)
        first.batchRows = 3000
        first.retryBackoff = [0.1, 0.2]
        nonisolated(unsafe) var batches = 0
        first.afterBatch = {
            batches += 1
            if batches == 15 { server.kill() }   // in the second file, with parts of it sent
        }
        let interrupted = try first.ingest(paths: paths)
        let failed = interrupted.failed
        #expect(!failed.isEmpty)
        #expect(failed.contains { ($0.skipped ?? "").contains("not stored") && ($0.skipped ?? "").contains("events") })

        try server.start()
        let db = url.database
        let canonical = ClickHouseSchema.canonical(db)
        // Whatever is committed is whole; the rest is absent to readers.
        let committed = try ClickHouseTestServer.int(client, "SELECT count() FROM (\(canonical))")
        #expect(committed == interrupted.files.filter { $0.status == .ingested }.count)
        #expect(try ClickHouseTestServer.int(client, "SELECT count() FROM \(db).event WHERE (sha256, attempt) IN (\(canonical))") == committed * 20_000)

        let rerun = ClickHouseIngester(client: client)
        rerun.batchRows = 3000
        let second = try rerun.ingest(paths: paths)
        #expect(second.failed.isEmpty)
        #expect(try ClickHouseTestServer.int(client, "SELECT count() FROM (\(canonical))") == 4)
        let working = try TimelineStore()
        try ClickHouseWindow.fetch(client, range: nil, into: working)
        let perSource = try working.read { try Row.fetchAll($0, sql: "SELECT s.path, count(e.id) AS n, s.events FROM source s LEFT JOIN event e ON e.source_id = s.id GROUP BY s.id") }
        #expect(perSource.count == 4)
        for row in perSource { #expect((row["n"] as Int) == 20_000 && (row["events"] as Int) == 20_000, "\(row)") }
    }
}

/// A ClickHouse server this test process starts, kills and restarts on a data directory of its own.
final class OwnServer: @unchecked Sendable {
    static let script = Corpus.repositoryRoot.appendingPathComponent(".ci/clickhouse/server.sh").path
    static var binaryPresent: Bool {
        ["/usr/sbin/clickhouse-server", "/usr/bin/clickhouse-server", "/usr/bin/clickhouse", "/usr/local/bin/clickhouse"]
            .contains { FileManager.default.isExecutableFile(atPath: $0) }
    }

    let dir: String
    let port: Int

    init() throws {
        dir = NSTemporaryDirectory() + "investigate-ch-crash-\(UUID().uuidString)"
        port = 20000 + Int(getpid() % 20000)
    }

    func start() throws {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/bash")
        p.arguments = [Self.script, "start", dir, String(port)]
        p.standardOutput = FileHandle.nullDevice
        try p.run()
        p.waitUntilExit()
        guard p.terminationStatus == 0 else { throw ClickHouseError(message: "test server did not start", transient: false, maybeApplied: false) }
    }

    /// SIGKILL: no clean shutdown, as a crash or a power loss.
    func kill() {
        guard let text = try? String(contentsOfFile: dir + "/pid", encoding: .utf8), let pid = Int32(text.trimmingCharacters(in: .whitespacesAndNewlines)) else { return }
        Foundation.kill(pid, SIGKILL)
        var status: Int32 = 0
        for _ in 0..<100 where Foundation.kill(pid, 0) == 0 { usleep(50_000); _ = waitpid(pid, &status, WNOHANG) }
    }

    func stop() {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/bash")
        p.arguments = [Self.script, "stop", dir]
        try? p.run()
        p.waitUntilExit()
        try? FileManager.default.removeItem(atPath: dir)
    }
}
