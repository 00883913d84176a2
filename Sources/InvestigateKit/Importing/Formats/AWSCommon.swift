import Foundation

/// Helpers the AWS importers share: lenient JSON access (every value of an attacker-written log is
/// treated as possibly missing or of the wrong type), splitting of concatenated JSON values,
/// ISO-8601 stamps and X-Amzn-Trace-Id roots.
enum AWSJSON {
    /// Parses one JSON value; the error text is the reason a rejected record carries.
    static func parse(_ bytes: UnsafeBufferPointer<UInt8>) -> Result<Any, ImporterError> {
        guard !bytes.isEmpty, let base = bytes.baseAddress else { return .failure(ImporterError("empty JSON")) }
        // The usual record is read by `FastJSON`, to the same values; anything else by Foundation.
        if let value = FastJSON.parse(bytes) { return .success(value) }
        let data = Data(bytes: base, count: bytes.count)
        do {
            return .success(try JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed]))
        } catch {
            return .failure(ImporterError("invalid or truncated JSON"))
        }
    }

    static func parse(_ bytes: [UInt8]) -> Result<Any, ImporterError> {
        bytes.withUnsafeBufferPointer { parse($0) }
    }

    static func parseObject(_ bytes: [UInt8]) -> Result<[String: Any], ImporterError> {
        switch parse(bytes) {
        case .failure(let why): return .failure(why)
        case .success(let value):
            guard let object = value as? [String: Any] else { return .failure(ImporterError("JSON value is not an object")) }
            return .success(object)
        }
    }

    /// A string, or a number/bool rendered as text; nil for null and absent values.
    static func string(_ value: Any?) -> String? {
        switch value {
        case nil: return nil
        case is NSNull: return nil
        case let s as String: return s
        case let n as NSNumber:
            let d = n.doubleValue
            if d == d.rounded(), abs(d) < 9e15 { return String(n.int64Value) }
            return String(d)
        default: return nil
        }
    }

    /// `s.trimmingCharacters(in: .whitespaces)`, without Foundation when both ends are visible
    /// ASCII (nearly always): WAF records run this on dozens of fields each, and the bridged call
    /// was a tenth of WAF ingest time. Anything else goes to Foundation, whose set is wider than
    /// Unicode's Zs (it counts U+200B, for one).
    static func trimmedBlanks(_ s: String) -> String {
        func visibleASCII(_ u: Unicode.Scalar) -> Bool { u.value > 0x20 && u.value < 0x7F }
        guard let first = s.unicodeScalars.first, let last = s.unicodeScalars.last else { return s }
        if visibleASCII(first) && visibleASCII(last) { return s }
        return s.trimmingCharacters(in: .whitespaces)
    }

    /// A string that is not the conventional `-` placeholder and not empty.
    static func meaningful(_ value: Any?) -> String? {
        guard let s = string(value).map(trimmedBlanks), !s.isEmpty, s != "-" else { return nil }
        return s
    }

    /// An integer given as a JSON number or as a numeric string (`"status": 403` or `"403"`).
    static func int(_ value: Any?) -> Int64? {
        switch value {
        case let n as NSNumber:
            let d = n.doubleValue
            guard d.isFinite, abs(d) < 9e18 else { return nil }
            return Int64(d)
        case let s as String:
            let t = trimmedBlanks(s)
            if let v = Int64(t) { return v }
            if let d = Double(t), d.isFinite, abs(d) < 9e18 { return Int64(d) }
            return nil
        default: return nil
        }
    }

    static func double(_ value: Any?) -> Double? {
        switch value {
        case let n as NSNumber: return n.doubleValue.isFinite ? n.doubleValue : nil
        case let s as String: return Double(trimmedBlanks(s)).flatMap { $0.isFinite ? $0 : nil }
        default: return nil
        }
    }

    /// Milliseconds (number or numeric string, possibly fractional) → microseconds.
    static func millisToMicros(_ value: Any?) -> Int64? {
        guard let d = double(value), abs(d) < 9e15 else { return nil }
        return Int64((d * 1000).rounded())
    }

    /// Compact JSON text of a value, for `extra`.
    static func compact(_ value: Any) -> String {
        if let s = value as? String { return s }
        guard JSONSerialization.isValidJSONObject(value) || value is NSNumber,
              let data = try? JSONSerialization.data(withJSONObject: value, options: [.fragmentsAllowed, .withoutEscapingSlashes, .sortedKeys])
        else { return String(describing: value) }
        return String(decoding: data, as: UTF8.self)
    }

    static func isEmptyCollection(_ value: Any?) -> Bool {
        switch value {
        case nil, is NSNull: return true
        case let a as [Any]: return a.isEmpty
        case let d as [String: Any]: return d.isEmpty
        default: return false
        }
    }

    /// Byte ranges of the top-level JSON values written back to back (`}{` without a newline, as
    /// Firehose delivers), tracking string state so `}{` inside a string does not split. A trailing
    /// unterminated value comes back in `truncated`; bytes outside any value (other than
    /// whitespace) in `garbage`.
    struct Split {
        var values: [Range<Int>] = []
        var truncated: Range<Int>?
        var garbage: [Range<Int>] = []
    }

    static func splitConcatenated(_ b: UnsafeBufferPointer<UInt8>) -> Split {
        var out = Split()
        var depth = 0, start = -1, inString = false
        var garbageStart = -1
        var i = 0
        while i < b.count {
            if inString {
                // String bodies are most of a record: run to the next quote or backslash (which
                // takes the byte after it along).
                while i < b.count, b[i] != 0x22, b[i] != 0x5C { i += 1 }
                guard i < b.count else { break }
                if b[i] == 0x5C { i += 2 } else { inString = false; i += 1 }
                continue
            }
            let c = b[i]
            if depth > 0 {
                if c == 0x22 { inString = true }
                else if c == 0x7B || c == 0x5B { depth += 1 }
                else if c == 0x7D || c == 0x5D {
                    depth -= 1
                    if depth == 0 { out.values.append(start..<(i + 1)) }
                }
            } else if c == 0x7B || c == 0x5B {
                if garbageStart >= 0 { out.garbage.append(garbageStart..<i); garbageStart = -1 }
                depth = 1; start = i
            } else if !(c == 0x20 || c == 0x09 || c == 0x0A || c == 0x0D || c == 0x2C) {
                if garbageStart < 0 { garbageStart = i }
            }
            i += 1
        }
        if garbageStart >= 0 { out.garbage.append(garbageStart..<b.count) }
        if depth > 0, start >= 0 { out.truncated = start..<b.count }
        return out
    }

    /// Ranges of the containers (objects and arrays) nested `depth` levels inside the value that
    /// starts at `range.lowerBound` (depth 1 = the value's direct children), with whether each is an object.
    static func nestedContainers(_ b: UnsafeBufferPointer<UInt8>, in range: Range<Int>, depth target: Int) -> [(range: Range<Int>, isObject: Bool)] {
        var out: [(Range<Int>, Bool)] = []
        var depth = 0, inString = false, escaped = false
        var starts: [Int] = []
        var i = range.lowerBound
        while i < range.upperBound, i < b.count {
            let c = b[i]
            if inString {
                if escaped { escaped = false } else if c == 0x5C { escaped = true } else if c == 0x22 { inString = false }
            } else if c == 0x22 { inString = true }
            else if c == 0x7B || c == 0x5B {
                if depth == target { starts.append(i) }
                depth += 1
            } else if c == 0x7D || c == 0x5D {
                depth -= 1
                if depth == target, let s = starts.popLast() { out.append((s..<(i + 1), b[s] == 0x7B)) }
                if depth <= 0 { break }
            }
            i += 1
        }
        return out
    }
}

