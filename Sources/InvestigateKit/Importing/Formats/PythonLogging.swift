import Foundation

/// The head line of one Python `logging` record, as a formatter wrote it.
struct PythonLogRecord: Equatable {
    /// `%(asctime)s` as a wall-clock reading taken as UTC, µs (Python writes local time, no zone).
    var wallClock: Int64?
    /// `%(asctime)s` exactly as written, to recognise the same record in two files.
    var wallClockText: String?
    /// Seconds east of UTC when the stamp carries a zone (a `datefmt` with `%z`, `Z`, ` UTC`).
    var offset: Int?
    var level: String?
    var logger: String?
    var module: String?
    var message: String = ""
    var pid: Int?
    /// Other attributes (`thread`, `filename`, `lineno`, `funcName`, …) by attribute name.
    var attributes: [String: String] = [:]
}

/// A Python logging format string (`%(asctime)s %(levelname)s %(name)s: %(message)s`) compiled
/// into a matcher for the lines it produces. Used for the built-in Flask/Python layouts and for
/// `--app-log-format`.
struct PythonLogFormat: Sendable, Equatable {
    enum Attribute: Equatable, Sendable {
        case asctime, levelname, name, module, message, process, msecs
        case other(String)
    }

    enum Piece: Equatable, Sendable {
        case literal([UInt8])
        /// `padded` when the conversion has a width (`%(levelname)-8s`): spaces around it vary.
        case attribute(Attribute, padded: Bool)
    }

    let definition: String
    let pieces: [Piece]

    /// Layouts seen in Flask/Python app logs, most specific first (the last one is the loosest).
    static let builtIn: [PythonLogFormat] = builtInDefinitions.compactMap { try? PythonLogFormat($0) }

    static let builtInDefinitions: [String] = [
        "%(levelname)s %(asctime)s [%(module)s] %(message)s",
        "[%(asctime)s] %(levelname)s in %(module)s: %(message)s",
        "%(asctime)s - %(name)s - %(levelname)s - %(message)s",
        "[%(asctime)s] [%(levelname)s] %(name)s: %(message)s",
        "%(asctime)s [%(levelname)s] %(name)s: %(message)s",
        "%(asctime)s [%(levelname)s] %(message)s",
        "%(asctime)s [%(process)d] %(levelname)s %(name)s: %(message)s",
        // Django's documented "verbose" formatter: `{levelname} {asctime} {module} {process:d} {thread:d} {message}`.
        "%(levelname)s %(asctime)s %(module)s %(process)d %(thread)d %(message)s",
        "%(asctime)s %(levelname)s [%(name)s] %(message)s",
        "%(asctime)s %(levelname)s %(name)s: %(message)s",
        "%(asctime)s %(levelname)s %(message)s",
        "%(levelname)s:%(name)s:%(message)s",
    ]

    /// Level names the stdlib and common libraries emit; a stricter check than "uppercase word"
    /// keeps loose layouts from matching ordinary text.
    static let levels: Set<String> = ["DEBUG", "INFO", "WARNING", "WARN", "ERROR", "CRITICAL", "FATAL", "NOTSET", "TRACE", "EXCEPTION"]

