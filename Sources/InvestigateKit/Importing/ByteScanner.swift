/// A cursor over one line's bytes, for importers that parse without building `String`s for every
/// field (the ingest hot path). All reads are bounds-checked; a failed read returns nil and leaves
/// the cursor where it was.
public struct ByteScanner {
    public let bytes: UnsafeBufferPointer<UInt8>
    public var pos: Int

    public init(_ bytes: UnsafeBufferPointer<UInt8>, pos: Int = 0) {
        self.bytes = bytes
        self.pos = pos
    }

    public var atEnd: Bool { pos >= bytes.count }
    public var remaining: Int { bytes.count - pos }

    @inline(__always) public func peek(_ offset: Int = 0) -> UInt8? {
        let i = pos + offset
        return i < bytes.count ? bytes[i] : nil
    }

    @inline(__always) public mutating func skip(_ byte: UInt8) -> Bool {
        if pos < bytes.count, bytes[pos] == byte { pos += 1; return true }
        return false
    }

    public mutating func skipSpaces() {
        while pos < bytes.count, bytes[pos] == 0x20 || bytes[pos] == 0x09 { pos += 1 }
    }

    /// Bytes up to (not including) `byte`; the cursor moves past the delimiter. Nil if absent.
    public mutating func until(_ byte: UInt8) -> UnsafeBufferPointer<UInt8>? {
        var i = pos
        while i < bytes.count, bytes[i] != byte { i += 1 }
        guard i < bytes.count else { return nil }
        let out = UnsafeBufferPointer(rebasing: bytes[pos..<i])
        pos = i + 1
        return out
    }

    /// A space-delimited token (may be empty at end of line).
    public mutating func token() -> UnsafeBufferPointer<UInt8> {
        var i = pos
        while i < bytes.count, bytes[i] != 0x20 { i += 1 }
        let out = UnsafeBufferPointer(rebasing: bytes[pos..<i])
        pos = i < bytes.count ? i + 1 : i
        return out
    }

    /// A `"…"` field; a backslash escapes the next byte (Apache writes `\"`, nginx `\x22`).
    /// Returns the raw inner bytes (escapes not undone).
    public mutating func quoted() -> UnsafeBufferPointer<UInt8>? {
        guard pos < bytes.count, bytes[pos] == 0x22 else { return nil }
        var i = pos + 1
        while i < bytes.count {
            let b = bytes[i]
            if b == 0x5C { i += 2; continue }
            if b == 0x22 { break }
            i += 1
        }
        guard i < bytes.count else { return nil }
        let out = UnsafeBufferPointer(rebasing: bytes[(pos + 1)..<i])
        pos = i + 1
        return out
    }

    /// Fixed-width decimal digits.
    @inline(__always) public mutating func digits(_ n: Int) -> Int? {
        guard pos + n <= bytes.count else { return nil }
        var v = 0
        for k in 0..<n {
            let d = Int(bytes[pos + k]) - 48
            guard d >= 0, d <= 9 else { return nil }
            v = v * 10 + d
        }
        pos += n
        return v
    }

    public var rest: UnsafeBufferPointer<UInt8> { UnsafeBufferPointer(rebasing: bytes[min(pos, bytes.count)...]) }

    // MARK: - Field conversions

    @inline(__always) public static func string(_ b: UnsafeBufferPointer<UInt8>) -> String {
        String(decoding: b, as: UTF8.self)
    }

    /// Nil for the conventional "no value" dash.
    @inline(__always) public static func optionalString(_ b: UnsafeBufferPointer<UInt8>) -> String? {
        if b.isEmpty || (b.count == 1 && b[0] == 0x2D) { return nil }
        return String(decoding: b, as: UTF8.self)
    }

    /// Nil for the conventional "no value" dash (or nothing), else the bytes.
    @inline(__always) public static func optionalBytes(_ b: UnsafeBufferPointer<UInt8>) -> UnsafeBufferPointer<UInt8>? {
        if b.isEmpty || (b.count == 1 && b[0] == 0x2D) { return nil }
        return b
    }

    public static func int(_ b: UnsafeBufferPointer<UInt8>) -> Int64? {
        guard !b.isEmpty, b.count <= 18 else { return nil }
        var v: Int64 = 0
        var neg = false
        var start = 0
        if b[0] == 0x2D { neg = true; start = 1; if b.count == 1 { return nil } }
        for i in start..<b.count {
            let d = Int64(b[i]) - 48
            guard d >= 0, d <= 9 else { return nil }
            v = v * 10 + d
        }
        return neg ? -v : v
    }

