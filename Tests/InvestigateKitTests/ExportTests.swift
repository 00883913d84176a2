import Foundation
import GRDB
import Testing
@testable import InvestigateKit

/// `investigate export`: every format read back and checked field by field against the timeline,
/// and hostile log content carried through intact or neutralised as docs/export.md says.
@Suite struct ExportTests {
    // MARK: - Helpers

    static func export(_ store: TimelineStore, _ q: ExportQuery, _ format: ExportFormat, bulk: Bool = false) throws -> (bytes: [UInt8], summary: ExportSummary) {
        var bytes: [UInt8] = []
        let summary = try Exporter.run(store, q, writer: format.writer(bulk: bulk)) { bytes += $0 }
        return (bytes, summary)
    }

    static func jsonLines(_ bytes: [UInt8]) throws -> [[String: Any]] {
        #expect(bytes.last == 0x0A)
        return try bytes.split(separator: 0x0A, omittingEmptySubsequences: false).dropLast().map { line in
            try #require(try JSONSerialization.jsonObject(with: Data(line)) as? [String: Any])
        }
    }

    /// RFC 4180: fields separated by commas, records by CRLF; a quoted field may hold commas,
    /// CR, LF and doubled quotes. Strict: a quote inside an unquoted field is an error.
    static func parseCSV(_ bytes: [UInt8]) throws -> [[String]] {
        struct CSVError: Error { var message: String }
        var rows: [[String]] = []
        var row: [String] = []
        var field: [UInt8] = []
        var i = 0
        var quoted = false
        while i < bytes.count {
            let b = bytes[i]
            if quoted {
                if b == 0x22 {
                    if i + 1 < bytes.count, bytes[i + 1] == 0x22 { field.append(0x22); i += 2; continue }
                    quoted = false
                    i += 1
                    guard i == bytes.count || bytes[i] == 0x2C || bytes[i] == 0x0D else { throw CSVError(message: "text after closing quote at \(i)") }
                    continue
                }
                field.append(b)
                i += 1
                continue
            }
            switch b {
            case 0x22:
                guard field.isEmpty else { throw CSVError(message: "quote inside unquoted field at \(i)") }
                quoted = true
            case 0x2C:
                row.append(String(decoding: field, as: UTF8.self)); field = []
            case 0x0D:
                guard i + 1 < bytes.count, bytes[i + 1] == 0x0A else { throw CSVError(message: "CR without LF at \(i)") }
                row.append(String(decoding: field, as: UTF8.self)); field = []
                rows.append(row); row = []
                i += 1
            default:
                field.append(b)
            }
            i += 1
        }
        guard !quoted else { throw CSVError(message: "unterminated quoted field") }
        if !field.isEmpty || !row.isEmpty { row.append(String(decoding: field, as: UTF8.self)); rows.append(row) }
        return rows
    }

    /// A cell as the log wrote it: one leading `'` (the neutraliser) removed.
    static func unneutralised(_ cell: String) -> String { cell.hasPrefix("'") ? String(cell.dropFirst()) : cell }

    static func records(_ csv: [[String]]) -> [[String: String]] {
        guard let header = csv.first else { return [] }
        return csv.dropFirst().map { Dictionary(uniqueKeysWithValues: zip(header, $0.map(unneutralised))) }
    }

    // MARK: - Fixture exports, field by field

