import Foundation

/// Log content is attacker-controlled. Everything that came from a log passes through one of these
/// before it reaches a terminal, Markdown, or a mermaid block (SQL always binds parameters).
public enum Escape {
    /// For terminals: control characters (C0, DEL, C1) and bidirectional overrides become visible
    /// escapes (`\x1b`, `\u{202e}`), so a log line cannot move the cursor, recolour, retitle the
    /// window or reorder what is shown. Lines longer than `limit` characters are cut with a marker.
    public static func terminal(_ text: String, limit: Int? = nil) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count)
        var count = 0
        for scalar in text.unicodeScalars {
            if let limit, count >= limit {
                out += "…[\(text.unicodeScalars.count - count) more characters]"
                break
            }
            count += 1
            let v = scalar.value
            if v < 0x20 || v == 0x7F {
                switch v {
                case 0x09: out += "\\t"
                case 0x0A: out += "\\n"
                case 0x0D: out += "\\r"
                default: out += String(format: "\\x%02x", v)
                }
            } else if (0x80...0x9F).contains(v) || isBidiControl(v) || isInvisibleFormat(v) {
                out += String(format: "\\u{%04x}", v)
            } else if let byte = PathBytes.escapedByte(scalar) {
                // A byte of a file name that is not UTF-8 (`PathBytes`).
                out += String(format: "\\x%02x", byte)
            } else {
                out.unicodeScalars.append(scalar)
            }
        }
        return out
    }

    /// Raw bytes for a terminal: invalid UTF-8 shows as `\xNN` instead of vanishing into U+FFFD.
    public static func terminal(bytes: [UInt8], limit: Int? = nil) -> String {
        var text = ""
        var i = 0
        while i < bytes.count {
            let b = bytes[i]
            if b < 0x80 { text.unicodeScalars.append(Unicode.Scalar(b)); i += 1; continue }
            let len = b >= 0xF0 ? 4 : b >= 0xE0 ? 3 : b >= 0xC0 ? 2 : 1
            if len > 1, i + len <= bytes.count, let s = String(validatingUTF8: bytes[i..<i + len].map { CChar(bitPattern: $0) } + [0]) {
                text += s
                i += len
            } else {
                text += String(format: "\u{FFFE}%02x", b)
                i += 1
            }
        }
        return terminal(text, limit: limit).replacingOccurrences(of: "\u{FFFE}", with: "\\x")
    }

    /// Characters that show nothing yet split or hide text: line and paragraph separators (which
    /// some renderers break a line at), zero-width spaces and joiners, the BOM, the soft hyphen.
    static func isInvisibleFormat(_ v: UInt32) -> Bool {
        (0x200B...0x200D).contains(v) || v == 0x2028 || v == 0x2029 || v == 0x2060 || v == 0xFEFF || v == 0x00AD
    }

    /// For a CSV cell (or another data file a terminal may print): as `terminal`, but line breaks
    /// and tabs stay, since the cell is quoted and a multi-line message is one value.
    public static func dataCell(_ text: String) -> String {
        guard text.unicodeScalars.contains(where: { v in
            let x = v.value
            return (x < 0x20 && x != 0x09 && x != 0x0A && x != 0x0D) || x == 0x7F || (0x80...0x9F).contains(x) || isBidiControl(x) || isInvisibleFormat(x)
                || PathBytes.escapedByte(v) != nil
        }) else { return text }
        var out = ""
        var line = ""
        for scalar in text.unicodeScalars {
            if scalar == "\n" || scalar == "\r" || scalar == "\t" {
                out += terminal(line)
                out.unicodeScalars.append(scalar)
                line = ""
            } else {
                line.unicodeScalars.append(scalar)
            }
        }
        return out + terminal(line)
    }

    static func isBidiControl(_ v: UInt32) -> Bool {
        (0x202A...0x202E).contains(v) || (0x2066...0x2069).contains(v) || v == 0x200E || v == 0x200F || v == 0x061C
    }
}
