import Foundation
import GRDB

/// `investigate sources`: what a database holds, one entry per stored file version (skipped
/// files included, with the reason). Field names are part of `sources --json`.
public struct SourceListing: Sendable, Encodable {
    public struct Entry: Sendable, Encodable, Equatable {
        public var id: Int64
        public var path: String
        public var format: String?
        public var status: String
        public var lines: Int
        public var events: Int
        public var rejected: Int
        /// The time span of its events, ISO 8601 UTC.
        public var first: String?
        public var last: String?
        public var sha256: String
        public var size: Int64
        public var compressed: Bool
        /// Why nothing was parsed (skipped files), else nil.
        public var skipped: String?
        /// The version this one extends (a file that grew), else nil.
        public var parent: Int64?
        /// Read for a question's window: the span of time whose records it holds (ISO 8601
        /// UTC), and the lines of records outside it that were read and not stored; nil when
        /// every record is stored.
        public var coveredFrom: String?
        public var coveredTo: String?
        public var outsideLines: Int

        enum CodingKeys: String, CodingKey {
            case id, path, format, status, lines, events, rejected, first, last, sha256, size, compressed, skipped, parent
            case coveredFrom = "covered_from", coveredTo = "covered_to", outsideLines = "outside_lines"
        }
    }

    public var database: String
    public var sources: [Entry]
    /// Sources whose records are in the timeline, and files recorded as skipped.
    public var complete: Int
    public var skipped: Int

    public static func load(_ store: TimelineStore, database: String) throws -> SourceListing {
        let entries = try store.read { db in
            try SourceRecord.fetchAll(db, sql: "SELECT * FROM source ORDER BY path, id").map { s in
                Entry(id: s.id, path: s.path, format: s.format, status: s.status, lines: s.lines, events: s.events, rejected: s.rejected,
                      first: s.firstTime.map(TimeFormat.isoUTC), last: s.lastTime.map(TimeFormat.isoUTC), sha256: s.sha256, size: s.size,
                      compressed: s.compressed, skipped: s.skipped, parent: s.parentId,
                      coveredFrom: s.covered.map { TimeFormat.isoUTC($0.lowerBound) }, coveredTo: s.covered.map { TimeFormat.isoUTC($0.upperBound) },
                      outsideLines: s.outsideLines)
            }
        }
        return SourceListing(database: database, sources: entries, complete: entries.filter { $0.status == "complete" }.count,
                             skipped: entries.filter { $0.status == "skipped" }.count)
    }

    /// A table for the terminal; every path and reason escaped.
    public func render() -> String {
        var out = "Database \(Escape.terminal(database)): \(sources.count) source\(sources.count == 1 ? "" : "s") (\(complete) with records, \(skipped) skipped)\n"
        guard !sources.isEmpty else { return out + "Nothing ingested yet: `investigate ingest PATH…`.\n" }
        func pad(_ s: String, _ n: Int, right: Bool = false) -> String {
            s.count >= n ? s : right ? String(repeating: " ", count: n - s.count) + s : s + String(repeating: " ", count: n - s.count)
        }
        let formatWidth = max(6, sources.map { ($0.format ?? "-").count }.max() ?? 6)
        out += "  " + [pad("ID", 5, right: true), pad("FORMAT", formatWidth), pad("LINES", 9, right: true), pad("EVENTS", 9, right: true),
                      pad("REJECTED", 8, right: true), pad("FIRST", 20), pad("LAST", 20), pad("SHA-256", 12), "PATH"].joined(separator: " ") + "\n"
        for s in sources {
            let first = s.first.map { String($0.prefix(19)) + "Z" } ?? "-", last = s.last.map { String($0.prefix(19)) + "Z" } ?? "-"
            var line = "  " + [pad(String(s.id), 5, right: true), pad(Escape.terminal(s.format ?? "-"), formatWidth), pad(String(s.lines), 9, right: true),
                               pad(String(s.events), 9, right: true), pad(String(s.rejected), 8, right: true), pad(first, 20), pad(last, 20),
                               String(s.sha256.prefix(12)), Escape.terminal(s.path)].joined(separator: " ")
            if let parent = s.parent { line += " (grew from \(parent))" }
            if let from = s.coveredFrom, let to = s.coveredTo {
                line += " (records \(from.prefix(19))Z to \(to.prefix(19))Z only; \(s.outsideLines) lines outside not stored)"
            }
            if s.status != "complete" { line += "  [\(Escape.terminal(s.status)): \(Escape.terminal(s.skipped ?? "no reason recorded"))]" }
            out += line + "\n"
        }
        return out
    }
}
