/// ClickHouse's TabSeparated format, both ways. Every value a log supplies travels in it (never
/// spliced into SQL): a ClickHouse `String` is a byte string, and TabSeparated carries any byte once
/// backslash, tab, newline, carriage return, NUL, backspace and form feed are escaped, so a
/// record's original bytes (invalid UTF-8 included) round-trip exactly without base64.
/// `\N` is NULL (a value that is literally `\N` is written `\\N`).
enum TabSeparated {
    /// Appends `bytes` escaped as one TabSeparated field.
    @inline(__always)
    static func appendEscaped(_ bytes: UnsafeBufferPointer<UInt8>, to out: inout [UInt8]) {
        var plain = true
        for b in bytes where b == 0x5C || b < 0x20 { plain = false; break }
        if plain { out.append(contentsOf: bytes); return }
        for b in bytes {
            switch b {
            case 0x5C: out.append(0x5C); out.append(0x5C)
            case 0x09: out.append(0x5C); out.append(0x74)
            case 0x0A: out.append(0x5C); out.append(0x6E)
            case 0x0D: out.append(0x5C); out.append(0x72)
            case 0x00: out.append(0x5C); out.append(0x30)
            case 0x08: out.append(0x5C); out.append(0x62)
            case 0x0C: out.append(0x5C); out.append(0x66)
            default: out.append(b)
            }
        }
    }

    static func appendEscaped(_ text: String, to out: inout [UInt8]) {
        var t = text
        t.withUTF8 { appendEscaped($0, to: &out) }
    }

    static func appendNull(to out: inout [UInt8]) { out.append(0x5C); out.append(0x4E) }

    static func append(_ value: Int64?, to out: inout [UInt8]) {
        if let value { out.append(contentsOf: String(value).utf8) } else { appendNull(to: &out) }
    }

    static func append(_ value: String?, to out: inout [UInt8]) {
        if let value { appendEscaped(value, to: &out) } else { appendNull(to: &out) }
    }

    /// One parsed row: each field's unescaped bytes, nil for `\N`.
    typealias Row = [[UInt8]?]

    struct Malformed: Error, CustomStringConvertible {
        var description: String
    }

    /// Splits ClickHouse TabSeparated output into rows of unescaped fields.
    static func parse(_ data: [UInt8], columns: Int) throws -> [Row] {
        var rows: [Row] = []
        var row: Row = []
        row.reserveCapacity(columns)
        var field: [UInt8] = []
        var isNull = false
        var i = 0
        let n = data.count
        func endField() {
            row.append(isNull ? nil : field)
            field.removeAll(keepingCapacity: true)
            isNull = false
        }
        while i < n {
            let b = data[i]
            switch b {
            case 0x09:
                endField()
                i += 1
            case 0x0A:
                endField()
                guard row.count == columns else { throw Malformed(description: "ClickHouse returned a row of \(row.count) fields, expected \(columns)") }
                rows.append(row)
                row = []
                row.reserveCapacity(columns)
                i += 1
            case 0x5C:
                guard i + 1 < n else { throw Malformed(description: "ClickHouse output ends inside an escape") }
                let e = data[i + 1]
                i += 2
                switch e {
                case 0x4E: isNull = true
                case 0x74: field.append(0x09)
                case 0x6E: field.append(0x0A)
                case 0x72: field.append(0x0D)
                case 0x30: field.append(0x00)
                case 0x62: field.append(0x08)
                case 0x66: field.append(0x0C)
                case 0x61: field.append(0x07)
                case 0x76: field.append(0x0B)
                case 0x78:
                    guard i + 1 < n, let h = hex(data[i]), let l = hex(data[i + 1]) else { throw Malformed(description: "bad \\x escape in ClickHouse output") }
                    field.append(h << 4 | l)
                    i += 2
                default: field.append(e)  // \\ \' and any other escaped byte stand for themselves
                }
            default:
                field.append(b)
                i += 1
            }
        }
        guard row.isEmpty && field.isEmpty else { throw Malformed(description: "ClickHouse output ends inside a row") }
        return rows
    }

    private static func hex(_ c: UInt8) -> UInt8? {
        switch c {
        case 0x30...0x39: return c - 0x30
        case 0x61...0x66: return c - 0x61 + 10
        case 0x41...0x46: return c - 0x41 + 10
        default: return nil
        }
    }

    static func string(_ field: [UInt8]?) -> String? { field.map { String(decoding: $0, as: UTF8.self) } }

    static func int(_ field: [UInt8]?) -> Int64? {
        guard let field else { return nil }
        return Int64(String(decoding: field, as: UTF8.self))
    }
}

/// SQL literals for the few values a query names (a SHA-256 in hex, an attempt id, a time): each
/// is checked to be what it claims before it is written, so no log text ever reaches SQL.
enum SQLLiteral {
    /// A lowercase hex digest or a generated attempt id (hex and `-`): quoted after checking.
    static func token(_ s: String) -> String {
        precondition(!s.isEmpty && s.utf8.allSatisfy { ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x61 && $0 <= 0x66) || $0 == 0x2D },
                     "not a hex token")
        return "'\(s)'"
    }
}
