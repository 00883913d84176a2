/// Minimal JSON writing for the ingest hot path, where `JSONEncoder` costs more than the insert
/// itself. Output is RFC 8259 JSON with keys sorted (deterministic), every control character,
/// quote and backslash escaped.
public enum JSONText {
    public static func object(_ dict: [String: String]) -> String {
        // Built as bytes: every ALB and WAF record writes one with a score of fields, and growing
        // a String piece by piece cost a quarter of parsing an ALB line.
        var out: [UInt8] = []
        out.reserveCapacity(2 + dict.count * 40)
        appendObject(dict, to: &out)
        return String(decoding: out, as: UTF8.self)
    }

    /// Appends `object(dict)`'s bytes (the event batch writes them straight into its arena).
    static func appendObject(_ dict: [String: String], to out: inout [UInt8]) {
        out.append(0x7B)
        for (n, field) in dict.sorted(by: { $0.key < $1.key }).enumerated() {
            if n > 0 { out.append(0x2C) }
            appendQuoted(field.key.utf8, to: &out)
            out.append(0x3A)
            appendQuoted(field.value.utf8, to: &out)
        }
        out.append(0x7D)
    }

    public static func string(_ s: String) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(s.utf8.count + 2)
        appendQuoted(s.utf8, to: &out)
        return String(decoding: out, as: UTF8.self)
    }

    /// Appends valid UTF-8 as a JSON string, quotes included. The one escaper: `extra` written in
    /// place by `EventBatch` and by `object(_:)` must be byte-identical.
    static func appendQuoted<Bytes: Sequence<UInt8>>(_ bytes: Bytes, to out: inout [UInt8]) {
        // Contiguous bytes (arena slices, native strings) are copied a run at a time: appending
        // byte by byte cost about 20 instructions a byte on the nginx ingest path.
        if bytes.withContiguousStorageIfAvailable({ appendQuotedRuns($0, to: &out) }) != nil { return }
        out.append(0x22)
        for b in bytes { appendEscaped(b, to: &out) }
        out.append(0x22)
    }

    /// `appendQuoted` on contiguous bytes: runs that need no escape are appended whole.
    private static func appendQuotedRuns(_ bytes: UnsafeBufferPointer<UInt8>, to out: inout [UInt8]) {
        out.append(0x22)
        var run = 0
        for i in 0..<bytes.count {
            let b = bytes[i]
            guard b < 0x20 || b == 0x22 || b == 0x5C else { continue }
            if run < i { out.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[run..<i])) }
            appendEscaped(b, to: &out)
            run = i + 1
        }
        if run < bytes.count { out.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[run...])) }
        out.append(0x22)
    }

    @inline(__always)
    private static func appendEscaped(_ b: UInt8, to out: inout [UInt8]) {
        switch b {
        case 0x22: out.append(0x5C); out.append(0x22)
        case 0x5C: out.append(0x5C); out.append(0x5C)
        case 0x0A: out.append(0x5C); out.append(0x6E)
        case 0x0D: out.append(0x5C); out.append(0x72)
        case 0x09: out.append(0x5C); out.append(0x74)
        case 0..<0x20:
            let hex: StaticString = "0123456789abcdef"
            out.append(contentsOf: [0x5C, 0x75, 0x30, 0x30, hex.utf8Start[Int(b >> 4)], hex.utf8Start[Int(b & 0x0F)]])
        default: out.append(b)
        }
    }
}

extension JSONText {
    /// Reads back a flat object of strings as `object(_:)` writes it (`extra` columns); nil when the
    /// text is anything else.
    public static func parseFlatObject(_ text: String) -> [String: String]? {
        var bytes = Array(text.utf8)[...]
        func skipSpace() { while let b = bytes.first, b == 0x20 || b == 0x0A || b == 0x0D || b == 0x09 { bytes.removeFirst() } }
        func expect(_ c: UInt8) -> Bool {
            skipSpace()
            guard bytes.first == c else { return false }
            bytes.removeFirst()
            return true
        }
        func string() -> String? {
            guard expect(0x22) else { return nil }
            var out: [UInt8] = []
            while let b = bytes.popFirst() {
                switch b {
                case 0x22: return String(decoding: out, as: UTF8.self)
                case 0x5C:
                    guard let e = bytes.popFirst() else { return nil }
                    switch e {
                    case 0x6E: out.append(0x0A)
                    case 0x72: out.append(0x0D)
                    case 0x74: out.append(0x09)
                    case 0x62: out.append(0x08)
                    case 0x66: out.append(0x0C)
                    case 0x75:
                        guard bytes.count >= 4, let v = UInt32(String(decoding: bytes.prefix(4), as: UTF8.self), radix: 16) else { return nil }
                        bytes.removeFirst(4)
                        var scalar = Unicode.Scalar(v)
                        // A surrogate pair (\uD83D\uDE00) encodes one scalar beyond the BMP.
                        if v >= 0xD800, v < 0xDC00, bytes.count >= 6, bytes.first == 0x5C,
                           let low = UInt32(String(decoding: bytes.dropFirst(2).prefix(4), as: UTF8.self), radix: 16),
                           low >= 0xDC00, low < 0xE000 {
                            bytes.removeFirst(6)
                            scalar = Unicode.Scalar(0x10000 + ((v - 0xD800) << 10) + (low - 0xDC00))
                        }
                        out.append(contentsOf: String(Character(scalar ?? "\u{FFFD}")).utf8)
                    default: out.append(e)
                    }
                default: out.append(b)
                }
            }
            return nil
        }
        guard expect(0x7B) else { return nil }
        var result: [String: String] = [:]
        if expect(0x7D) { return result }
        while true {
            guard let key = string(), expect(0x3A), let value = string() else { return nil }
            result[key] = value
            if expect(0x2C) { continue }
            guard expect(0x7D) else { return nil }
            skipSpace()
            return bytes.isEmpty ? result : nil
        }
    }
}

extension JSONText {
    /// One string field of a flat object as `object(_:)` writes it, read straight from its bytes
    /// (an ALB record's `extra` holds about thirty fields; correlation needs one of them per record).
    /// Nil when the field is absent or not a string.
    ///
    /// Matching `{"key":` or `,"key":` finds only a real key: inside a JSON string every quote is
    /// escaped, so neither sequence can occur within a value, whatever the log line contained.
    static func flatField(_ key: String, in bytes: UnsafeBufferPointer<UInt8>) -> String? {
        let pattern = Array(("\"" + key + "\":\"").utf8)
        guard bytes.count > pattern.count, let first = pattern.first else { return nil }
        var i = 1
        let last = bytes.count - pattern.count
        while i <= last {
            if bytes[i] == first, bytes[i - 1] == 0x7B || bytes[i - 1] == 0x2C {
                var j = 1
                while j < pattern.count, bytes[i + j] == pattern[j] { j += 1 }
                if j == pattern.count {
                    let start = i + pattern.count
                    var end = start
                    while end < bytes.count, bytes[end] != 0x22 {
                        // An escape: decode the whole object the careful way (rare).
                        if bytes[end] == 0x5C { return parseFlatObject(String(decoding: bytes, as: UTF8.self))?[key] }
                        end += 1
                    }
                    guard end < bytes.count else { return nil }
                    return String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<end]), as: UTF8.self)
                }
            }
            i += 1
        }
        return nil
    }
}

