import Foundation

/// An nginx `log_format` definition compiled into a byte-level parser (`--nginx-log-format`).
///
/// Accepts the definition as it stands in nginx.conf (`log_format main escape=json '…' '…';`,
/// concatenated quoted pieces included) or just the format string. The format becomes a leading
/// literal followed by variables, each ending at the whole literal that follows it in the format;
/// the format's final literal is anchored at the end of the line, so the last value may contain it.
public struct NginxLogFormat: Sendable, Equatable {
    /// How nginx escaped values (`escape=` parameter). Kept for reference: matching is the same in
    /// every mode, since a `\"` never ends a quoted value (json escaping writes it, default escaping
    /// writes `\x22` and never leaves a bare backslash).
    public enum Escaping: String, Sendable {
        case `default`, json, none
    }

    /// What a variable feeds in the event.
    enum Kind: Sendable, Equatable {
        case remoteAddr, remoteUser, timeLocal, timeISO8601, msec
        case request, requestMethod, requestURI, uri, args, serverProtocol
        case status, bodyBytesSent, bytesSent, requestTime
        /// `$upstream_*` timings and addresses: lists such as `0.001, 0.002 : 0.010`.
        case upstreamList
        case userAgent, referer, forwardedFor
        case host, httpHost, serverName
        case requestID, traceID, connection, pid, hostname
        case other

        init(variable name: String) {
            switch name {
            case "remote_addr": self = .remoteAddr
            case "remote_user": self = .remoteUser
            case "time_local": self = .timeLocal
            case "time_iso8601": self = .timeISO8601
            case "msec": self = .msec
            case "request": self = .request
            case "request_method": self = .requestMethod
            case "request_uri": self = .requestURI
            case "uri", "document_uri": self = .uri
            case "args", "query_string": self = .args
            case "server_protocol": self = .serverProtocol
            case "status": self = .status
            case "body_bytes_sent": self = .bodyBytesSent
            case "bytes_sent": self = .bytesSent
            case "request_time": self = .requestTime
            case "upstream_response_time", "upstream_connect_time", "upstream_header_time", "upstream_addr",
                 "upstream_status", "upstream_response_length", "upstream_bytes_received", "upstream_bytes_sent",
                 "upstream_cache_status":
                self = .upstreamList
            case "http_user_agent": self = .userAgent
            case "http_referer": self = .referer
            case "http_x_forwarded_for": self = .forwardedFor
            case "host": self = .host
            case "http_host": self = .httpHost
            case "server_name": self = .serverName
            case "request_id": self = .requestID
            case "http_x_amzn_trace_id": self = .traceID
            case "connection": self = .connection
            case "pid": self = .pid
            case "hostname": self = .hostname
            default: self = .other
            }
        }
    }

    /// One variable and the literal that ends it (empty for a variable that ends the line).
    struct Field: Sendable, Equatable {
        var name: String
        var kind: Kind
        var delimiter: [UInt8]
    }

    /// The definition as given.
    public let definition: String
    /// The `log_format` name, when the definition carried one.
    public let name: String?
    public let escaping: Escaping
    /// The format string after concatenating its quoted pieces.
    public let format: String
    let leading: [UInt8]
    let fields: [Field]

    /// The variable names in order, without `$`.
    public var variables: [String] { fields.map(\.name) }

    public init(definition: String) throws {
        self.definition = definition
        let directive = try Self.splitDirective(definition)
        name = directive.name
        escaping = directive.escaping
        format = directive.format
        (leading, fields) = try Self.compile(directive.format)
    }

    public func makeParser(_ context: ParseContext) throws -> any RecordParser {
        let hints = context.hints
        let directory = context.directory
        let path = context.path, position = context.position
        return NginxLogFormatParser(format: self, learnZone: { zone in
            hints.learnZone(zone, directory: directory, from: path, position: position)
        })
    }

    // MARK: - Reading the directive

    private struct Directive {
        var name: String?
        var escaping: Escaping
        var format: String
    }

    private enum Token {
        case word(String)
        case quoted(String)
    }

