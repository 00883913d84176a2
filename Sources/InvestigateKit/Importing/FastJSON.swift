import Foundation

/// A JSON reader for the common shape of AWS log records, giving exactly the values Foundation's
/// `JSONSerialization` gives (`[String: Any]`, `[Any]`, `String`, `NSNumber`, `NSNull`), several
/// times faster: a WAF record is about 1.5 KB of JSON, and `JSONSerialization` was a third of WAF
/// ingest (its UTF-8 string reading alone a fifth).
///
/// It is deliberately partial. Whatever it is not certain to read exactly as Foundation does (an
/// exponent, more digits than a Double holds, a \u escape, a control character or invalid UTF-8 in
/// a string, deep nesting, a byte-order mark, anything malformed) makes it give up, and the caller
/// asks `JSONSerialization`, which also words the errors. Tests compare both on real records and
/// hostile ones.
struct FastJSON {
    private let b: UnsafeBufferPointer<UInt8>
    private var i = 0
    private var depth = 0

    private struct GiveUp: Error {}

    /// The value of the whole buffer (surrounding whitespace allowed), or nil when `JSONSerialization`
    /// must decide.
    static func parse(_ bytes: UnsafeBufferPointer<UInt8>) -> Any? {
        var reader = FastJSON(b: bytes)
        do {
            reader.skipSpace()
            let value = try reader.value()
            reader.skipSpace()
            return reader.i == bytes.count ? value : nil
        } catch {
            return nil
        }
    }

    private init(b: UnsafeBufferPointer<UInt8>) { self.b = b }

    // MARK: - Reading without building
    //
    // Typed readers (WAF) walk a record with these instead of building `[String: Any]` for all of
    // it: they take the values they use through `value()`, and `skip()` the rest, which checks
    // exactly what building would (so a record the fast path accepts is one Foundation accepts).
    // Any `GiveUp` sends the whole record back to the generic path.

    /// Runs `body` over the whole buffer (surrounding whitespace allowed); nil when the fast reader
    /// gave up anywhere or bytes follow the value.
    static func read<T>(_ bytes: UnsafeBufferPointer<UInt8>, _ body: (inout FastJSON) throws -> T) -> T? {
        var reader = FastJSON(b: bytes)
        do {
            reader.skipSpace()
            let result = try body(&reader)
            reader.skipSpace()
            return reader.i == bytes.count ? result : nil
        } catch {
            return nil
        }
    }

    /// The next value's first byte (after whitespace), without consuming it.
    mutating func peek() -> UInt8? {
        skipSpace()
        return i < b.count ? b[i] : nil
    }

    /// The next value, built as `parse` builds it.
    mutating func anyValue() throws -> Any {
        skipSpace()
        return try value()
    }

    /// Where the next value lies, checked as `skip()` checks it; `value(at:)` builds it later.
    mutating func valueRange() throws -> Range<Int> {
        skipSpace()
        let start = i
        try skip()
        return start..<i
    }

    /// The bytes of a range `valueRange()` returned, as written (checked, not built).
    func bytes(at range: Range<Int>) -> UnsafeBufferPointer<UInt8> {
        UnsafeBufferPointer(rebasing: b[range])
    }

    /// The value at a range `valueRange()` returned.
    func value(at range: Range<Int>) throws -> Any {
        var sub = FastJSON(b: UnsafeBufferPointer(rebasing: b[range]))
        sub.depth = depth
        return try sub.value()
    }

    /// Calls `body` for each member of the object that comes next, with the key's bytes (keys with
    /// escapes give up); `body` must consume the member's value. When the next value is not an
    /// object it is skipped (checked) instead, and the answer is false: a typed reader then treats
    /// it as `as? [String: Any]` failing.
    @discardableResult
    mutating func members(_ body: (inout FastJSON, UnsafeBufferPointer<UInt8>) throws -> Void) throws -> Bool {
        guard peek() == 0x7B else { try skip(); return false }
        try container(close: 0x7D) { json in
            guard json.i < json.b.count, json.b[json.i] == 0x22 else { throw GiveUp() }
            let key = try json.plainKey()
            try json.colon()
            try body(&json, key)
        }
        return true
    }

