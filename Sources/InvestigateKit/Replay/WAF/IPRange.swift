import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// An address or CIDR block of an IP set (`192.0.2.0/24`, `2001:db8::/32`).
public struct IPRange: Sendable, Equatable {
    public let bytes: [UInt8]
    public let prefix: Int

    public init?(_ text: String) {
        let parts = text.trimmingCharacters(in: .whitespaces).split(separator: "/", maxSplits: 1)
        guard let first = parts.first, let address = IPRange.parse(String(first)) else { return nil }
        let maxPrefix = address.count * 8
        if parts.count == 2 {
            guard let p = Int(parts[1]), p >= 0, p <= maxPrefix else { return nil }
            prefix = p
        } else {
            prefix = maxPrefix
        }
        bytes = address
    }

    /// 4 bytes for IPv4, 16 for IPv6, nil for anything else.
    public static func parse(_ text: String) -> [UInt8]? {
        if text.contains(":") {
            var a = in6_addr()
            guard inet_pton(AF_INET6, text, &a) == 1 else { return nil }
            return withUnsafeBytes(of: &a) { Array($0) }
        }
        var a = in_addr()
        guard inet_pton(AF_INET, text, &a) == 1 else { return nil }
        return withUnsafeBytes(of: &a) { Array($0) }
    }

    public func contains(_ address: [UInt8]) -> Bool {
        guard address.count == bytes.count else { return false }
        var bits = prefix
        var i = 0
        while bits > 0 {
            let mask: UInt8 = bits >= 8 ? 0xFF : UInt8(0xFF << (8 - bits) & 0xFF)
            if address[i] & mask != bytes[i] & mask { return false }
            bits -= 8
            i += 1
        }
        return true
    }
}