    /// Splits `log_format name [escape=…] 'piece' 'piece';` (every part but the format optional)
    /// the way nginx's configuration reader does: quoted pieces are concatenated.
    private static func splitDirective(_ text: String) throws -> Directive {
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !trimmed.isEmpty else { throw ImporterError("--nginx-log-format: the definition is empty") }
        let firstWord = trimmed.prefix { $0 != " " && $0 != "\t" && $0 != "\n" }
        let nginxSyntax = firstWord == "log_format" || trimmed.hasPrefix("'") || trimmed.hasPrefix("\"")
            || (!firstWord.contains("$") && (trimmed.contains("'") || trimmed.contains("\"")))
        guard nginxSyntax else {
            // A bare format string, spaces and all (`$remote_addr - $remote_user [$time_local] …`).
            var format = trimmed
            if format.hasSuffix(";") { format.removeLast() }
            return Directive(name: nil, escaping: .default, format: format)
        }
        let tokens = try tokenize(trimmed)
        var words: [String] = []
        var pieces: [String] = []
        for token in tokens {
            switch token {
            case .word(let w):
                guard pieces.isEmpty else {
                    throw ImporterError("--nginx-log-format: unquoted text '\(w)' after the format strings; quote every piece of the format")
                }
                words.append(w)
            case .quoted(let q):
                pieces.append(q)
            }
        }
        if words.first == "log_format" { words.removeFirst() }
        var escaping = Escaping.default
        if let last = words.last, last.hasPrefix("escape=") {
            let value = String(last.dropFirst("escape=".count))
            guard let e = Escaping(rawValue: value) else {
                throw ImporterError("--nginx-log-format: unknown escape=\(value) (nginx knows default, json, none)")
            }
            escaping = e
            words.removeLast()
        }
        guard words.count <= 1 else {
            throw ImporterError("--nginx-log-format: expected `log_format NAME [escape=…] 'format'`, found the words \(words.joined(separator: " "))")
        }
        // Unquoted format without the directive keyword: `main $remote_addr …` is not nginx syntax.
        if pieces.isEmpty, let only = words.first, only.contains("$") {
            return Directive(name: nil, escaping: escaping, format: only)
        }
        if pieces.isEmpty, trimmed.hasPrefix("log_format") {
            // `log_format name $a - $b …` without quotes: everything after the name is the format.
            let rest = trimmed.dropFirst("log_format".count).drop { $0 == " " || $0 == "\t" }
            let afterName = rest.drop { $0 != " " && $0 != "\t" }.drop { $0 == " " || $0 == "\t" }
            var format = String(afterName)
            if format.hasSuffix(";") { format.removeLast() }
            guard !format.isEmpty else { throw ImporterError("--nginx-log-format: the definition has no format string") }
            return Directive(name: words.first, escaping: escaping, format: format)
        }
        guard !pieces.isEmpty else { throw ImporterError("--nginx-log-format: the definition has no format string") }
        return Directive(name: words.first, escaping: escaping, format: pieces.joined())
    }

    private static func tokenize(_ text: String) throws -> [Token] {
        var tokens: [Token] = []
        var chars = Array(text)
        // A trailing `;` ends the directive; anything after it is not part of the format.
        var i = 0
        while i < chars.count {
            let c = chars[i]
            if c == " " || c == "\t" || c == "\n" || c == "\r" { i += 1; continue }
            if c == ";" {
                let rest = String(chars[(i + 1)...]).trimmingCharacters(in: .whitespacesAndNewlines)
                guard rest.isEmpty else { throw ImporterError("--nginx-log-format: text after the closing ';': \(rest)") }
                chars = Array(chars[..<i])
                break
            }
            if c == "'" || c == "\"" {
                var piece = ""
                var j = i + 1
                var closed = false
                while j < chars.count {
                    let d = chars[j]
                    if d == "\\", j + 1 < chars.count {
                        // nginx's reader undoes \" \' \\ and turns \t \r \n into the control characters.
                        let e = chars[j + 1]
                        switch e {
                        case "t": piece.append("\t")
                        case "r": piece.append("\r")
                        case "n": piece.append("\n")
                        case "\"", "'", "\\": piece.append(e)
                        default: piece.append("\\"); piece.append(e)
                        }
                        j += 2
                        continue
                    }
                    if d == c { closed = true; break }
                    piece.append(d)
                    j += 1
                }
                guard closed else { throw ImporterError("--nginx-log-format: unterminated \(c)-quoted piece starting at character \(i + 1)") }
                tokens.append(.quoted(piece))
                i = j + 1
                continue
            }
            var j = i
            while j < chars.count, !" \t\n\r;'\"".contains(chars[j]) { j += 1 }
            tokens.append(.word(String(chars[i..<j])))
            i = j
        }
        return tokens
    }

    // MARK: - Compiling the format string

    private static func isNameByte(_ b: UInt8) -> Bool {
        (b >= 0x61 && b <= 0x7A) || (b >= 0x41 && b <= 0x5A) || (b >= 0x30 && b <= 0x39) || b == 0x5F
    }