    /// Seconds with a decimal fraction (`0.016`) → microseconds. Nil for `-` or garbage.
    public static func secondsToMicros(_ b: UnsafeBufferPointer<UInt8>) -> Int64? {
        // More than 12 integer digits (~31,000 years) is not a duration: refuse rather than overflow.
        guard !b.isEmpty, b.count <= 24 else { return nil }
        var integerDigits = 0
        for c in b { if c == 0x2E { break }; integerDigits += 1 }
        guard integerDigits <= 13 else { return nil }
        var whole: Int64 = 0, frac: Int64 = 0, fracDigits = 0, seenDot = false, any = false
        var neg = false
        for (i, c) in b.enumerated() {
            if i == 0 && c == 0x2D { neg = true; continue }
            if c == 0x2E { if seenDot { return nil }; seenDot = true; continue }
            let d = Int64(c) - 48
            guard d >= 0, d <= 9 else { return nil }
            any = true
            if seenDot { if fracDigits < 6 { frac = frac * 10 + d; fracDigits += 1 } } else { whole = whole * 10 + d }
        }
        guard any else { return nil }
        while fracDigits < 6 { frac *= 10; fracDigits += 1 }
        // 13 digits (a sign counts as one) can still exceed Int64 once in microseconds: refuse.
        let (scaled, overflow) = whole.multipliedReportingOverflow(by: 1_000_000)
        guard !overflow, scaled <= Int64.max - frac else { return nil }
        let v = scaled + frac
        return neg ? -v : v
    }

    /// `dd/Mon/yyyy:HH:MM:SS +zzzz` (nginx `$time_local`, Apache `%t`, gunicorn `%(t)s`) → (UTC µs, offset s).
    public static func clfTime(_ b: UnsafeBufferPointer<UInt8>) -> (Int64, Int)? {
        guard b.count >= 26 else { return nil }
        var s = ByteScanner(b)
        guard let day = s.digits(2), s.skip(0x2F), s.pos + 3 <= b.count,
              let month = CivilTime.month(b[s.pos], b[s.pos + 1], b[s.pos + 2]) else { return nil }
        s.pos += 3
        guard s.skip(0x2F), let year = s.digits(4), s.skip(0x3A), let h = s.digits(2), s.skip(0x3A),
              let mi = s.digits(2), s.skip(0x3A), let sec = s.digits(2), s.skip(0x20) else { return nil }
        guard let signByte = s.peek(), signByte == 0x2B || signByte == 0x2D else { return nil }
        s.pos += 1
        // UTC offsets run from -12:00 to +14:00: `+2500` is no zone.
        guard let oh = s.digits(2), let om = s.digits(2), oh <= 14, om < 60 else { return nil }
        guard CivilTime.isValid(year: year, month: month, day: day, hour: h, minute: mi, second: sec) else { return nil }
        let offset = (signByte == 0x2D ? -1 : 1) * (oh * 3600 + om * 60)
        let local = CivilTime.micros(year: year, month: month, day: day, hour: h, minute: mi, second: sec)
        return (local - Int64(offset) * 1_000_000, offset)
    }

    /// True for addresses that are private, loopback or link-local (RFC 1918, RFC 4193, …):
    /// such a peer is a proxy or load balancer inside the network, not the client.
    public static func isPrivateAddress(_ ip: String) -> Bool {
        if ip.hasPrefix("10.") || ip.hasPrefix("192.168.") || ip.hasPrefix("127.") || ip.hasPrefix("169.254.") { return true }
        if ip.hasPrefix("172.") {
            let parts = ip.split(separator: ".")
            if parts.count > 1, let second = Int(parts[1]), (16...31).contains(second) { return true }
        }
        let lower = ip.lowercased()
        if lower == "::1" || lower.hasPrefix("fc") || lower.hasPrefix("fd") || lower.hasPrefix("fe80:") { return true }
        if lower.hasPrefix("unix:") { return true }
        return false
    }

    /// The client address a `X-Forwarded-For` list names: the rightmost public hop (the one our
    /// own proxies appended), or the rightmost hop when all are private. Only hops that are IP
    /// addresses count (`ip:port` and `[ipv6]:port` give their address): the header is the
    /// client's to write, and `unknown`, `-`, a host name or any other text names no address.
    /// Nil when no hop is one.
    public static func clientFromForwardedFor(_ xff: String) -> String? {
        var hops: [Substring] = []
        for part in xff.split(separator: ",") {
            var hop = part[...]
            while hop.first == " " || hop.first == "\t" { hop = hop.dropFirst() }
            while hop.last == " " || hop.last == "\t" { hop = hop.dropLast() }
            if let address = IPAddressText.address(inHostPort: hop) { hops.append(address) }
        }
        guard let last = hops.last else { return nil }
        return String(hops.last(where: { !isPrivateAddress(String($0)) }) ?? last)
    }
}
