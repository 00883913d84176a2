import Foundation
import GRDB
import Testing
@testable import InvestigateKit

/// Every line is accounted for: each physical line of an input is part of an event, part of a
/// rejected record, or blank (whitespace only, or the punctuation that frames records in a JSON
/// document). A line that is none of these vanished: the failure this suite exists to catch.
@Suite struct LineAccountingTests {
    /// Lines that carry no record: whitespace only, or JSON framing (`{`, `],`, `"events": [`).
    static func isFraming(_ line: [UInt8]) -> Bool {
        let text = String(decoding: line, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        if text.allSatisfy({ "[]{},".contains($0) }) { return true }
        // A key opening or closing a container of records, or a summary object beside them
        // (Logs Insights' `"statistics": {…}`, `"status": "Complete"`).
        return text.range(of: #"^"[A-Za-z@_]+"\s*:\s*([\[{]?\s*[\]}]?|\{[^\[]*\}|"[A-Za-z]+"),?$"#, options: .regularExpression) != nil
    }

    /// Line numbers (1-based) neither in a record nor framing.
    static func unaccounted(_ lines: [[UInt8]], events: [(Int, Int)], rejected: [(Int, Int)]) -> [Int] {
        var covered = Set<Int>()
        for (a, b) in events + rejected where a >= 1 && b >= a { covered.formUnion(a...b) }
        return lines.indices.compactMap { i in covered.contains(i + 1) || isFraming(lines[i]) ? nil : i + 1 }
    }

    static func span(_ r: RejectedLine) -> (Int, Int) { (r.line, r.lineEnd) }

    @Test(arguments: ImporterRegistry.standard.ids)
    func everySampleLineIsAccountedFor(_ id: String) throws {
        let importer = try #require(ImporterRegistry.standard.importer(id: id))
        for sample in importer.samples {
            var lines = sample.lines
            // A whitespace-only line in the middle, as editors and bad writers leave them.
            lines.insert("   \t", at: lines.count / 2)
            let sink = try parse(importer, lines, path: "/var/log/investigate-sample/\(sample.fileName)")
            let missing = Self.unaccounted(lines.map { Array($0.utf8) }, events: sink.events.map { ($0.line, $0.lineEnd) },
                                           rejected: sink.rejected.map(Self.span))
            // Lines the parser declared as framing (a CSV header) may be among them, no more.
            #expect(missing.count <= sink.framingLines, "\(id) \(sample.fileName): lines \(missing) vanished: \(missing.map { lines[$0 - 1].prefix(80) })")
        }
    }

    /// nginx's error log with whitespace-only lines: counted and said, not silently gone.
    @Test func blankLinesOfAFileAreCountedInItsNotes() throws {
        let dir = try TemporaryDirectory()
        let record = { (n: Int) in
            "2025/02/06 05:32:1\(n) [error] 812#812: *\(n) connect() failed (111: Connection refused) while connecting to upstream, client: 10.1.1.210, server: example.com, request: \"GET / HTTP/1.1\", upstream: \"http://127.0.0.1:8000/\", host: \"example.com\""
        }
        try dir.write("error.log", [record(0), "   ", "\t", record(1), ""].joined(separator: "\n") + "\n")
        let store = try TimelineStore()
        let outcome = try TimelineUpdate.run(store: store, paths: [dir.path], options: ImportOptions())
        let file = try #require(outcome.ingest.files.first)
        #expect(file.lines == 5 && file.events == 2 && file.rejected == 0)
        #expect(file.notes.contains("3 blank lines (empty or whitespace only), no record in them"), "\(file.notes)")
    }

    @Test(.enabled(if: Corpus.available)) func everyCorpusLineIsAccountedFor() throws {
        let files = try FileManager.default.subpathsOfDirectory(atPath: Corpus.root.path).sorted()
            .filter { !$0.hasSuffix(".md") && !FileManager.default.isDirectory(Corpus.path($0)) }
        let dir = try TemporaryDirectory()
        let store = try TimelineStore(path: dir.url.appendingPathComponent("c.db").path)
        _ = try TimelineUpdate.run(store: store, paths: files.map(Corpus.path), options: ImportOptions())
        var report: [String] = []
        for file in files {
            let path = Corpus.path(file)
            guard let source = try store.read({ db in try Row.fetchOne(db, sql: "SELECT id, format, lines FROM source WHERE path = ? AND status = 'complete'", arguments: [path]) }) else {
                report.append("\(file): not ingested")
                continue
            }
            let id: Int64 = source["id"]
            let (events, rejected) = try store.read { db -> ([(Int, Int)], [(Int, Int)]) in
                (try Row.fetchAll(db, sql: "SELECT line, line_end FROM event WHERE source_id = ?", arguments: [id]).map { ($0["line"], $0["line_end"]) },
                 try Row.fetchAll(db, sql: "SELECT line, raw FROM rejected_lines WHERE source_id = ?", arguments: [id]).map {
                    let raw: Data = $0["raw"]; let line: Int = $0["line"]
                    return (line, line + raw.filter { $0 == 0x0A }.count)
                 })
            }
            let bytes = try Gzip.isGzip(path) ? GzipInflater.gunzip(Array(Data(contentsOf: URL(fileURLWithPath: path)))) : Array(Data(contentsOf: URL(fileURLWithPath: path)))
            var lines = bytes.split(separator: 0x0A, omittingEmptySubsequences: false).map(Array.init)
            if lines.last?.isEmpty ?? false { lines.removeLast() } else if try !Gzip.isGzip(path), !lines.isEmpty {
                // A plain file's unterminated last line is held back (its writer may be mid-line),
                // and the file's notes say so: accounted for, not vanished.
                // (Formats no process appends to on a host, AWS deliveries, are read whole instead.)
                let notes: String = try store.read { db in try String.fetchOne(db, sql: "SELECT notes FROM source WHERE id = ?", arguments: [id]) } ?? ""
                if notes.contains("held back") { lines.removeLast() }
            }
            let missing = Self.unaccounted(lines, events: events, rejected: rejected)
            report.append("\(file) [\(source["format"] as String? ?? "-")]: \(lines.count) lines, \(events.count) events, \(rejected.count) rejected, \(missing.count) unaccounted")
            #expect(missing.isEmpty, "\(file): lines \(missing.prefix(10)) vanished: \(missing.prefix(3).map { String(decoding: lines[$0 - 1].prefix(80), as: UTF8.self) })")
        }
        print("line accounting over the corpus:\n  " + report.joined(separator: "\n  "))
    }
}

private extension FileManager {
    func isDirectory(_ path: String) -> Bool {
        var d: ObjCBool = false
        return fileExists(atPath: path, isDirectory: &d) && d.boolValue
    }
}

private enum Gzip {
    static func isGzip(_ path: String) throws -> Bool {
        let h = try FileHandle(forReadingFrom: URL(fileURLWithPath: path))
        defer { try? h.close() }
        let b = h.readData(ofLength: 2)
        return b.count == 2 && b[b.startIndex] == 0x1F && b[b.startIndex + 1] == 0x8B
    }
}