    /// Splits the format into its leading literal and the variables, each with the literal after it.
    static func compile(_ format: String) throws -> (leading: [UInt8], fields: [Field]) {
        let bytes = Array(format.utf8)
        var leading: [UInt8] = []
        var fields: [Field] = []
        var literal: [UInt8] = []
        var i = 0
        func close(_ literal: inout [UInt8]) {
            if fields.isEmpty { leading = literal } else { fields[fields.count - 1].delimiter = literal }
            literal = []
        }
        while i < bytes.count {
            let b = bytes[i]
            guard b == 0x24 else { literal.append(b); i += 1; continue } // `$`
            var j = i + 1
            var name: [UInt8] = []
            if j < bytes.count, bytes[j] == 0x7B { // `${name}`
                j += 1
                while j < bytes.count, isNameByte(bytes[j]) { name.append(bytes[j]); j += 1 }
                guard j < bytes.count, bytes[j] == 0x7D, !name.isEmpty else {
                    throw ImporterError("--nginx-log-format: malformed ${…} at character \(i + 1) of the format")
                }
                j += 1
            } else {
                while j < bytes.count, isNameByte(bytes[j]) { name.append(bytes[j]); j += 1 }
                guard !name.isEmpty else {
                    throw ImporterError("--nginx-log-format: '$' at character \(i + 1) of the format is not followed by a variable name")
                }
            }
            let variable = String(decoding: name, as: UTF8.self).lowercased()
            if !fields.isEmpty, literal.isEmpty {
                throw ImporterError("--nginx-log-format: $\(fields[fields.count - 1].name) and $\(variable) follow each other with no text between them, so their values cannot be told apart")
            }
            close(&literal)
            fields.append(Field(name: variable, kind: Kind(variable: variable), delimiter: []))
            i = j
        }
        guard !fields.isEmpty else { throw ImporterError("--nginx-log-format: the format has no $variables") }
        close(&literal)
        return (leading, fields)
    }
}

/// Reads lines written with a compiled `log_format`.
struct NginxLogFormatParser: RecordParser {
    let format: NginxLogFormat
    let learnZone: ((ZoneSpec) -> Void)?
    private var dst = DSTZoneInference()
    private var zoneLearnt = false
    private var ranges: [Range<Int>]

    init(format: NginxLogFormat, learnZone: ((ZoneSpec) -> Void)?) {
        self.format = format
        self.learnZone = learnZone
        ranges = Array(repeating: 0..<0, count: format.fields.count)
    }

    mutating func consume(_ line: Line, into sink: inout RecordSink) {
        if line.isEmpty { return }
        let b = line.bytes
        let leading = format.leading
        guard Self.matches(b, leading, at: 0) else {
            if line.isComment { return sink.rejectComment(line, notA: "a record of the log_format") }
            return sink.reject(line, "does not start with \"\(Self.show(leading))\" as the log_format does")
        }
        var pos = leading.count
        let fields = format.fields
        let last = fields.count - 1
        for i in 0...last {
            let field = fields[i]
            let end: Int
            if field.delimiter.isEmpty {
                end = b.count
            } else if i == last {
                // The format's final literal closes the line: the last value may contain it.
                let e = b.count - field.delimiter.count
                guard e >= pos, Self.matches(b, field.delimiter, at: e) else {
                    return sink.reject(line, "does not end with \"\(Self.show(field.delimiter))\" after $\(field.name) as the log_format does")
                }
                end = e
            } else {
                guard let e = Self.find(field.delimiter, in: b, from: pos, list: field.kind == .upstreamList) else {
                    return sink.reject(line, "no \"\(Self.show(field.delimiter))\" after $\(field.name) (field \(i + 1) of the log_format)")
                }
                end = e
            }
            ranges[i] = pos..<end
            pos = end + field.delimiter.count
        }

        var reader = NginxFieldReader(event: Event(time: nil, layer: .nginx, kind: .access, line: line.number, raw: line.copyBytes()))
        for i in 0...last {
            let field = fields[i]
            if let why = reader.apply(field.kind, name: field.name, UnsafeBufferPointer(rebasing: b[ranges[i]])) {
                return sink.reject(line, why)
            }
        }
        let event = reader.finish(into: &sink)
        if let learnt = reader.learnt, let learnZone {
            if !zoneLearnt {
                zoneLearnt = true
                learnZone(learnt)
            }
            if case .fixed(let offset) = learnt, let t = event.time, let named = dst.observe(offset: offset, utc: t) { learnZone(named) }
        }
        sink.emit(event)
    }

    mutating func finish(into sink: inout RecordSink) {}

    // MARK: - Byte helpers

