/// The one test of "is this text an IP address" every importer applies before it fills `client_ip`
/// or `peer_ip`: those columns hold a valid IPv4 or IPv6 address or nothing. Log content is written
/// by whoever sends the request (a Host header, a forged X-Forwarded-For, a masked `X.X.X.X` in a
/// published sample, a `unix:` socket peer), so a value that is not an address goes to `extra`
/// under a key that says what it is, with a note, never into the column (`--ip` and correlation
/// compare these columns as addresses).
///
/// Accepted: dotted-quad IPv4 (`0`–`255` per part, no leading zeros: `010.0.0.1` is octal to some
/// readers and decimal to others, so it is not known which address it names) and RFC 4291 IPv6
/// text (hex groups of 1–4 digits, one `::`, an embedded IPv4 tail; no zone index). Case is kept
/// as written. Works on bytes, without allocating: nginx's fast path runs it on every line.
public enum IPAddressText {
    public static func isAddress(_ b: UnsafeBufferPointer<UInt8>) -> Bool {
        guard b.count >= 2, b.count <= 45 else { return false }
        var hasColon = false
        for c in b where c == 0x3A { hasColon = true; break }
        return hasColon ? isIPv6(b) : isIPv4(b)
    }

    public static func isAddress(_ text: String) -> Bool {
        var text = text
        return text.withUTF8 { isAddress($0) }
    }

    public static func isAddress(_ text: Substring) -> Bool {
        var text = text
        return text.withUTF8 { isAddress($0) }
    }

    /// `a.b.c.d`, each part 0–255 written without leading zeros.
    public static func isIPv4(_ b: UnsafeBufferPointer<UInt8>) -> Bool {
        isIPv4(b, from: 0, to: b.count)
    }

    static func isIPv4(_ b: UnsafeBufferPointer<UInt8>, from: Int, to end: Int) -> Bool {
        guard end - from >= 7, end - from <= 15 else { return false }
        var parts = 0, value = 0, digits = 0
        var i = from
        while i <= end {
            if i == end || b[i] == 0x2E {
                guard digits > 0, value <= 255 else { return false }
                parts += 1
                if parts > 4 { return false }
                value = 0
                digits = 0
            } else {
                let d = Int(b[i]) - 48
                guard d >= 0, d <= 9 else { return false }
                if digits == 1 && value == 0 { return false } // a leading zero
                value = value * 10 + d
                digits += 1
                if digits > 3 { return false }
            }
            i += 1
        }
        return parts == 4
    }

    /// RFC 4291 section 2.2 text: eight groups, or fewer around one `::`, the last two of which may
    /// be a dotted quad.
    public static func isIPv6(_ b: UnsafeBufferPointer<UInt8>) -> Bool {
        let n = b.count
        guard n >= 2, n <= 45 else { return false }
        var groups = 0
        var doubleColon = false
        var i = 0
        if b[0] == 0x3A {
            guard n >= 2, b[1] == 0x3A else { return false }
            doubleColon = true
            i = 2
            if i == n { return true } // `::`
        }
        while i < n {
            // One group (or the dotted-quad tail) starting at i.
            var j = i
            var hex = 0
            var sawDot = false
            while j < n, b[j] != 0x3A {
                let c = b[j]
                if c == 0x2E { sawDot = true } else if !isHex(c) { return false }
                hex += 1
                j += 1
            }
            if sawDot {
                // The IPv4 tail ends the address and takes the place of two groups.
                guard j == n, isIPv4(b, from: i, to: j) else { return false }
                groups += 2
                break
            }
            guard hex >= 1, hex <= 4 else { return false }
            groups += 1
            if j == n { break }
            // b[j] is ':'
            if j + 1 < n, b[j + 1] == 0x3A {
                guard !doubleColon else { return false }
                doubleColon = true
                i = j + 2
                if i == n { break } // ends with `::`
            } else {
                guard j + 1 < n else { return false } // a single trailing ':'
                i = j + 1
            }
        }
        return doubleColon ? groups <= 7 : groups == 8
    }

    @inline(__always) static func isHex(_ c: UInt8) -> Bool {
        (c >= 0x30 && c <= 0x39) || (c >= 0x61 && c <= 0x66) || (c >= 0x41 && c <= 0x46)
    }

    /// The address in `address`, `ipv4:port`, `[ipv6]` or `[ipv6]:port` (X-Forwarded-For hops
    /// some proxies write with the port, load-balancer `client:port` fields); nil when it holds none.
    public static func address(inHostPort text: Substring) -> Substring? {
        if isAddress(text) { return text }
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else { return nil }
            let inner = text[text.index(after: text.startIndex)..<close]
            let after = text[text.index(after: close)...]
            guard after.isEmpty || (after.hasPrefix(":") && after.count > 1 && after.dropFirst().allSatisfy(\.isASCII) && after.dropFirst().allSatisfy(\.isNumber)) else { return nil }
            return inner.contains(":") && isAddress(inner) ? inner : nil
        }
        // IPv4 with a port: exactly one ':'.
        guard let colon = text.firstIndex(of: ":"), text[text.index(after: colon)...].firstIndex(of: ":") == nil else { return nil }
        let port = text[text.index(after: colon)...]
        guard !port.isEmpty, port.count <= 5, port.allSatisfy({ $0.isASCII && $0.isNumber }) else { return nil }
        let host = text[..<colon]
        return !host.contains(":") && isAddress(host) ? host : nil
    }

    /// The note an importer adds when it kept a value out of `client_ip` or `peer_ip`.
    static func note(field: String, key: String) -> String {
        "\(field) values that are not IP addresses were kept in extra.\(key), not in client_ip/peer_ip (masked, hostile or a socket name: the importer cannot tell which client sent the request)"
    }
}

extension Event {
    /// Which address column `setAddress` fills.
    enum AddressColumn { case client, peer }

    /// Puts `text` in `client_ip` or `peer_ip` when it is an IP address. Otherwise the column is
    /// left empty and the text is kept in `extra[key]`; returns false then (the caller notes it).
    /// Nil, empty and `-` clear nothing and return true.
    @discardableResult
    mutating func setAddress(_ column: AddressColumn, _ text: String?, elseKeep key: String) -> Bool {
        guard let text, !text.isEmpty, text != "-" else { return true }
        if IPAddressText.isAddress(text) {
            switch column {
            case .client: clientIP = text
            case .peer: peerIP = text
            }
            return true
        }
        extra[key] = text
        return false
    }
}
