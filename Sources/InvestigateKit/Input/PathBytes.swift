import Foundation

/// File names are bytes, not text: Linux allows any byte but `/` and NUL, and a log folder copied
/// from another system may hold names that are not UTF-8. A Swift `String` cannot hold such bytes,
/// so a path is carried as a string in which each byte that is not part of valid UTF-8 (and each
/// byte of a character in the range used for this, U+F780…U+F7FF) stands as the private-use
/// character U+F700 + byte. The mapping is one-to-one: `bytes(of:)` gives back exactly the bytes
/// `string(_:)` was made from, which is what `open`, `stat` and `opendir` receive. Displays show
/// such a byte as `\xNN` (`Escape.terminal`); the database stores the string as it is.
public enum PathBytes {
    static let base: UInt32 = 0xF700
    static let escaped: ClosedRange<UInt32> = 0xF780...0xF7FF

    /// The path string for a file name's bytes.
    public static func string<C: Collection>(_ bytes: C) -> String where C.Element == UInt8 {
        let b = Array(bytes)
        var out = String.UnicodeScalarView()
        var i = 0
        while i < b.count {
            let lead = b[i]
            if lead < 0x80 { out.append(Unicode.Scalar(lead)); i += 1; continue }
            let length = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC2 ? 2 : 0
            if length > 0, i + length <= b.count,
               let s = String(validating: b[i..<i + length], as: UTF8.self), let scalar = s.unicodeScalars.first,
               s.unicodeScalars.count == 1, !escaped.contains(scalar.value) {
                out.append(scalar)
                i += length
            } else {
                out.append(Unicode.Scalar(base + UInt32(lead))!)
                i += 1
            }
        }
        return String(out)
    }

    /// The bytes a path string stands for.
    public static func bytes(of path: String) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(path.utf8.count)
        for scalar in path.unicodeScalars {
            if let byte = escapedByte(scalar) { out.append(byte) } else { out.append(contentsOf: String(scalar).utf8) }
        }
        return out
    }

    /// The raw byte a private-use character stands for, if it is one.
    public static func escapedByte(_ scalar: Unicode.Scalar) -> UInt8? {
        escaped.contains(scalar.value) ? UInt8(scalar.value - base) : nil
    }

    /// Calls `body` with the path as the NUL-terminated bytes the system expects.
    public static func withCString<T>(_ path: String, _ body: (UnsafePointer<CChar>) throws -> T) rethrows -> T {
        var raw = bytes(of: path)
        raw.append(0)
        return try raw.withUnsafeBufferPointer { b in
            try b.withMemoryRebound(to: CChar.self) { try body($0.baseAddress!) }
        }
    }

    /// The names in a directory, as path strings, without `.` and `..`.
    public static func directoryEntries(_ path: String) throws -> [String] {
        guard let dir = withCString(path, { opendir($0) }) else {
            throw InputError.unreadable(path, String(cString: strerror(errno)))
        }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name: [UInt8] = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                Array(raw.prefix { $0 != 0 })
            }
            if name == [0x2E] || name == [0x2E, 0x2E] { continue }
            names.append(string(name))
        }
        return names
    }
}