enum AWSTime {
    /// `2018-07-02T22:23:00.186641Z`, `2024-04-08T09:17:23.827000+00:00`, `2024-05-19 06:10:35.743`
    /// (zone-less stamps are UTC, as CloudWatch writes them) → µs UTC. Trailing bytes are ignored
    /// only if `allowTrailing`; returns the number of bytes read.
    static func iso8601(_ b: UnsafeBufferPointer<UInt8>, allowTrailing: Bool = false) -> (micros: Int64, length: Int)? {
        var s = ByteScanner(b)
        guard let y = s.digits(4), s.skip(0x2D), let mo = s.digits(2), s.skip(0x2D), let d = s.digits(2) else { return nil }
        guard s.skip(0x54) || s.skip(0x20) || s.skip(0x74) else { return nil }
        guard let h = s.digits(2), s.skip(0x3A), let mi = s.digits(2) else { return nil }
        var sec = 0
        if s.skip(0x3A) { guard let v = s.digits(2) else { return nil }; sec = v }
        var micro = 0
        if s.skip(0x2E) || s.skip(0x2C) {
            var n = 0, digits = 0
            while let c = s.peek(), c >= 0x30, c <= 0x39 {
                if digits < 6 { n = n * 10 + Int(c - 0x30); digits += 1 }
                s.pos += 1
            }
            guard digits > 0 else { return nil }
            while digits < 6 { n *= 10; digits += 1 }
            micro = n
        }
        guard CivilTime.isValid(year: y, month: mo, day: d, hour: h, minute: mi, second: sec) else { return nil }
        var offset = 0
        if s.skip(0x5A) || s.skip(0x7A) {
        } else if let sign = s.peek(), sign == 0x2B || sign == 0x2D {
            s.pos += 1
            guard let oh = s.digits(2) else { return nil }
            _ = s.skip(0x3A)
            let om = s.digits(2) ?? 0
            offset = (sign == 0x2D ? -1 : 1) * (oh * 3600 + om * 60)
        }
        if !allowTrailing && !s.atEnd { return nil }
        let local = CivilTime.micros(year: y, month: mo, day: d, hour: h, minute: mi, second: sec, micro: micro)
        return (local - Int64(offset) * CivilTime.microsPerSecond, s.pos)
    }

