import Foundation

/// AWS WAF text transformations, applied in `Priority` order before a statement inspects a field.
/// https://docs.aws.amazon.com/waf/latest/developerguide/waf-rule-statement-transformation.html
public enum TextTransform: String, Sendable, CaseIterable {
    case none = "NONE"
    case lowercase = "LOWERCASE"
    case urlDecode = "URL_DECODE"
    case urlDecodeUni = "URL_DECODE_UNI"
    case htmlEntityDecode = "HTML_ENTITY_DECODE"
    case compressWhiteSpace = "COMPRESS_WHITE_SPACE"
    case cmdLine = "CMD_LINE"
    case removeNulls = "REMOVE_NULLS"
    case replaceNulls = "REPLACE_NULLS"
    case normalizePath = "NORMALIZE_PATH"
    case normalizePathWin = "NORMALIZE_PATH_WIN"
    case base64Decode = "BASE64_DECODE"
    case hexDecode = "HEX_DECODE"

    /// Names WAF accepts that replay does not implement: a statement using one is reported as
    /// unsupported (by name) and never decides a request.
    public static let unimplemented: Set<String> = [
        "MD5", "REPLACE_COMMENTS", "ESCAPE_SEQ_DECODE", "SQL_HEX_DECODE", "CSS_DECODE", "JS_DECODE",
        "BASE64_DECODE_EXT", "UTF8_TO_UNICODE",
    ]

    public func apply(_ input: [UInt8]) -> [UInt8] {
        switch self {
        case .none: return input
        case .lowercase: return input.map { $0 >= 65 && $0 <= 90 ? $0 + 32 : $0 }
        case .urlDecode: return Self.percentDecode(input, unicode: false)
        case .urlDecodeUni: return Self.percentDecode(input, unicode: true)
        case .htmlEntityDecode: return Self.htmlDecode(input)
        case .compressWhiteSpace: return Self.compress(input)
        case .cmdLine: return Self.cmdLine(input)
        case .removeNulls: return input.filter { $0 != 0 }
        case .replaceNulls: return input.map { $0 == 0 ? 0x20 : $0 }
        case .normalizePath: return Self.normalize(input)
        case .normalizePathWin: return Self.normalize(input.map { $0 == UInt8(ascii: "\\") ? UInt8(ascii: "/") : $0 })
        case .base64Decode:
            var text = String(decoding: input, as: UTF8.self).trimmingCharacters(in: .whitespaces)
            while text.count % 4 != 0 { text += "=" }
            return Data(base64Encoded: text).map { Array($0) } ?? input
        case .hexDecode:
            var out: [UInt8] = []
            var i = 0
            while i + 1 < input.count, let h = Self.hex(input[i]), let l = Self.hex(input[i + 1]) { out.append(h << 4 | l); i += 2 }
            return i == input.count ? out : input
        }
    }

    public static func apply(_ transforms: [TextTransform], to input: [UInt8]) -> [UInt8] {
        transforms.reduce(input) { $1.apply($0) }
    }

    static func hex(_ b: UInt8) -> UInt8? {
        switch b {
        case 48...57: return b - 48
        case 65...70: return b - 55
        case 97...102: return b - 87
        default: return nil
        }
    }

    static func percentDecode(_ s: [UInt8], unicode: Bool) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(s.count)
        var i = 0
        while i < s.count {
            if s[i] == UInt8(ascii: "%") {
                if unicode, i + 5 < s.count, s[i + 1] | 0x20 == UInt8(ascii: "u"),
                   let a = hex(s[i + 2]), let b = hex(s[i + 3]), let c = hex(s[i + 4]), let d = hex(s[i + 5]) {
                    let v = UInt32(a) << 12 | UInt32(b) << 8 | UInt32(c) << 4 | UInt32(d)
                    out += Array(String(Character(Unicode.Scalar(v) ?? "\u{FFFD}")).utf8)
                    i += 6
                    continue
                }
                if i + 2 < s.count, let h = hex(s[i + 1]), let l = hex(s[i + 2]) {
                    out.append(h << 4 | l)
                    i += 3
                    continue
                }
            }
            out.append(s[i])
            i += 1
        }
        return out
    }

    static let entities: [String: String] = ["quot": "\"", "amp": "&", "lt": "<", "gt": ">", "nbsp": "\u{00A0}", "apos": "'"]

    static func htmlDecode(_ s: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        var i = 0
        while i < s.count {
            if s[i] == UInt8(ascii: "&"), let semi = s[(i + 1)...].prefix(12).firstIndex(of: UInt8(ascii: ";")) {
                let name = String(decoding: s[(i + 1)..<semi], as: UTF8.self)
                var decoded: String?
                if name.hasPrefix("#x") || name.hasPrefix("#X") {
                    decoded = UInt32(name.dropFirst(2), radix: 16).flatMap(Unicode.Scalar.init).map { String(Character($0)) }
                } else if name.hasPrefix("#") {
                    decoded = UInt32(name.dropFirst()).flatMap(Unicode.Scalar.init).map { String(Character($0)) }
                } else {
                    decoded = entities[name.lowercased()]
                }
                if let decoded {
                    out += Array(decoded.utf8)
                    i = semi + 1
                    continue
                }
            }
            out.append(s[i])
            i += 1
        }
        return out
    }

    static func isSpace(_ b: UInt8) -> Bool { b == 0x20 || (b >= 0x09 && b <= 0x0D) || b == 0xA0 }

    static func compress(_ s: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        var lastSpace = false
        for b in s {
            if isSpace(b) {
                if !lastSpace { out.append(0x20) }
                lastSpace = true
            } else {
                out.append(b)
                lastSpace = false
            }
        }
        return out
    }

    /// WAF's CMD_LINE: delete `\ " ' ^`, delete spaces before `/` and `(`, replace `,` and `;` with
    /// a space, compress white space, lowercase.
    static func cmdLine(_ s: [UInt8]) -> [UInt8] {
        var step: [UInt8] = []
        for b in s {
            switch b {
            case UInt8(ascii: "\\"), UInt8(ascii: "\""), UInt8(ascii: "'"), UInt8(ascii: "^"): continue
            case UInt8(ascii: ","), UInt8(ascii: ";"): step.append(0x20)
            case UInt8(ascii: "/"), UInt8(ascii: "("):
                while let last = step.last, isSpace(last) { step.removeLast() }
                step.append(b)
            default: step.append(b)
            }
        }
        return TextTransform.lowercase.apply(compress(step))
    }

    /// Removes repeated slashes, `/./` and `/../` (a back-reference above the root is dropped).
    static func normalize(_ s: [UInt8]) -> [UInt8] {
        let slash = UInt8(ascii: "/")
        let absolute = s.first == slash
        var parts: [ArraySlice<UInt8>] = []
        for part in s.split(separator: slash, omittingEmptySubsequences: true) {
            if part.elementsEqual([UInt8(ascii: ".")]) { continue }
            if part.elementsEqual([UInt8(ascii: "."), UInt8(ascii: ".")]) { if !parts.isEmpty { parts.removeLast() }; continue }
            parts.append(part)
        }
        var out: [UInt8] = absolute ? [slash] : []
        for (i, part) in parts.enumerated() {
            if i > 0 { out.append(slash) }
            out += part
        }
        if s.count > 1, s.last == slash, !parts.isEmpty { out.append(slash) }
        return out
    }
}