    /// Calls `body` for each element of the array that comes next; `body` must consume it. When
    /// the next value is not an array it is skipped (checked) instead, and the answer is false.
    @discardableResult
    mutating func elements(_ body: (inout FastJSON) throws -> Void) throws -> Bool {
        guard peek() == 0x5B else { try skip(); return false }
        try container(close: 0x5D, body)
        return true
    }

    /// The one loop over an object's members or an array's elements, from the opening bracket
    /// under `i` to after `close`: nesting depth, the empty container, separators. `item` reads one
    /// member or element, starting at its first byte.
    private mutating func container(close: UInt8, _ item: (inout FastJSON) throws -> Void) throws {
        depth += 1
        guard depth < 256 else { throw GiveUp() }
        defer { depth -= 1 }
        i += 1
        skipSpace()
        if i < b.count, b[i] == close { i += 1; return }
        while true {
            skipSpace()
            try item(&self)
            skipSpace()
            guard i < b.count else { throw GiveUp() }
            if b[i] == 0x2C { i += 1; continue }
            guard b[i] == close else { throw GiveUp() }
            i += 1
            return
        }
    }

    /// The `:` between a key and its value, with the whitespace around it.
    private mutating func colon() throws {
        skipSpace()
        guard i < b.count, b[i] == 0x3A else { throw GiveUp() }
        i += 1
        skipSpace()
    }

    /// Consumes the next value, checking it as building would, without building it.
    mutating func skip() throws {
        guard let first = peek() else { throw GiveUp() }
        switch first {
        case 0x7B: try members { reader, _ in try reader.skip() }
        case 0x5B: try elements { reader in try reader.skip() }
        case 0x22: try skipString()
        default: _ = try value()
        }
    }

    /// A key's bytes; keys with escapes (never seen in AWS records) give up.
    private mutating func plainKey() throws -> UnsafeBufferPointer<UInt8> {
        i += 1
        let start = i
        while i < b.count, b[i] != 0x22 {
            if b[i] < 0x20 || b[i] == 0x5C { throw GiveUp() }
            i += 1
        }
        guard i < b.count else { throw GiveUp() }
        let key = UnsafeBufferPointer(rebasing: b[start..<i])
        i += 1
        // Invalid UTF-8 in a key is for Foundation to refuse.
        if !EventBatch.isASCII(key), String(validating: key, as: UTF8.self) == nil { throw GiveUp() }
        return key
    }

    /// Checks a string as `string()` does (escapes other than \u, no control characters, valid
    /// UTF-8: escapes are ASCII, so the undecoded body is valid exactly when the decoded one is).
    private mutating func skipString() throws {
        i += 1
        let start = i
        while i < b.count, b[i] != 0x22 {
            let c = b[i]
            if c < 0x20 { throw GiveUp() }
            if c == 0x5C {
                i += 1
                guard i < b.count else { throw GiveUp() }
                switch b[i] {
                case 0x22, 0x5C, 0x2F, 0x62, 0x66, 0x6E, 0x72, 0x74: break
                default: throw GiveUp()
                }
            }
            i += 1
        }
        guard i < b.count else { throw GiveUp() }
        let body = UnsafeBufferPointer(rebasing: b[start..<i])
        i += 1
        if !EventBatch.isASCII(body), String(validating: body, as: UTF8.self) == nil { throw GiveUp() }
    }

    /// Whether a key's bytes are `name`.
    static func key(_ key: UnsafeBufferPointer<UInt8>, is name: StaticString) -> Bool {
        key.count == name.utf8CodeUnitCount && (key.isEmpty || memcmp(key.baseAddress!, name.utf8Start, key.count) == 0)
    }

    private mutating func skipSpace() {
        while i < b.count, b[i] == 0x20 || b[i] == 0x0A || b[i] == 0x0D || b[i] == 0x09 { i += 1 }
    }

    private mutating func value() throws -> Any {
        guard i < b.count else { throw GiveUp() }
        switch b[i] {
        case 0x7B: return try object()
        case 0x5B: return try array()
        case 0x22: return try string()
        case 0x74: try literal("true"); return NSNumber(value: true)
        case 0x66: try literal("false"); return NSNumber(value: false)
        case 0x6E: try literal("null"); return NSNull()
        case 0x2D, 0x30...0x39: return try number()
        default: throw GiveUp()
        }
    }