    static func iso8601(_ text: String) -> Int64? {
        var utf8 = Array(text.utf8)
        return utf8.withUnsafeMutableBufferPointer { iso8601(UnsafeBufferPointer($0))?.micros }
    }

    /// `dd/Mon/yyyy:HH:mm:ss +zzzz` ($context.requestTime) → µs UTC.
    static func clf(_ text: String) -> Int64? {
        var utf8 = Array(text.utf8)
        return utf8.withUnsafeMutableBufferPointer { ByteScanner.clfTime(UnsafeBufferPointer($0))?.0 }
    }

    /// Epoch milliseconds, or seconds when the number is too small to be milliseconds.
    static func epoch(_ value: Any?) -> Int64? {
        guard let d = AWSJSON.double(value), d > 0, d < 1e15 else { return nil }
        return d < 1e11 ? Int64((d * 1e6).rounded()) : Int64((d * 1000).rounded())
    }
}

enum AWSTrace {
    /// The Root of an `X-Amzn-Trace-Id` value, without `Root=` (`Self=…;Root=1-…;CalledFrom=app`
    /// → `1-…`). A bare id (`1-…`) is returned as is; nil for `-` or empty.
    static func root(_ header: String) -> String? {
        var header = header
        // ASCII headers (all real ones) are read as bytes: the String path below splits and
        // trims by Character and was a twentieth of ingesting ALB logs.
        if let ascii = header.withUTF8({ asciiRoot($0) }) { return ascii }
        // Trimmed without Foundation where it can be (a fifth of ALB parsing went to the bridged
        // calls). `=` is a whole character, as before (`=` plus a combining mark is not one): the
        // byte test only rules it out quickly.
        let t = AWSJSON.trimmedBlanks(header)
        if t.isEmpty || t == "-" { return nil }
        if !t.utf8.contains(UInt8(ascii: "=")) || !t.contains("=" as Character) { return t }
        for part in t.split(separator: ";") {
            let p = AWSJSON.trimmedBlanks(String(part))
            if p.hasPrefix("Root=") {
                let v = p.dropFirst(5)
                return v.isEmpty ? nil : String(v)
            }
        }
        return nil
    }

    /// `root` of an ASCII header (where blanks are space and tab, `;` and `=` whole characters);
    /// nil when the header is not ASCII.
    private static func asciiRoot(_ b: UnsafeBufferPointer<UInt8>) -> String?? {
        guard EventBatch.isASCII(b) else { return nil }
        func isBlank(_ c: UInt8) -> Bool { c == 0x20 || c == 0x09 }
        func text(_ r: Range<Int>) -> String { String(decoding: UnsafeBufferPointer(rebasing: b[r]), as: UTF8.self) }
        var lo = 0, hi = b.count
        while lo < hi, isBlank(b[lo]) { lo += 1 }
        while hi > lo, isBlank(b[hi - 1]) { hi -= 1 }
        if lo == hi || (hi - lo == 1 && b[lo] == 0x2D) { return .some(nil) }
        guard b[lo..<hi].contains(0x3D) else { return .some(text(lo..<hi)) }
        var partStart = lo
        while partStart < hi {
            var partEnd = partStart
            while partEnd < hi, b[partEnd] != 0x3B { partEnd += 1 }
            var ps = partStart, pe = partEnd
            while ps < pe, isBlank(b[ps]) { ps += 1 }
            while pe > ps, isBlank(b[pe - 1]) { pe -= 1 }
            if pe - ps >= 5, b[ps] == 0x52, b[ps + 1] == 0x6F, b[ps + 2] == 0x6F, b[ps + 3] == 0x74, b[ps + 4] == 0x3D {
                return .some(pe - ps == 5 ? nil : text((ps + 5)..<pe))
            }
            partStart = partEnd + 1
        }
        return .some(nil)
    }
}

/// The CloudWatch log group or stream (or file path) names the layer a record comes from, for
/// wrapped messages whose own format is not recognised.
enum AWSLogGroupHint {
    static func layer(_ names: [String?]) -> Layer? {
        for name in names.compactMap({ $0?.lowercased() }) {
            if name.contains("aws-waf-logs") || name.contains("waflogs") { return .waf }
            if name.contains("api-gateway") || name.contains("apigateway") || name.contains("execute-api") { return .apigateway }
            if name.contains("/aws/lambda/") || name.contains("[$latest]") || name.contains("lambda") { return .lambda }
            if name.contains("elasticloadbalancing") { return .alb }
            if name.contains("nginx") { return .nginx }
            if name.contains("gunicorn") { return .gunicorn }
        }
        return nil
    }
}