    init(_ definition: String) throws {
        self.definition = definition
        var pieces: [Piece] = []
        var literal: [UInt8] = []
        let b = Array(definition.utf8)
        var i = 0
        func flushLiteral() {
            if !literal.isEmpty { pieces.append(.literal(literal)); literal = [] }
        }
        while i < b.count {
            if b[i] == 0x25, i + 1 < b.count, b[i + 1] == 0x25 { literal.append(0x25); i += 2; continue }
            guard b[i] == 0x25, i + 1 < b.count, b[i + 1] == 0x28 else { literal.append(b[i]); i += 1; continue }
            var j = i + 2
            while j < b.count, b[j] != 0x29 { j += 1 }
            guard j < b.count else { throw ImporterError("app log format: unterminated '%(' at offset \(i) in \(definition)") }
            let name = String(decoding: b[(i + 2)..<j], as: UTF8.self)
            j += 1
            // Conversion flags, width, precision, then the conversion character.
            var padded = false
            while j < b.count, [0x2D, 0x2B, 0x20, 0x23, 0x30].contains(b[j]) { j += 1 }
            while j < b.count, b[j] >= 0x30, b[j] <= 0x39 { padded = true; j += 1 }
            if j < b.count, b[j] == 0x2E { j += 1; while j < b.count, b[j] >= 0x30, b[j] <= 0x39 { j += 1 } }
            guard j < b.count, "sdfrixXeEgGc".utf8.contains(b[j]) else {
                throw ImporterError("app log format: '%(\(name))' lacks a conversion character (s, d, f) in \(definition)")
            }
            j += 1
            flushLiteral()
            let attribute: Attribute
            switch name {
            case "asctime": attribute = .asctime
            case "levelname": attribute = .levelname
            case "name": attribute = .name
            case "module": attribute = .module
            case "message": attribute = .message
            case "process": attribute = .process
            case "msecs": attribute = .msecs
            default: attribute = .other(name)
            }
            pieces.append(.attribute(attribute, padded: padded))
            i = j
        }
        flushLiteral()
        guard pieces.contains(.attribute(.message, padded: false)) || pieces.contains(.attribute(.message, padded: true)) else {
            throw ImporterError("app log format has no %(message)s: \(definition)")
        }
        self.pieces = pieces
    }

    /// The record head this line is, or nil when the line is not of this layout (a continuation).
    func match(_ b: UnsafeBufferPointer<UInt8>) -> PythonLogRecord? {
        // Reject on the first byte when the layout's opening is fixed.
        switch pieces.first {
        case .literal(let lit)?: if let c = lit.first, c != 0x20, b.first != c { return nil }
        case .attribute(.asctime, padded: false)?: if let c = b.first, c < 0x30 || c > 0x39 { return nil }
        case .attribute(.levelname, padded: false)?: if let c = b.first, c < 0x41 || c > 0x5A { return nil }
        default: break
        }
        var record = PythonLogRecord()
        var pos = 0
        var previousPadded = false
        for (index, piece) in pieces.enumerated() {
            let isLast = index == pieces.count - 1
            switch piece {
            case .literal(let lit):
                // Leading spaces of a literal absorb padding: one or more.
                let leading = lit.prefix { $0 == 0x20 }.count
                if leading > 0 {
                    let start = pos
                    while pos < b.count, b[pos] == 0x20 { pos += 1 }
                    if pos == start { return nil }
                } else if previousPadded {
                    while pos < b.count, b[pos] == 0x20 { pos += 1 }
                }
                let core = Array(lit.dropFirst(leading))
                guard Self.hasPrefix(b, at: pos, core) else { return nil }
                pos += core.count
                previousPadded = false
            case .attribute(let attribute, let padded):
                if padded { while pos < b.count, b[pos] == 0x20 { pos += 1 } }
                previousPadded = padded
                if attribute == .asctime {
                    // `%(asctime)s,%(msecs)03d`: the fraction is the next attribute's, not asctime's.
                    var fraction = true
                    if !isLast, case .literal(let next) = pieces[index + 1], next.first == 0x2C || next.first == 0x2E { fraction = false }
                    guard let (wall, length, offset) = Self.asctimeZoned(b, at: pos, fraction: fraction) else { return nil }
                    record.wallClock = wall
                    record.offset = offset
                    record.wallClockText = String(decoding: UnsafeBufferPointer(rebasing: b[pos..<(pos + length)]), as: UTF8.self)
                    pos += length
                    continue
                }
                // The extent of the value: to the end, to the next literal, or to the next space.
                var end: Int
                if isLast {
                    end = b.count
                } else if case .literal(let next) = pieces[index + 1], !next.allSatisfy({ $0 == 0x20 }) {
                    let needle = attribute == .message ? next : Array(next.drop { $0 == 0x20 })
                    let found = attribute == .message ? Self.lastIndex(of: needle, in: b, from: pos) : Self.firstIndex(of: needle, in: b, from: pos)
                    guard let f = found else { return nil }
                    end = f
                } else {
                    end = pos
                    while end < b.count, b[end] != 0x20 { end += 1 }
                }
                var valueEnd = end
                if attribute != .message { while valueEnd > pos, b[valueEnd - 1] == 0x20 { valueEnd -= 1 } }
                let value = UnsafeBufferPointer(rebasing: b[pos..<valueEnd])
                // Spaces after a value belong to the literal that follows (` in `, ` - `).
                pos = attribute == .message ? end : valueEnd
                switch attribute {
                case .message:
                    record.message = String(decoding: value, as: UTF8.self)
                case .levelname:
                    // Cheap byte test first: most lines that reach here are not log heads at all.
                    guard value.count >= 4, value.count <= 9, value.allSatisfy({ $0 >= 0x41 && $0 <= 0x5A }) else { return nil }
                    let level = String(decoding: value, as: UTF8.self)
                    guard Self.levels.contains(level) else { return nil }
                    record.level = level == "WARN" ? "WARNING" : level
                case .name, .module:
                    guard !value.isEmpty, !value.contains(0x20), value.count <= 200 else { return nil }
                    let text = String(decoding: value, as: UTF8.self)
                    if attribute == .name { record.logger = text } else { record.module = text }
                case .process:
                    guard let pid = ByteScanner.int(value), pid >= 0 else { return nil }
                    record.pid = Int(pid)
                case .msecs:
                    guard let ms = ByteScanner.int(value), ms >= 0, ms < 1000 else { return nil }
                    if let wall = record.wallClock, wall % 1_000_000 == 0 { record.wallClock = wall + ms * 1000 }
                case .other(let name):
                    guard !value.isEmpty else { return nil }
                    record.attributes[name] = String(decoding: value, as: UTF8.self)
                case .asctime:
                    break
                }
            }
        }
        guard pos == b.count else { return nil }
        return record
    }