    @Test func timesketchLinesHaveTheRequiredFieldsTheParsedOnesAndTheEvidence() throws {
        let store = try FixtureTimelines.store("waf-block-2025-02-06")
        let at = FixtureTimelines.at("2025-02-06 14:32", "Asia/Tokyo")
        let q = ExportQuery(from: at - 120_000_000, to: at + 120_000_000)
        let (bytes, summary) = try Self.export(store, q, .timesketch)
        let lines = try Self.jsonLines(bytes)
        #expect(lines.count == summary.events && summary.events > 100 && summary.leftOut == 0)
        let events = try store.read { db in
            Dictionary(uniqueKeysWithValues: try StoredEvent.fetchAll(db, sql: "SELECT \(StoredEvent.columns) FROM event WHERE time >= ? AND time < ?",
                                                                      arguments: [q.from, q.to]).map { ($0.id, $0) })
        }
        let sources = try store.read { db in Dictionary(uniqueKeysWithValues: try SourceRecord.all(db).map { ($0.id, $0) }) }
        #expect(events.count == lines.count)
        var previous: (Int64, Int64) = (.min, .min)
        for line in lines {
            // Timesketch's three required fields.
            let message = try #require(line["message"] as? String)
            let datetime = try #require(line["datetime"] as? String)
            let desc = try #require(line["timestamp_desc"] as? String)
            #expect(!message.isEmpty && !desc.isEmpty)
            let id = Int64(try #require(line["event_id"] as? Int))
            let e = try #require(events[id])
            let t = try #require(e.event.time)
            #expect(datetime == ExportFields.isoTime(t) && datetime.hasSuffix("+00:00"))
            #expect(UserTime.parse(String(datetime.dropLast(6)), zone: .utc) == t)
            #expect(line["timestamp"] as? Int == Int(t))
            // Time order, then id.
            #expect((t, id) > previous)
            previous = (t, id)
            // The parsed fields and the evidence locator.
            #expect(line["layer"] as? String == e.event.layer.rawValue)
            #expect(line["client_ip"] as? String == e.event.clientIP)
            #expect(line["path"] as? String == e.event.path)
            #expect(line["status"] as? Int == e.event.status)
            #expect(line["waf_rule"] as? String == e.event.wafRule)
            #expect(line["source_line"] as? Int == e.event.line)
            let source = try #require(sources[e.sourceID])
            #expect(line["source_file"] as? String == source.path)
            #expect(line["source_sha256"] as? String == source.sha256)
            #expect(line["original"] as? String == e.text)
            #expect(line["original_base64"] == nil)
            for (k, v) in e.event.extra { #expect(line.contains { $0.key.hasPrefix("extra_") && $0.value as? String == v }, "extra \(k)") }
            switch (e.event.layer, e.event.kind) {
            case (.waf, _): #expect(desc == "Request received")
            case (.nginx, .access), (.alb, .access): #expect(desc == "Response sent")
            case (_, .log): #expect(desc == "Logged" || desc == "Request received")
            default: break
            }
        }
        // The WAF's block of 203.0.113.45 is there with its rule.
        let block = try #require(lines.first { $0["layer"] as? String == "waf" && $0["client_ip"] as? String == "203.0.113.45" && $0["status"] as? Int == 403 })
        #expect(block["waf_action"] as? String == "BLOCK")
        #expect(block["dataset"] as? String == "aws.waf")
        #expect((block["chain_id"] as? Int) != nil)
        // The same query gives the same bytes.
        #expect(try Self.export(store, q, .timesketch).bytes == bytes)
    }

    @Test func ecsDocumentsAreNestedTypedAndNamedAsElasticsIntegrations() throws {
        let store = try FixtureTimelines.store("waf-block-2025-02-06")
        let at = FixtureTimelines.at("2025-02-06 14:32", "Asia/Tokyo")
        let q = ExportQuery(from: at - 60_000_000, to: at + 60_000_000)
        let ecsBytes = try Self.export(store, q, .ecs).bytes
        let docs = try Self.jsonLines(ecsBytes)
        let rawDocs = ecsBytes.split(separator: 0x0A).map { String(decoding: $0, as: UTF8.self) }
        let events = try store.read { db in
            Dictionary(uniqueKeysWithValues: try StoredEvent.fetchAll(db, sql: "SELECT \(StoredEvent.columns) FROM event WHERE time >= ? AND time < ?",
                                                                      arguments: [q.from, q.to]).map { ($0.id, $0) })
        }
        #expect(docs.count == events.count)
        var datasets = Set<String>()
        for (doc, rawDoc) in zip(docs, rawDocs) {
            let inv = try #require(doc["investigate"] as? [String: Any])
            let eventID = try #require(inv["event_id"] as? Int)
            let e = try #require(events[Int64(eventID)])
            #expect(doc["@timestamp"] as? String == ExportFields.isoTimeZ(e.event.time!))
            let event = try #require(doc["event"] as? [String: Any])
            #expect(event["original"] as? String == e.text)
            let dataset = try #require(event["dataset"] as? String)
            datasets.insert(dataset)
            let log = try #require(doc["log"] as? [String: Any])
            #expect((log["file"] as? [String: Any])?["path"] as? String != nil)
            if let status = e.event.status {
                let http = try #require(doc["http"] as? [String: Any])
                #expect((http["response"] as? [String: Any])?["status_code"] as? Int == status)
                // A JSON number, not a string.
                #expect(rawDoc.contains("\"status_code\":\(status)}") || rawDoc.contains("\"status_code\":\(status),"))
            }
            if let path = e.event.path { #expect((doc["url"] as? [String: Any])?["path"] as? String == path) }
            if let ua = e.event.userAgent { #expect((doc["user_agent"] as? [String: Any])?["original"] as? String == ua) }
            if let client = e.event.clientIP { #expect((doc["client"] as? [String: Any])?["ip"] as? String == client) }
            if let d = e.event.duration { #expect(event["duration"] as? Int == Int(d) * 1000) }
            if e.event.kind == .access, e.event.layer == .nginx {
                #expect((doc["source"] as? [String: Any])?["ip"] as? String == e.event.peerIP)
            }
            switch e.event.layer {
            case .waf: #expect(dataset == "aws.waf")
            case .alb: #expect(dataset == "aws.elb_logs")
            case .nginx: #expect(dataset == (e.event.kind == .access ? "nginx.access" : "nginx.error"))
            case .app: #expect(dataset == "python.app")
            default: break
            }
        }
        #expect(datasets.isSuperset(of: ["aws.waf", "aws.elb_logs", "nginx.access", "python.app"]))

        // --bulk: an action line with a stable _id before each document.
        let bulk = try Self.jsonLines(try Self.export(store, q, .ecs, bulk: true).bytes)
        #expect(bulk.count == 2 * docs.count)
        for i in stride(from: 0, to: bulk.count, by: 2) {
            let action = try #require(bulk[i]["create"] as? [String: Any])
            #expect(action["_id"] as? String == (bulk[i + 1]["event"] as? [String: Any])?["id"] as? String)
        }
    }

    @Test func csvReadsBackWithTheSameValuesAsTheJSONExport() throws {
        let store = try FixtureTimelines.store("apigw-bot-scan-2026-01-22")
        let q = ExportQuery()
        let csv = try Self.parseCSV(try Self.export(store, q, .csv).bytes)
        #expect(csv.first == CSVWriter.columns)
        #expect(csv.allSatisfy { $0.count == CSVWriter.columns.count })
        let rows = Self.records(csv)
        let json = try Self.jsonLines(try Self.export(store, q, .timesketch).bytes)
        #expect(rows.count == json.count && !rows.isEmpty)
        for (row, line) in zip(rows, json) {
            for (key, value) in line where !key.hasPrefix("extra_") && key != "data_type" {
                if key == "link_confidence" { #expect(Double(row[key] ?? "") == (value as? NSNumber)?.doubleValue); continue }
                if key == "time_estimated" { #expect(row[key] == "true"); continue }
                let expected = (value as? String) ?? (value as? Int).map(String.init) ?? "?"
                #expect(row[key] == expected, "column \(key)")
            }
        }
    }

    @Test func withDiagnoseEveryRecordOfAFailedRequestCarriesItsVerdict() throws {
        let store = try FixtureTimelines.store("waf-block-2025-02-06")
        let at = FixtureTimelines.at("2025-02-06 14:32", "Asia/Tokyo")
        var q = ExportQuery(from: at - 120_000_000, to: at + 120_000_000)
        q.diagnose = true
        let lines = try Self.jsonLines(try Self.export(store, q, .timesketch).bytes)
        let blocked = lines.filter { $0["client_ip"] as? String == "203.0.113.45" && $0["status"] as? Int == 403 }
        #expect(blocked.count == 6)  // three requests, each logged by the WAF and the ALB
        for line in blocked {
            #expect(line["diagnosis_responder"] as? String == "waf")
            #expect(line["diagnosis_cause"] as? String == "waf")
            #expect(line["diagnosis_confidence"] as? String == "high")
            #expect(line["diagnosis_rule"] as? String == "waf-terminating-action")
        }
        // The same verdicts as `investigate --at` gives for the window.
        let findings = try Diagnoser(store: store).diagnose(DiagnosisQuery(at: at, zone: ZoneSpec("Asia/Tokyo")!)).findings
        let diagnosed = Set(lines.compactMap { l in l["diagnosis_rule"].map { "\(l["diagnosis_responder"] ?? "")/\($0)" } })
        #expect(diagnosed.isSubset(of: Set(findings.map { "\($0.responder)/\($0.rule)" })))
        // Successful requests carry none.
        #expect(lines.filter { ($0["status"] as? Int).map { $0 < 400 } ?? false }.allSatisfy { $0["diagnosis_rule"] == nil })
        let ecs = try Self.jsonLines(try Self.export(store, q, .ecs).bytes)
        #expect(ecs.contains { (($0["investigate"] as? [String: Any])?["diagnosis"] as? [String: Any])?["responder"] as? String == "waf" })
        #expect(CSVWriter.columns.contains("diagnosis_responder"))
    }

    // MARK: - Hostile content

    /// A timeline written directly, so every byte is the test's choice.
    static func hostileStore() throws -> (TimelineStore, [Event], [UInt8]) {
        let store = try TimelineStore()
        var a = Event(time: 1_738_819_930_118_000, layer: .nginx, kind: .access, line: 1,
                      raw: Array("1.2.3.4 \"=cmd|' /C calc'!A0\" \u{1b}[31m".utf8) + [0xFF, 0xFE, 0x00, 0x41])
        a.clientIP = "not-an-ip, 10.0.0.1"
        a.peerIP = "2001:db8::1"
        a.method = "GET"
        a.path = "/a,b\"c\nd\re"
        a.query = "=1+2"
        a.status = 403
        a.userAgent = "=HYPERLINK(\"http://evil.example/\",\"click\")"
        a.host = "@SUM(A1:A9)"
        a.error = "-2+3"
        a.forwardedFor = "\tleading tab"
        a.extra = ["header.x-evil": "\"quoted\", \u{7}bell", "header_x-evil": "second", "'": "'apostrophe"]
        var b = Event(time: 1_738_819_931_000_000, layer: .app, kind: .log, line: 3, raw: Array("+ALERT\r\nline two\u{0}".utf8))
        b.level = "ERROR"
        b.message = "+ALERT\r\nline two\u{0}"
        b.extra = ["k": "\u{202e}reversed"]
        let rejectedRaw: [UInt8] = [0x3D, 0x22, 0xC3, 0x28, 0x2C, 0x0A, 0x80]  // =",<invalid>,\n<invalid>
        try store.write { db in
            try db.execute(sql: "INSERT INTO source (path, sha256, size, format, status, ingested_at) VALUES ('=evil,\"dir\"/access.log', 'aa', 1, 'nginx-access', 'complete', 0)")
            let source = db.lastInsertedRowID
            let writer = try EventWriter(db: db, sourceID: source)
            try writer.insert(a)
            try writer.insert(b)
            try writer.insert(RejectedLine(line: 2, reason: "=unparsable \"line\"", raw: rejectedRaw))
            try db.execute(sql: "UPDATE source SET first_event_id = (SELECT min(id) FROM event), last_event_id = (SELECT max(id) FROM event)")
        }
        return (store, [a, b], rejectedRaw)
    }

    @Test func hostileContentSurvivesTheJSONFormatsExactly() throws {
        let (store, events, rejectedRaw) = try Self.hostileStore()
        var q = ExportQuery()
        q.includeRejected = true
        for format in [ExportFormat.timesketch, .ecs] {
            let (bytes, summary) = try Self.export(store, q, format)
            #expect(summary.events == 2 && summary.rejected == 1)
            // Each record on one line: no raw control byte, newline or invalid UTF-8 leaks out.
            #expect(bytes.split(separator: 0x0A).count == 3)
            #expect(!bytes.contains { $0 < 0x20 && $0 != 0x0A })
            #expect(String(validating: bytes, as: UTF8.self) != nil)
            let lines = try Self.jsonLines(bytes)
            // In time order: the rejected line 2 is dated by line 1's record, after it.
            #expect(lines.count == 3)
            let (a, b) = (lines[0], lines[2])
            let rejected = lines[1]
            if format == .timesketch {
                #expect(a["path"] as? String == events[0].path)
                #expect(a["query"] as? String == events[0].query)
                #expect(a["user_agent"] as? String == events[0].userAgent)
                #expect(a["client_ip"] as? String == events[0].clientIP)
                #expect(a["forwarded_for"] as? String == events[0].forwardedFor)
                #expect(a["extra_header_x_evil"] as? String == "\"quoted\", \u{7}bell")
                #expect(a["extra_header_x_evil_2"] as? String == "second")
                #expect(b["log_message"] as? String == events[1].message)
                #expect(b["extra_k"] as? String == "\u{202e}reversed")
                #expect(rejected["reject_reason"] as? String == "=unparsable \"line\"")
                #expect(rejected["time_estimated"] as? Bool == true)
                #expect(rejected["datetime"] as? String == a["datetime"] as? String)
                #expect(rejected["source_file"] as? String == "=evil,\"dir\"/access.log")
                #expect(Data(base64Encoded: try #require(a["original_base64"] as? String)) == Data(events[0].raw))
                #expect(Data(base64Encoded: try #require(rejected["original_base64"] as? String)) == Data(rejectedRaw))
                #expect(b["original"] as? String == "+ALERT\r\nline two\u{0}" && b["original_base64"] == nil)
            } else {
                let inv = try #require(a["investigate"] as? [String: Any])
                #expect((a["url"] as? [String: Any])?["path"] as? String == events[0].path)
                #expect((a["url"] as? [String: Any])?["query"] as? String == events[0].query)
                #expect((a["user_agent"] as? [String: Any])?["original"] as? String == events[0].userAgent)
                // Not an address: kept as text, never in an `ip` field Elasticsearch would reject.
                #expect(a["client"] == nil)
                #expect((inv["unparsed_ip"] as? [String: Any])?["client_ip"] as? String == events[0].clientIP)
                #expect((a["source"] as? [String: Any])?["ip"] as? String == "2001:db8::1")
                #expect(Data(base64Encoded: try #require(inv["original_base64"] as? String)) == Data(events[0].raw))
                let extra = try #require(inv["extra"] as? [String: Any])
                #expect(extra["header_x_evil"] as? String == "\"quoted\", \u{7}bell" && extra["header_x_evil_2"] as? String == "second")
                #expect(rejected["@timestamp"] as? String == a["@timestamp"] as? String)
                #expect((rejected["event"] as? [String: Any])?["kind"] as? String == "pipeline_error")
                #expect((rejected["error"] as? [String: Any])?["message"] as? String == "=unparsable \"line\"")
                #expect(((b["event"] as? [String: Any])?["original"] as? String) == "+ALERT\r\nline two\u{0}")
            }
        }
    }

    @Test func hostileContentInCSVIsQuotedAndNeverAFormula() throws {
        let (store, events, rejectedRaw) = try Self.hostileStore()
        var q = ExportQuery()
        q.includeRejected = true
        let bytes = try Self.export(store, q, .csv).bytes
        #expect(String(validating: bytes, as: UTF8.self) != nil)
        let csv = try Self.parseCSV(bytes)
        #expect(csv.count == 4 && csv.allSatisfy { $0.count == CSVWriter.columns.count })
        // No cell a spreadsheet would evaluate: every one starting with a trigger carries the quote.
        for row in csv { for cell in row { #expect(!["=", "+", "-", "@", "\t", "\r"].contains { cell.hasPrefix($0) }, "cell \(cell)") } }
        let header = csv[0]
        func cell(_ row: Int, _ name: String) -> String { csv[row][header.firstIndex(of: name)!] }
        #expect(cell(1, "user_agent") == "'" + events[0].userAgent!)
        #expect(cell(1, "query") == "'=1+2")
        #expect(cell(1, "host") == "'@SUM(A1:A9)")
        #expect(cell(1, "error") == "'-2+3")
        #expect(cell(1, "forwarded_for") == "'\tleading tab")
        // Line breaks stay in the quoted cell; a NUL (any control character) is written visibly.
        #expect(cell(3, "log_message") == "'+ALERT\r\nline two\\x00")
        #expect(cell(2, "reject_reason") == "'=unparsable \"line\"")
        #expect(cell(1, "source_file") == "'=evil,\"dir\"/access.log")
        // And undone, every value is the log's own, control characters shown as escapes; the exact
        // bytes are in `original_base64`.
        let rows = Self.records(csv)
        #expect(rows[0]["path"] == events[0].path)
        #expect(rows[0]["user_agent"] == events[0].userAgent)
        #expect(rows[0]["client_ip"] == events[0].clientIP)
        #expect(JSONText.parseFlatObject(rows[0]["extra"] ?? "") == events[0].extra)
        #expect(rows[1]["reject_reason"] == "=unparsable \"line\"")
        #expect(Data(base64Encoded: rows[1]["original_base64"] ?? "") == Data(rejectedRaw))
        #expect(Data(base64Encoded: rows[0]["original_base64"] ?? "") == Data(events[0].raw))
        #expect(rows[2]["log_message"] == events[1].message.map(Escape.dataCell))
        #expect(rows[2]["original"] == "+ALERT\r\nline two\\x00")
        // Escaped in the cell, so its exact bytes are beside it.
        #expect(Data(base64Encoded: rows[2]["original_base64"] ?? "").map { String(decoding: $0, as: UTF8.self) } == "+ALERT\r\nline two\u{0}")
        #expect(CSVWriter.neutralised("'already") == "''already")
        #expect(CSVWriter.neutralised("plain") == "plain")
    }

    @Test func filtersAndTimelessRecords() throws {
        let (store, _, _) = try Self.hostileStore()
        try store.write { db in
            try db.execute(sql: "INSERT INTO source (path, sha256, size, format, status, ingested_at) VALUES ('x.log', 'bb', 1, 'flask', 'complete', 0)")
            let writer = try EventWriter(db: db, sourceID: db.lastInsertedRowID)
            try writer.insert(Event(time: nil, layer: .app, kind: .log, line: 1, raw: Array("no stamp".utf8)))
        }
        // Without a window the timeless record comes last; Timesketch cannot carry it and says so.
        let ts = try Self.export(store, ExportQuery(), .timesketch)
        #expect(ts.summary.events == 3 && ts.summary.timeless == 1 && ts.summary.leftOut == 1)
        #expect(try Self.jsonLines(ts.bytes).count == 2)
        let ecs = try Self.jsonLines(try Self.export(store, ExportQuery(), .ecs).bytes)
        #expect(ecs.count == 3 && ecs.last?["@timestamp"] == nil)
        // A window holds only records with a time.
        #expect(try Self.export(store, ExportQuery(from: 0, to: .max / 2), .ecs).summary.timeless == 0)
        var byLayer = ExportQuery()
        byLayer.layer = .nginx
        byLayer.includeRejected = true
        let nginx = try Self.jsonLines(try Self.export(store, byLayer, .timesketch).bytes)
        #expect(nginx.count == 2 && nginx.allSatisfy { $0["layer"] as? String == "nginx" })
        var byIP = ExportQuery()
        byIP.clientIP = "2001:db8::1"
        byIP.includeRejected = true
        let ip = try Self.export(store, byIP, .timesketch)
        #expect(ip.summary.events == 1 && ip.summary.rejected == 0 && ip.summary.rejectedNotAttributable == 1)
    }
}

/// `investigate export` as a user runs it: the file, the summary on stderr, the exit codes.
@Suite struct ExportCommandTests {
    static let fixture = Corpus.repositoryRoot.appendingPathComponent("Fixtures/incidents/waf-block-2025-02-06").path

    @Test func writesTheFileWholeAndSaysWhatItWrote() throws {
        let dir = try TemporaryDirectory()
        let db = dir.url.appendingPathComponent("x.db").path, out = dir.url.appendingPathComponent("out.csv").path
        guard let r = try CLIRun.investigate(["export", "--db", db, "--format", "csv", "--at", "2025-02-06 14:32", "--window", "1m",
                                              "--tz", "Asia/Tokyo", "-o", out, Self.fixture]) else { return }
        #expect(r.status == 0)
        #expect(r.out.isEmpty)
        #expect(r.err.contains("investigate: exported "))
        #expect(!FileManager.default.fileExists(atPath: out + ".partial"))
        let csv = try ExportTests.parseCSV([UInt8](try Data(contentsOf: URL(fileURLWithPath: out))))
        #expect(csv.first == CSVWriter.columns && csv.count > 10)
        // Standard output, JSON Lines: every line one object.
        guard let s = try CLIRun.investigate(["export", "--db", db, "--format", "timesketch", "--layer", "waf"]) else { return }
        #expect(s.status == 0)
        let lines = try ExportTests.jsonLines([UInt8](s.outBytes))
        #expect(!lines.isEmpty && lines.allSatisfy { $0["layer"] as? String == "waf" })
    }

    @Test func usageErrors() throws {
        let dir = try TemporaryDirectory()
        let db = dir.url.appendingPathComponent("x.db").path
        guard let r = try CLIRun.investigate(["export", "--db", db, "--format", "csv", "--bulk"]) else { return }
        #expect(r.status == 64)
        guard let s = try CLIRun.investigate(["export", "--db", db, "--format", "xml"]) else { return }
        #expect(s.status == 64)
        guard let t = try CLIRun.investigate(["export", "--db", db, "--format", "ecs", "--layer", "mainframe"]) else { return }
        #expect(t.status == 64)
    }
}

extension ExportTests {
    /// A CSV printed to a terminal must not clear it, retitle it or set the clipboard (round 15:
    /// OSC 52, CSI 2J and bidi overrides went out raw, while every other output escaped them).
    @Test func csvCellsShowControlAndInvisibleCharactersAsEscapes() {
        let hostile = "a\u{1b}]52;c;ZXZpbA==\u{07}b\u{1b}[2J\u{202e}rtl\u{2028}sep\u{200b}zw\u{9b}c1"
        let cell = CSVWriter.neutralised(hostile)
        #expect(!cell.unicodeScalars.contains { $0.value < 0x20 || (0x80...0x9F).contains($0.value) || [0x202E, 0x2028, 0x200B].contains($0.value) })
        #expect(cell.contains("\\x1b]52") && cell.contains("\\u{202e}") && cell.contains("\\u{2028}") && cell.contains("\\u{200b}"))
        // Line breaks and tabs are a multi-line message's own, inside the quoted cell.
        #expect(CSVWriter.neutralised("Traceback\nValueError:\tx") == "Traceback\nValueError:\tx")
        // The terminal escapes the invisible characters too now.
        #expect(Escape.terminal("a\u{2029}b\u{feff}c\u{ad}") == "a\\u{2029}b\\u{feff}c\\u{00ad}")
    }
}