    private mutating func literal(_ word: StaticString) throws {
        let n = word.utf8CodeUnitCount
        guard i + n <= b.count else { throw GiveUp() }
        for k in 0..<n where b[i + k] != word.utf8Start[k] { throw GiveUp() }
        i += n
    }

    private mutating func object() throws -> [String: Any] {
        var result: [String: Any] = [:]
        try container(close: 0x7D) { json in
            guard json.i < json.b.count, json.b[json.i] == 0x22 else { throw GiveUp() }
            let key = try json.string()
            try json.colon()
            // A repeated key: the last one wins, as in Foundation.
            result[key] = try json.value()
        }
        return result
    }

    private mutating func array() throws -> [Any] {
        var result: [Any] = []
        try container(close: 0x5D) { json in result.append(try json.value()) }
        return result
    }

    /// A string without \u escapes or control characters, of valid UTF-8.
    private mutating func string() throws -> String {
        i += 1
        let start = i
        var escaped = false
        while i < b.count, b[i] != 0x22 {
            let c = b[i]
            if c < 0x20 { throw GiveUp() }
            if c == 0x5C {
                escaped = true
                i += 1
                guard i < b.count else { throw GiveUp() }
                switch b[i] {
                case 0x22, 0x5C, 0x2F, 0x62, 0x66, 0x6E, 0x72, 0x74: break
                default: throw GiveUp() // \u and invalid escapes
                }
            }
            i += 1
        }
        guard i < b.count else { throw GiveUp() }
        let body = UnsafeBufferPointer(rebasing: b[start..<i])
        i += 1
        if !escaped {
            return try Self.text(body)
        }
        var out: [UInt8] = []
        out.reserveCapacity(body.count)
        var k = 0
        while k < body.count {
            var c = body[k]
            if c == 0x5C {
                k += 1
                switch body[k] {
                case 0x62: c = 0x08
                case 0x66: c = 0x0C
                case 0x6E: c = 0x0A
                case 0x72: c = 0x0D
                case 0x74: c = 0x09
                default: c = body[k] // " \ /
                }
            }
            out.append(c)
            k += 1
        }
        return try out.withUnsafeBufferPointer { try Self.text($0) }
    }

    /// Valid UTF-8 as a String; anything else is left to Foundation (which refuses it), never repaired.
    private static func text(_ bytes: UnsafeBufferPointer<UInt8>) throws -> String {
        if EventBatch.isASCII(bytes) { return String(decoding: bytes, as: UTF8.self) }
        guard let s = String(validating: bytes, as: UTF8.self) else { throw GiveUp() }
        return s
    }

    /// A number as Foundation's reader makes it: an integer into Int64 (negative) or UInt64, a
    /// decimal of at most 17 digits into a Double. Exponents and longer numbers are left to it.
    private mutating func number() throws -> NSNumber {
        let start = i
        if b[i] == 0x2D { i += 1 }
        guard i < b.count, b[i] >= 0x30, b[i] <= 0x39 else { throw GiveUp() }
        // No leading zeros ("01" is not JSON).
        if b[i] == 0x30, i + 1 < b.count, b[i + 1] >= 0x30, b[i + 1] <= 0x39 { throw GiveUp() }
        while i < b.count, b[i] >= 0x30, b[i] <= 0x39 { i += 1 }
        var isInteger = true
        if i < b.count, b[i] == 0x2E {
            isInteger = false
            i += 1
            let fractionStart = i
            while i < b.count, b[i] >= 0x30, b[i] <= 0x39 { i += 1 }
            guard i > fractionStart else { throw GiveUp() }
        }
        if i < b.count, b[i] == 0x65 || b[i] == 0x45 { throw GiveUp() }
        let text = String(decoding: UnsafeBufferPointer(rebasing: b[start..<i]), as: UTF8.self)
        let negative = b[start] == 0x2D
        let digits = text.utf8.count - (negative ? 1 : 0) - (isInteger ? 0 : 1)
        if isInteger {
            if negative, digits <= 18, let v = Int64(text) { return NSNumber(value: v) }
            if !negative, digits <= 19, let v = UInt64(text) { return NSNumber(value: v) }
            throw GiveUp()
        }
        // Foundation counts the sign and the point too before choosing a Decimal over a Double.
        guard text.utf8.count <= 17, let d = Double(text), d.isFinite else { throw GiveUp() }
        return NSNumber(value: d)
    }
}