    /// `YYYY-MM-DD HH:MM:SS` with an optional `,mmm` / `.ffffff` fraction → (wall µs, length).
    static func asctime(_ b: UnsafeBufferPointer<UInt8>, at start: Int, fraction: Bool = true) -> (Int64, Int)? {
        var s = ByteScanner(b, pos: start)
        guard let y = s.digits(4), s.skip(0x2D), let mo = s.digits(2), s.skip(0x2D), let d = s.digits(2) else { return nil }
        guard s.skip(0x20) || s.skip(0x54) else { return nil }
        guard let h = s.digits(2), s.skip(0x3A), let mi = s.digits(2), s.skip(0x3A), let sec = s.digits(2) else { return nil }
        guard CivilTime.isValid(year: y, month: mo, day: d, hour: h, minute: mi, second: sec) else { return nil }
        var micro = 0
        if fraction, let sep = s.peek(), sep == 0x2C || sep == 0x2E, let first = s.peek(1), first >= 0x30, first <= 0x39 {
            s.pos += 1
            var digits = 0
            while let c = s.peek(), c >= 0x30, c <= 0x39 {
                if digits < 6 { micro = micro * 10 + Int(c - 0x30) }
                digits += 1
                s.pos += 1
            }
            for _ in min(digits, 6)..<6 { micro *= 10 }
        }
        return (CivilTime.micros(year: y, month: mo, day: d, hour: h, minute: mi, second: sec, micro: micro), s.pos - start)
    }

    /// `asctime` followed by the zone a `datefmt` may write: `Z`, `+09:00`, `+0900`, or ` UTC` /
    /// ` GMT` (`logging.Formatter.converter = time.gmtime` setups) → (wall µs, length, seconds east).
    static func asctimeZoned(_ b: UnsafeBufferPointer<UInt8>, at start: Int, fraction: Bool = true) -> (Int64, Int, Int?)? {
        guard let (wall, length) = asctime(b, at: start, fraction: fraction) else { return nil }
        var s = ByteScanner(b, pos: start + length)
        func ends(_ s: ByteScanner) -> Bool { s.atEnd || s.peek() == 0x20 || s.peek() == 0x5D || s.peek() == 0x2C }
        if s.peek() == 0x5A {
            s.pos += 1
            if ends(s) { return (wall, s.pos - start, 0) }
            return (wall, length, nil)
        }
        if let sign = s.peek(), sign == 0x2B || sign == 0x2D {
            s.pos += 1
            if let oh = s.digits(2) {
                _ = s.skip(0x3A)
                if let om = s.digits(2), oh <= 14, om < 60, ends(s) {
                    return (wall, s.pos - start, (sign == 0x2D ? -1 : 1) * (oh * 3600 + om * 60))
                }
            }
            return (wall, length, nil)
        }
        if s.peek() == 0x20, s.peek(4) == nil || s.peek(4) == 0x20 {
            for word in ["UTC", "GMT"] where hasPrefix(b, at: start + length + 1, Array(word.utf8)) {
                return (wall, length + 4, 0)
            }
        }
        return (wall, length, nil)
    }

