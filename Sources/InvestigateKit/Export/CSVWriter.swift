import Foundation

/// CSV (RFC 4180): a header row, CRLF between records, every field quoted (`"` doubled inside), so
/// commas, quotes and line breaks in log text stay inside their cell. A spreadsheet must never run
/// log text as a formula: a cell beginning with `=`, `+`, `-`, `@`, a tab or a carriage return
/// (OWASP's CSV-injection list), or with `'` (so the rule can be undone), gets a leading `'`.
/// Control characters other than line breaks and tabs, bidi overrides and invisible characters are
/// written as visible escapes (`\x1b`, `\u{202e}`), as on the terminal.
/// Reading a cell back: drop one leading `'`. The columns are Timesketch's CSV importer's too.
public struct CSVWriter: ExportWriter {
    public init() {}

    /// The columns, in order: the flat fields every record has a place for, and `extra` as one
    /// JSON object (keys sorted).
    public static let columns: [String] = {
        let probe = ExportRecord(kind: .rejected, rowID: 0, time: nil, layer: .system, event: nil, extraText: nil, copyOf: nil,
                                 reason: nil, raw: [], source: .init(id: 0, path: "", sha256: "", format: nil, firstEventID: nil),
                                 line: 0, lineEnd: 0, chainID: nil, linkKey: nil, linkConfidence: nil)
        var names = ExportFields.flat(probe).map(\.0)
        let extraAt = names.firstIndex(of: "chain_id") ?? names.count
        names.insert("extra", at: extraAt)
        return names
    }()

    public func header() -> [UInt8] {
        var out: [UInt8] = []
        appendRow(Self.columns, to: &out)
        return out
    }

    public func write(_ r: ExportRecord, into out: inout [UInt8]) -> Bool {
        var values: [String: String] = [:]
        for (key, value) in ExportFields.flat(r) { if let value { values[key] = value.csv } }
        if let e = r.event, !e.extra.isEmpty { values["extra"] = JSONText.object(e.extra) }
        if let text = r.extraText { values["extra"] = text }
        // The cell shows control characters as escapes: the exact bytes then go beside it.
        if values["original_base64"] == nil, let original = values["original"], Escape.dataCell(original) != original {
            values["original_base64"] = Data(r.raw).base64EncodedString()
        }
        appendRow(Self.columns.map { values[$0] ?? "" }, to: &out)
        return true
    }

    private func appendRow(_ cells: [String], to out: inout [UInt8]) {
        for (i, cell) in cells.enumerated() {
            if i > 0 { out.append(0x2C) }
            Self.appendCell(cell, to: &out)
        }
        out.append(0x0D)
        out.append(0x0A)
    }

    /// Characters that make a spreadsheet read a cell as a formula (and `'`, the escape itself).
    static let formulaStarts: Set<UInt8> = [0x3D, 0x2B, 0x2D, 0x40, 0x09, 0x0D, 0x27]

    static func appendCell(_ raw: String, to out: inout [UInt8]) {
        // Control characters, bidi overrides and invisible characters of log text are written as
        // visible escapes (`\x1b`, `\u{202e}`), as every other output writes them: a CSV file
        // printed to a terminal must not move the cursor, set the clipboard or reorder text.
        let cell = Escape.dataCell(raw)
        out.append(0x22)
        if let first = cell.utf8.first, formulaStarts.contains(first) { out.append(0x27) }
        for b in cell.utf8 {
            if b == 0x22 { out.append(0x22) }
            out.append(b)
        }
        out.append(0x22)
    }

    /// The cell as a spreadsheet-safe string (tests, docs).
    public static func neutralised(_ cell: String) -> String {
        var out: [UInt8] = []
        appendCell(cell, to: &out)
        return String(decoding: out.dropFirst().dropLast(), as: UTF8.self).replacingOccurrences(of: "\"\"", with: "\"")
    }
}
