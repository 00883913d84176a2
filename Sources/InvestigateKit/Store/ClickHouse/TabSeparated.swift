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

    /// Splits ClickHouse TabSeparated output into rows of unescaped fields (small answers: the
    /// window's events are read with `Reader`, row by row).
    static func parse(_ data: [UInt8], columns: Int) throws -> [Row] {
        var rows: [Row] = []
        var reader = Reader(columns: columns)
        try data.withUnsafeBytes { bytes in
            try reader.feed(bytes) { fields in rows.append((0..<columns).map { fields[$0].map(Array.init) }) }
        }
        try reader.finish()
        return rows
    }

    /// One row read by `Reader`: its fields' unescaped bytes, valid only during the call it is
    /// handed to.
    struct Fields {
        let bytes: UnsafeBufferPointer<UInt8>
        let ends: UnsafeBufferPointer<Int>
        let nulls: UnsafeBufferPointer<Bool>

        /// Field `i`'s bytes, nil for `\N`.
        @inline(__always)
        subscript(_ i: Int) -> UnsafeBufferPointer<UInt8>? {
            if nulls[i] { return nil }
            let start = i == 0 ? 0 : ends[i - 1]
            return UnsafeBufferPointer(rebasing: bytes[start..<ends[i]])
        }

        func string(_ i: Int) -> String? { self[i].map { String(decoding: $0, as: UTF8.self) } }

        /// Field `i` as a decimal integer; nil for `\N` or anything else.
        @inline(__always)
        func int(_ i: Int) -> Int64? {
            guard let field = self[i], !field.isEmpty else { return nil }
            var negative = false
            var k = 0
            if field[0] == 0x2D { negative = true; k = 1 }
            guard k < field.count else { return nil }
            var value: Int64 = 0
            while k < field.count {
                let d = field[k] &- 0x30
                guard d < 10 else { return nil }
                let (m, o1) = value.multipliedReportingOverflow(by: 10)
                let (a, o2) = negative ? m.subtractingReportingOverflow(Int64(d)) : m.addingReportingOverflow(Int64(d))
                guard !o1 && !o2 else { return nil }
                value = a
                k += 1
            }
            return value
        }
    }

    /// Reads TabSeparated output in pieces of any size (a row, a field or an escape may be cut
    /// anywhere) and hands each complete row to the caller: memory is one row, whatever the answer.
    struct Reader {
        let columns: Int
        private var bytes: [UInt8] = []
        private var ends: [Int] = []
        private var nulls: [Bool] = []
        private var isNull = false
        /// 0: plain; 1: after `\`; 2: after `\x`; 3: after `\x` and one hex digit (in `high`).
        private var escape = 0
        private var high: UInt8 = 0

        init(columns: Int) {
            self.columns = columns
            ends.reserveCapacity(columns)
            nulls.reserveCapacity(columns)
        }

        private mutating func endField() {
            ends.append(bytes.count)
            nulls.append(isNull)
            isNull = false
        }

        mutating func feed(_ piece: UnsafeRawBufferPointer, row: (Fields) throws -> Void) throws {
            let data = piece.bindMemory(to: UInt8.self)
            let n = data.count
            var i = 0
            while i < n {
                if escape != 0 {
                    let e = data[i]
                    i += 1
                    switch escape {
                    case 1:
                        escape = 0
                        switch e {
                        case 0x4E: isNull = true
                        case 0x74: bytes.append(0x09)
                        case 0x6E: bytes.append(0x0A)
                        case 0x72: bytes.append(0x0D)
                        case 0x30: bytes.append(0x00)
                        case 0x62: bytes.append(0x08)
                        case 0x66: bytes.append(0x0C)
                        case 0x61: bytes.append(0x07)
                        case 0x76: bytes.append(0x0B)
                        case 0x78: escape = 2
                        default: bytes.append(e)  // \\ \' and any other escaped byte stand for themselves
                        }
                    case 2:
                        guard let h = TabSeparated.hex(e) else { throw Malformed(description: "bad \\x escape in ClickHouse output") }
                        high = h
                        escape = 3
                    default:
                        guard let l = TabSeparated.hex(e) else { throw Malformed(description: "bad \\x escape in ClickHouse output") }
                        bytes.append(high << 4 | l)
                        escape = 0
                    }
                    continue
                }
                // A run of plain bytes is copied at once.
                var j = i
                while j < n {
                    let b = data[j]
                    if b == 0x09 || b == 0x0A || b == 0x5C { break }
                    j += 1
                }
                if j > i { bytes.append(contentsOf: UnsafeBufferPointer(rebasing: data[i..<j])) }
                i = j
                guard i < n else { break }
                let b = data[i]
                i += 1
                switch b {
                case 0x09:
                    endField()
                case 0x0A:
                    endField()
                    guard ends.count == columns else {
                        throw Malformed(description: "ClickHouse returned a row of \(ends.count) fields, expected \(columns)")
                    }
                    try bytes.withUnsafeBufferPointer { b in
                        try ends.withUnsafeBufferPointer { e in
                            try nulls.withUnsafeBufferPointer { z in try row(Fields(bytes: b, ends: e, nulls: z)) }
                        }
                    }
                    bytes.removeAll(keepingCapacity: true)
                    ends.removeAll(keepingCapacity: true)
                    nulls.removeAll(keepingCapacity: true)
                default:
                    escape = 1
                }
            }
        }

        /// Throws unless the output ended at the end of a row.
        func finish() throws {
            guard escape == 0 && bytes.isEmpty && ends.isEmpty && !isNull else {
                throw Malformed(description: "ClickHouse output ends inside a row")
            }
        }
    }

    fileprivate static func hex(_ c: UInt8) -> UInt8? {
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
    /// Whether `s` is a lowercase hex digest or a generated attempt id (hex and `-`).
    static func isToken(_ s: String) -> Bool {
        !s.isEmpty && s.utf8.allSatisfy { ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x61 && $0 <= 0x66) || $0 == 0x2D }
    }

    /// A token (`isToken`), quoted. Values read back from the server are checked with `isToken`
    /// first (a table anyone can write to is input); a value computed here always is one.
    static func token(_ s: String) -> String {
        precondition(isToken(s), "not a hex token")
        return "'\(s)'"
    }
}