    static func hasPrefix(_ b: UnsafeBufferPointer<UInt8>, at pos: Int, _ lit: [UInt8]) -> Bool {
        guard pos + lit.count <= b.count else { return false }
        for k in 0..<lit.count where b[pos + k] != lit[k] { return false }
        return true
    }

    static func firstIndex(of needle: [UInt8], in b: UnsafeBufferPointer<UInt8>, from: Int) -> Int? {
        guard !needle.isEmpty, b.count >= needle.count else { return nil }
        var i = from
        while i + needle.count <= b.count {
            if hasPrefix(b, at: i, needle) { return i }
            i += 1
        }
        return nil
    }

    static func lastIndex(of needle: [UInt8], in b: UnsafeBufferPointer<UInt8>, from: Int) -> Int? {
        guard !needle.isEmpty, b.count >= needle.count else { return nil }
        var i = b.count - needle.count
        while i >= from {
            if hasPrefix(b, at: i, needle) { return i }
            i -= 1
        }
        return nil
    }
}

/// What an app's own request/response messages say about the request.
enum AppMessage {
    /// `Request: GET http://example.com:443/api/ping` → method, host, path;
    /// `Response: 400 http://…` → status (an access record); Flask's
    /// `Exception on /api/orders [POST]` → method and path.
    static func interpret(_ message: String, into event: inout Event) {
        if message.hasPrefix("Request: ") {
            let parts = message.dropFirst(9).split(separator: " ", maxSplits: 1, omittingEmptySubsequences: true)
            guard parts.count == 2, isMethod(parts[0]) else { return }
            event.method = String(parts[0])
            let target = parts[1].split(separator: " ", maxSplits: 1).first.map(String.init) ?? ""
            if !target.isEmpty { splitTarget(target, into: &event); event.extra["url"] = target }
        } else if message.hasPrefix("Response: ") {
            let parts = message.dropFirst(10).split(separator: " ", maxSplits: 1, omittingEmptySubsequences: true)
            guard let first = parts.first, first.count == 3, let status = Int(first), (100...599).contains(status) else { return }
            event.status = status
            event.kind = .access
            if parts.count == 2 {
                let target = parts[1].split(separator: " ", maxSplits: 1).first.map(String.init) ?? ""
                if !target.isEmpty { splitTarget(target, into: &event); event.extra["url"] = target }
            }
        } else if message.hasPrefix("Exception on "), message.hasSuffix("]"),
                  let open = message.range(of: " [", options: .backwards) {
            // The last " [" may be the prefix's own space (`Exception on [GET]`): no path then, and
            // a range from after the prefix to it would run backwards (a crash on hostile lines).
            let pathStart = message.index(message.startIndex, offsetBy: 13)
            guard open.lowerBound >= pathStart else { return }
            let path = message[pathStart..<open.lowerBound]
            let method = message[open.upperBound..<message.index(before: message.endIndex)]
            guard isMethod(method), !path.isEmpty else { return }
            event.method = String(method)
            splitTarget(String(path), into: &event)
        }
    }

    static func isMethod(_ s: Substring) -> Bool {
        !s.isEmpty && s.count <= 20 && s.utf8.allSatisfy { ($0 >= 0x41 && $0 <= 0x5A) || $0 == 0x2D || $0 == 0x5F }
    }
}