    @inline(__always)
    static func matches(_ b: UnsafeBufferPointer<UInt8>, _ literal: [UInt8], at i: Int) -> Bool {
        guard i >= 0, i + literal.count <= b.count else { return false }
        for k in 0..<literal.count where b[i + k] != literal[k] { return false }
        return true
    }

    /// First position at or after `from` where `literal` starts. A `"` preceded by an odd run of
    /// backslashes is escaped (escape=json, Apache) and does not end a value. In `$upstream_*`
    /// lists (`0.001, 0.002 : 0.010`) a space next to `,` or `:` belongs to the list.
    static func find(_ literal: [UInt8], in b: UnsafeBufferPointer<UInt8>, from: Int, list: Bool) -> Int? {
        guard let first = literal.first else { return from }
        var i = from
        let lastStart = b.count - literal.count
        while i <= lastStart {
            if b[i] == first, matches(b, literal, at: i) {
                var escaped = false
                if first == 0x22 {
                    var k = i - 1, run = 0
                    while k >= from, b[k] == 0x5C { run += 1; k -= 1 }
                    escaped = run % 2 == 1
                }
                var inList = false
                if list, i > from {
                    let before = b[i - 1]
                    let after = i + literal.count < b.count ? b[i + literal.count] : 0
                    inList = before == 0x2C || before == 0x3A || (first == 0x20 && after == 0x3A)
                }
                if !escaped && !inList { return i }
            }
            i += 1
        }
        return nil
    }

    /// `2025-02-06T14:32:45+09:00` (or `Z`) → (UTC µs, offset s).
    static func iso8601(_ b: UnsafeBufferPointer<UInt8>) -> (Int64, Int)? {
        var s = ByteScanner(b)
        guard let y = s.digits(4), s.skip(0x2D), let mo = s.digits(2), s.skip(0x2D), let d = s.digits(2),
              s.skip(0x54) || s.skip(0x20), let h = s.digits(2), s.skip(0x3A), let mi = s.digits(2), s.skip(0x3A),
              let sec = s.digits(2) else { return nil }
        var micro = 0
        if s.skip(0x2E) {
            var digits = 0
            while let c = s.peek(), c >= 0x30, c <= 0x39 {
                if digits < 6 { micro = micro * 10 + Int(c - 0x30); digits += 1 }
                s.pos += 1
            }
            guard digits > 0 else { return nil }
            while digits < 6 { micro *= 10; digits += 1 }
        }
        var offset = 0
        if s.skip(0x5A) {
            offset = 0
        } else if let sign = s.peek(), sign == 0x2B || sign == 0x2D {
            s.pos += 1
            guard let oh = s.digits(2) else { return nil }
            _ = s.skip(0x3A)
            guard let om = s.digits(2) else { return nil }
            offset = (sign == 0x2D ? -1 : 1) * (oh * 3600 + om * 60)
        } else {
            return nil
        }
        guard s.atEnd, CivilTime.isValid(year: y, month: mo, day: d, hour: h, minute: mi, second: sec) else { return nil }
        let local = CivilTime.micros(year: y, month: mo, day: d, hour: h, minute: mi, second: sec, micro: micro)
        return (local - Int64(offset) * CivilTime.microsPerSecond, offset)
    }

    /// The `Root=` part of an X-Amzn-Trace-Id (`Self=…;Root=1-…;CalledFrom=…`), without `Root=`.
    static func traceRoot(_ text: String) -> String {
        for part in text.split(separator: ";") {
            let p = part.trimmingCharacters(in: .whitespaces)
            if p.hasPrefix("Root=") { return String(p.dropFirst(5)) }
        }
        return text
    }

    /// A literal as shown in a reject reason.
    static func show(_ literal: [UInt8]) -> String {
        Escape.terminal(String(decoding: literal, as: UTF8.self), limit: 40)
    }
}

/// Fills an event from nginx variables by name, whatever carried them: a compiled `log_format`
/// (`NginxLogFormatParser`) or the keys of an `escape=json` line (`NginxAccessParser`).
struct NginxFieldReader {
    var event: Event
    private var uri: String?, args: String?, bodyBytes = false, hostRank = 0
    /// The zone the first local stamp showed.
    private(set) var learnt: ZoneSpec?
    private var remoteAddrKept = false

    init(event: Event) {
        self.event = event
    }

