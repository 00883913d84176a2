import Foundation

/// Log text in Markdown. Everything a log line carries (paths, user agents, messages) is
/// attacker-controlled; in a report it must stay text: no table cell split by a `|`, no heading or
/// list started by a leading `#` or `-`, no link, image, autolink, HTML tag or math formula, no
/// code span or fence closed early, and no terminal escape that would act in a pager.
///
/// The escapes keep the raw Markdown readable in a pager: only what could take effect is escaped.
public enum Markdown {
    /// Inline text (a table cell, a list item, a sentence). Control characters and bidi overrides
    /// become visible escapes first (`\x1b`, `\n`), so the result is always one line. `lineStart`:
    /// the text begins a line (a paragraph, a list item's content), where `#`, `-`, `1.` would start
    /// a block; mid-line and in table cells they are plain text and stay unescaped (IP addresses).
    public static func text(_ raw: String, limit: Int? = nil, lineStart: Bool = false) -> String {
        let visible = Escape.terminal(raw, limit: limit)
        var out = ""
        out.reserveCapacity(visible.utf8.count + 8)
        let scalars = Array(visible.unicodeScalars)
        var i = 0
        while i < scalars.count {
            let s = scalars[i]
            switch s {
            case "\\", "`", "*", "_", "~", "[", "]", "|", "$", "^":
                // `$` is GitHub math, `~` strikethrough, `^` footnote markers, `[`/`]` links and images.
                out += "\\"
                out.unicodeScalars.append(s)
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "&": out += "&amp;"
            case "@":
                // GitHub turns `user@host.tld` and `@name` into links or mentions.
                out += "&#64;"
            case ":" where i + 2 < scalars.count && scalars[i + 1] == "/" && scalars[i + 2] == "/":
                // `scheme://` would become an autolink; the entity breaks the pattern, not the text.
                out += "&#58;"
            case "." where i >= 3 && isWWW(scalars, before: i):
                out += "&#46;"
            default:
                out.unicodeScalars.append(s)
            }
            i += 1
        }
        return lineStart ? neutraliseLineStart(out) : out
    }

    /// A table cell: inline text that is never empty (an empty cell reads as a missing column).
    public static func cell(_ raw: String, limit: Int? = nil) -> String {
        let t = text(raw, limit: limit)
        return t.isEmpty ? " " : t
    }

    /// An inline code span whose fence is longer than any backtick run inside (CommonMark), padded
    /// when the content starts or ends with a backtick. Not for table cells: a `|` inside a code
    /// span still splits a GFM table row, so cells use `text`.
    public static func codeSpan(_ raw: String, limit: Int? = nil) -> String {
        let visible = Escape.terminal(raw, limit: limit)
        let fence = String(repeating: "`", count: longestRun(of: "`", in: visible) + 1)
        let pad = visible.hasPrefix("`") || visible.hasSuffix("`") || visible.isEmpty ? " " : ""
        return fence + pad + visible + pad + fence
    }

    /// A fenced code block quoting lines verbatim. The fence is longer than any backtick run in the
    /// text, so no line can close it; control characters (except tab) become visible escapes, one
    /// record line per block line. `info` is ours (e.g. `text`, `mermaid`), never log text.
    public static func codeBlock(_ raw: String, info: String = "text") -> String {
        let lines = raw.split(separator: "\n", omittingEmptySubsequences: false).map { line -> String in
            line.split(separator: "\t", omittingEmptySubsequences: false).map { Escape.terminal(String($0)) }.joined(separator: "\t")
        }
        let body = lines.joined(separator: "\n")
        let fence = String(repeating: "`", count: max(3, longestRun(of: "`", in: body) + 1))
        return "\(fence)\(info)\n\(body)\n\(fence)\n"
    }

    /// A fence for a block whose content is ours (a mermaid diagram built from escaped labels).
    static func fence(for body: String) -> String {
        String(repeating: "`", count: max(3, longestRun(of: "`", in: body) + 1))
    }

    static func longestRun(of c: Character, in text: String) -> Int {
        var best = 0, run = 0
        for ch in text {
            if ch == c { run += 1; best = max(best, run) } else { run = 0 }
        }
        return best
    }

    private static func isWWW(_ s: [Unicode.Scalar], before i: Int) -> Bool {
        let w = s[(i - 3)..<i].map { Character($0).lowercased() }.joined()
        guard w == "www" else { return false }
        return i == 3 || !(CharacterSet.alphanumerics.contains(s[i - 4]))
    }

    /// At the start of a line, `#` makes a heading, `-`/`+`/`*` a list or rule, `1.`/`1)` an ordered
    /// list, `=` a setext underline and `>` a quote (already an entity).
    private static func neutraliseLineStart(_ s: String) -> String {
        guard let first = s.unicodeScalars.first else { return s }
        switch first {
        case "#", "-", "+", "=": return "\\" + s
        case "0"..."9":
            // An ordered list needs 1-9 digits, `.` or `)`, then a space or the end of the line.
            let digits = s.unicodeScalars.prefix { ("0"..."9").contains($0) }
            let rest = Array(s.unicodeScalars.dropFirst(digits.count))
            guard digits.count <= 9, let next = rest.first, next == "." || next == ")", rest.count == 1 || rest[1] == " " else { return s }
            var out = String(String.UnicodeScalarView(digits))
            out += "\\"
            out += String(String.UnicodeScalarView(rest))
            return out
        default: return s
        }
    }
}

/// Log text in mermaid diagrams. A label could otherwise end a statement (`;`, a newline), start a
/// comment (`%%`), draw an arrow (`-->`), break out of quotes (`"`), inject an entity (`#`), or
/// close the surrounding Markdown fence (a backtick run). Everything outside a small allowlist is
/// written as a mermaid entity code (`#59;`), which mermaid shows as the character itself.
public enum Mermaid {
    public static func label(_ raw: String, limit: Int = 80) -> String {
        let visible = Escape.terminal(raw, limit: limit)
        var out = ""
        for s in visible.unicodeScalars {
            let v = s.value
            let safe = (v >= 0x30 && v <= 0x39) || (v >= 0x41 && v <= 0x5A) || (v >= 0x61 && v <= 0x7A)
                || s == " " || s == "/" || s == "." || s == "_" || s == "," || s == "=" || s == "?" || s == "+" || s == "'"
                || s == "(" || s == ")" || s == "×" || s == "…" || (v > 0x7F && !Escape.isBidiControl(v))
            if safe { out.unicodeScalars.append(s) } else { out += "#\(v);" }
        }
        // A trailing space is dropped by mermaid; a label made only of spaces reads as missing.
        return out.trimmingCharacters(in: .whitespaces).isEmpty ? "#160;" : out
    }
}
