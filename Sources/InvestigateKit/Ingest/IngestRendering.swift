import Foundation

extension IngestSummary {
    /// The human table of `investigate ingest`: one row per file, then totals. Paths and reasons are
    /// escaped (a file name is attacker-controlled too).
    public func renderTable(zone: ZoneSpec) -> String {
        var rows: [[String]] = [["FILE", "FORMAT", "LINES", "EVENTS", "REJECTED", "FIRST", "LAST", "STATUS"]]
        for f in files {
            let status: String
            switch f.status {
            case .ingested: status = "ingested"
            case .grown: status = "grown (+\(f.added))"
            case .unchanged: status = "unchanged"
            case .skipped: status = "skipped: " + (f.skipped ?? "")
            case .failed: status = "FAILED: " + (f.skipped ?? "")
            }
            rows.append([
                Escape.terminal(f.path), f.format ?? "-", String(f.lines), String(f.events), String(f.rejected),
                f.first.map { TimeFormat.display($0, zone: zone, millis: false) } ?? "-",
                f.last.map { TimeFormat.display($0, zone: zone, millis: false) } ?? "-",
                Escape.terminal(status),
            ])
        }
        let totalLines = files.reduce(0) { $0 + $1.lines }
        rows.append(["TOTAL (\(files.count) files)", "", String(totalLines), "+\(events)", "+\(rejected)", "", "", ""])
        var out = TextTable.render(rows, rightAligned: [2, 3, 4])
        let notes = files.flatMap { f in f.notes.map { "  \(Escape.terminal(f.path)): \(Escape.terminal($0))" } }
        if !notes.isEmpty { out += "\nNotes:\n" + notes.joined(separator: "\n") + "\n" }
        if rejected > 0 {
            out += "\n\(rejected) line(s) were rejected and kept with their reasons: SELECT * FROM rejected_lines;\n"
        }
        return out
    }
}

/// Plain aligned columns for terminals.
public enum TextTable {
    public static func render(_ rows: [[String]], rightAligned: Set<Int> = []) -> String {
        guard let width = rows.map(\.count).max() else { return "" }
        var widths = [Int](repeating: 0, count: width)
        for row in rows { for (i, cell) in row.enumerated() { widths[i] = max(widths[i], cell.count) } }
        var out = ""
        for row in rows {
            var line = ""
            for (i, cell) in row.enumerated() {
                let pad = String(repeating: " ", count: widths[i] - cell.count)
                let isLast = i == row.count - 1
                line += rightAligned.contains(i) ? pad + cell : (isLast ? cell : cell + pad)
                if !isLast { line += "  " }
            }
            while line.hasSuffix(" ") { line.removeLast() }
            out += line + "\n"
        }
        return out
    }
}