    /// Applies one variable's value; the rejection reason when the value cannot be what the
    /// variable writes (a stamp, a status, a size).
    mutating func apply(_ kind: NginxLogFormat.Kind, name: String, _ value: UnsafeBufferPointer<UInt8>) -> String? {
        switch kind {
        case .remoteAddr:
            if !event.setAddress(.peer, ByteScanner.optionalString(value), elseKeep: "remote_addr_text") { remoteAddrKept = true }
        case .remoteUser:
            if let u = ByteScanner.optionalString(value) { event.extra["remote_user"] = u }
        case .timeLocal:
            guard let (time, offset) = ByteScanner.clfTime(value) else {
                return "unreadable $time_local: expected dd/Mon/yyyy:HH:MM:SS +zzzz"
            }
            if event.time == nil { event.time = time }
            learnt = learnt ?? .fixed(seconds: offset)
        case .timeISO8601:
            guard let (time, offset) = NginxLogFormatParser.iso8601(value) else {
                return "unreadable $time_iso8601: expected yyyy-mm-ddTHH:MM:SS+hh:mm"
            }
            if event.time == nil { event.time = time }
            learnt = learnt ?? .fixed(seconds: offset)
        case .msec:
            // Seconds since the epoch with milliseconds: the most precise stamp, so it wins.
            guard let micros = ByteScanner.secondsToMicros(value) else {
                return "unreadable $msec: expected seconds since the epoch"
            }
            event.time = micros
        case .request:
            splitRequest(value, into: &event)
        case .requestMethod:
            event.method = ByteScanner.optionalString(value)
        case .requestURI:
            if let target = ByteScanner.optionalString(value) {
                var parsed = Event(time: nil, layer: .nginx, kind: .access, line: 0, raw: [])
                splitTarget(target, into: &parsed)
                // $request, when also logged, is the line as received: it wins.
                if event.path == nil { event.path = parsed.path; event.query = parsed.query }
                if event.host == nil, let h = parsed.host { event.host = h }
            }
        case .uri:
            uri = ByteScanner.optionalString(value)
        case .args:
            args = ByteScanner.optionalString(value)
        case .serverProtocol:
            if let p = ByteScanner.optionalString(value) { event.extra["protocol"] = p }
        case .status:
            guard value.count == 3, let status = ByteScanner.int(value) else {
                return "$status is not a three-digit code"
            }
            event.status = Int(status)
        case .bodyBytesSent, .bytesSent:
            let isDash = value.count == 1 && value[0] == 0x2D
            let n = ByteScanner.int(value)
            if !isDash, n == nil { return "$\(name) is not a number" }
            if kind == .bodyBytesSent {
                event.bytes = n
                bodyBytes = true
            } else {
                if let n { event.extra["bytes_sent"] = String(n) }
                if !bodyBytes { event.bytes = n }
            }
        case .requestTime:
            // nginx prints $request_time as seconds with milliseconds (`0.052`): a whole number is
            // another writer's, in a unit the name does not say (µs, ms), and stays as text.
            if value.contains(0x2E) { event.duration = ByteScanner.secondsToMicros(value) }
            else if let v = ByteScanner.optionalString(value) { event.extra[name] = v }
        case .upstreamList, .other:
            if let v = ByteScanner.optionalString(value) { event.extra[name] = v }
        case .userAgent:
            event.userAgent = ByteScanner.optionalString(value)
        case .referer:
            if let r = ByteScanner.optionalString(value) { event.extra["referer"] = r }
        case .forwardedFor:
            event.forwardedFor = ByteScanner.optionalString(value)
        case .host, .httpHost, .serverName:
            // $host (request line, Host header, else server name) says most; $server_name least.
            let rank = kind == .host ? 3 : kind == .httpHost ? 2 : 1
            if let h = ByteScanner.optionalString(value) {
                if kind == .serverName { event.extra["server_name"] = h }
                if rank > hostRank { event.host = h; hostRank = rank }
            }
        case .requestID:
            event.requestID = ByteScanner.optionalString(value)
        case .traceID:
            if let t = ByteScanner.optionalString(value) { event.traceID = NginxLogFormatParser.traceRoot(t) }
        case .connection:
            if let c = ByteScanner.optionalString(value) { event.extra["connection"] = c }
        case .pid:
            if let n = ByteScanner.int(value) { event.pid = Int(n) }
        case .hostname:
            event.hostname = ByteScanner.optionalString(value)
        }
        return nil
    }

    /// The event once every variable is applied: `$uri`/`$args` where `$request` gave no path, and
    /// the client (the rightmost public X-Forwarded-For address, else the peer).
    mutating func finish(into sink: inout RecordSink) -> Event {
        if event.path == nil, let uri { event.path = uri }
        if event.query == nil, let args { event.query = args }
        event.clientIP = event.forwardedFor.flatMap(ByteScanner.clientFromForwardedFor) ?? event.peerIP
        if remoteAddrKept { sink.note(IPAddressText.note(field: "nginx $remote_addr", key: "remote_addr_text")) }
        return event
    }
}
