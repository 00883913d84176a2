import Foundation

/// nginx error log: `YYYY/MM/DD HH:MM:SS [level] pid#tid: *conn message, client: …, server: …,
/// request: "…", upstream: "…", host: "…", referrer: "…"` (`ngx_log_error_core` and
/// `ngx_http_log_error_handler`).
///
/// The stamp is local time with no zone: it comes from `--tz`, else from the access log in the same
/// directory (read first), else UTC, and a note says which. A record whose message quotes text
/// with newlines in it (FastCGI stderr) spans several lines: lines without a stamp continue it.
public struct NginxErrorImporter: Importer {
    public init() {}
    public let id = "nginx-error"
    public let title = "nginx error log"
    public let layer = Layer.nginx
    public let documentation = "https://nginx.org/en/docs/ngx_core_module.html#error_log"
    /// After the access logs, which teach it its zone.
    public let ingestOrder = 20

    public let samples = [
        FormatSample(fileName: "error.log", lines: [
            #"2016/03/15 02:21:37 [error] 28937#0: *50 upstream prematurely closed connection while reading response header from upstream, client: 10.23.3.124, server: go-gru.gruapi.xcal.tv, request: "GET /favicon.ico HTTP/1.1", upstream: "http://172.17.0.3:5000/favicon.ico", host: "gruapi.xcal.tv", referrer: "http://gruapi.xcal.tv/""#,
            #"2012/10/11 07:57:41 [error] 1372#0: *649643 connect() to unix:/tmp/php.socket failed (111: Connection refused) while connecting to upstream, client: 192.0.2.44, server: domain.com, request: "GET / HTTP/1.1", upstream: "fastcgi://unix:/tmp/php.socket:", host: "192.0.2.80:80""#,
            #"2018/11/23 19:23:19 [error] 6#6: *80090 client intended to send too large body: 4409206 bytes, client: 54.182.244.67, server: , request: "POST /api/compiler/g82/compile HTTP/1.1", host: "godbolt.org""#,
            #"2015/10/29 20:01:02 [error] 256554#0: *99927 limiting requests, excess: 1.852 by zone "one", client: 1.2.3.4, server: example.com, request: "POST /index.htm HTTP/1.0", host: "exmaple.com""#,
            #"2019/10/30 23:26:34 [error] 205860#205860: *180289 FastCGI sent in stderr: "PHP message: PHP Warning:  Declaration of FEE_Field_Terms::wrap() should be compatible with FEE_Field_Post::wrap() in /var/www/web/post.php on line 0"#,
            #"PHP message: PHP Warning:  Declaration of FEE_Field_Tags::wrap() should be compatible with FEE_Field_Terms::wrap() in /var/www/web/post.php on line 0" while reading response header from upstream, client: 192.0.2.9, server: example.com, request: "GET / HTTP/1.1", upstream: "fastcgi://unix:/run/php/php-fpm.sock:", host: "example.com""#,
            #"2016/10/25 14:49:34 [notice] 54053#0: signal process started"#,
        ]),
    ]

    public let fieldNotes = """
        The stamp (local time, no zone) → `time`, in the zone of `--tz`, else of the access log in the same \
        directory, else UTC (a note on the file says which); `[level]` → `level`; `pid#tid` → `pid`, \
        `extra.tid`; `*N` (the connection serial, `$connection` in the access log) → `extra.connection`; the \
        message without the trailing context → `message` and `error`, its ` (111: Connection refused)` → \
        `extra.errno` (`111`) and its ` while connecting to upstream` → `extra.action`. Context: `client` → `client_ip` (no IP address, such as a masked `xxx.xxx.xxx.xxx`, → `extra.client_text`), \
        `server` → `extra.server`, `request` → `method`, `path`, `query`, `upstream` → `extra.upstream`, \
        `host` → `host`, `referrer` → `extra.referer`, `subrequest` and any other key → `extra`. Lines \
        without a stamp continue the record before them while its quoted text is still open (FastCGI \
        stderr); the record keeps all its lines in `raw`. Access-log records among the lines (one file \
        for both logs) are read as `nginx-access` reads them. Other lines without a stamp (`#` comments, \
        stray text) are rejected with the reason.
        """

    public func recognize(_ lines: [String], fileName: String) -> Double {
        var parser = NginxErrorParser(zone: .utc, zoneNote: nil)
        var sink = RecordSink()
        var considered = 0
        for (i, text) in lines.enumerated() {
            // Comment lines (test fixtures, annotated excerpts) are no record of any format.
            if !text.hasPrefix("#") { considered += 1 }
            Line.with(text, number: i + 1) { parser.consume($0, into: &sink) }
        }
        parser.finish(into: &sink)
        guard considered > 0 else { return 0 }
        let covered = sink.events.reduce(0) { $0 + $1.lineEnd - $1.line + 1 }
        return min(1, Double(covered) / Double(considered))
    }

    public func makeParser(_ context: ParseContext) throws -> any RecordParser {
        let zone: ZoneSpec
        let note: String
        if let given = context.options.timeZone {
            zone = given
            note = "nginx error-log times (no zone in the log) read in \(given), from --tz"
        } else if let learnt = context.hints.zone(forDirectory: context.directory) {
            zone = learnt.zone
            note = "nginx error-log times (no zone in the log) read in \(learnt.zone), the zone of the access log beside it (\(learnt.from)); give --tz to override"
        } else {
            zone = .utc
            note = "nginx error-log times (no zone in the log) read as UTC: no --tz and no access log with a zone in the same directory; give --tz if the server ran in another zone"
        }
        return NginxErrorParser(zone: zone, zoneNote: note, readsAccessLines: true)
    }
}

/// Groups lines into records (a stamped line and its continuations) and parses each record.
struct NginxErrorParser: RecordParser {
    let zone: ZoneSpec
    let zoneNote: String?

    /// A record being read: its first line and any continuation lines.
    private struct Pending {
        var raw: [UInt8]
        /// Where the stamp starts: 0, or after a syslog prefix (`host nginx[983478]: `).
        var stampOffset: Int
        var line: Int
        var lineEnd: Int
        var quotes: Int
        var hasContext: Bool
        var lines: Int
    }

    private var pending: Pending?
    private var noted = false
    /// Access-log records among the error records are read (one file for both logs), not only
    /// rejected with what they are. Off while recognising, so an access log never scores as this.
    private var access: NginxAccessParser?

    /// A runaway record (a quote that never closes) stops absorbing lines here.
    static let maxRecordLines = 1000
    static let maxRecordBytes = 1 << 20

    init(zone: ZoneSpec, zoneNote: String?, readsAccessLines: Bool = false) {
        self.zone = zone
        self.zoneNote = zoneNote
        access = readsAccessLines ? NginxAccessParser(directory: "", learnZone: nil) : nil
    }

    /// A record is being read (its end not seen yet).
    var hasPending: Bool { pending != nil }
    /// The pending record's quoted text is still open: lines without a stamp continue it.
    var pendingIsOpen: Bool { pending.map(Self.isOpen) ?? false }

    mutating func consume(_ line: Line, into sink: inout RecordSink) {
        if !noted, let zoneNote {
            noted = true
            sink.note(zoneNote)
        }
        if let stampOffset = Self.stampOffset(line.bytes) {
            flushPending(into: &sink)
            pending = Pending(raw: line.copyBytes(), stampOffset: stampOffset, line: line.number, lineEnd: line.number,
                              quotes: Self.count(0x22, in: line.bytes), hasContext: Self.containsContext(line.bytes), lines: 1)
            return
        }
        // An access-log record among the error records (both logs in one file).
        if !line.isEmpty, !line.isComment, line.bytes.first != 0x20, line.bytes.first != 0x09 {
            var reader = access ?? NginxAccessParser(directory: "", learnZone: nil)
            var scratch = RecordSink()
            reader.consume(line, into: &scratch)
            if scratch.rejected.isEmpty, scratch.eventCount > 0 {
                guard access != nil else { return sink.reject(line, "an nginx access-log record in an error log") }
                access = reader
                flushPending(into: &sink)
                return NginxMixedAccessParser<NginxAccessParser>.move(scratch, into: &sink)
            }
        }
        if var record = pending, Self.isOpen(record),
           record.lines < Self.maxRecordLines, record.raw.count + line.count < Self.maxRecordBytes {
            pending = nil // keep `raw` uniquely referenced while it grows
            record.raw.append(0x0A)
            record.raw.append(contentsOf: line.bytes)
            record.lineEnd = line.number
            record.lines += 1
            record.quotes += Self.count(0x22, in: line.bytes)
            record.hasContext = record.hasContext || Self.containsContext(line.bytes)
            pending = record
            return
        }
        if Self.isBlank(line.bytes) { return }
        if line.bytes.first == 0x23 {
            return sink.rejectComment(line, notA: "an nginx error-log record")
        }
        sink.reject(line, "no YYYY/MM/DD HH:MM:SS stamp, and no open record before it to continue")
    }

    mutating func finish(into sink: inout RecordSink) {
        flushPending(into: &sink)
    }

    /// A record continues while the text it quotes (FastCGI stderr, upstream output) is unclosed and
    /// the request context, which nginx writes last, has not appeared.
    private static func isOpen(_ record: Pending) -> Bool {
        !record.hasContext && record.quotes % 2 == 1
    }

    mutating func flushPending(into sink: inout RecordSink) {
        guard let record = pending else { return }
        pending = nil
        switch Self.parse(record.raw, stampOffset: record.stampOffset, zone: zone) {
        case .success(var event):
            event.line = record.line
            event.lineEnd = record.lineEnd
            if event.extra["client_text"] != nil { sink.note(IPAddressText.note(field: "nginx error-log client:", key: "client_text")) }
            sink.emit(event)
        case .failure(let problem):
            sink.reject(line: record.line, reason: problem.reason, raw: record.raw)
        }
    }

    struct Problem: Error { var reason: String }

    /// Parses one whole record (all its lines).
    static func parse(_ raw: [UInt8], stampOffset: Int = 0, zone: ZoneSpec) -> Result<Event, Problem> {
        raw.withUnsafeBufferPointer { b in
            var s = ByteScanner(b, pos: min(max(0, stampOffset), b.count))
            guard let y = s.digits(4), s.skip(0x2F), let mo = s.digits(2), s.skip(0x2F), let d = s.digits(2), s.skip(0x20),
                  let h = s.digits(2), s.skip(0x3A), let mi = s.digits(2), s.skip(0x3A), let sec = s.digits(2),
                  CivilTime.isValid(year: y, month: mo, day: d, hour: h, minute: mi, second: sec) else {
                return .failure(Problem(reason: "unreadable stamp: expected YYYY/MM/DD HH:MM:SS"))
            }
            guard s.skip(0x20), s.skip(0x5B), let levelBytes = s.until(0x5D), !levelBytes.isEmpty, levelBytes.count <= 10,
                  levelBytes.allSatisfy({ $0 >= 0x61 && $0 <= 0x7A }) else {
                return .failure(Problem(reason: "no [level] after the stamp"))
            }
            let local = CivilTime.micros(year: y, month: mo, day: d, hour: h, minute: mi, second: sec)
            var event = Event(time: zone.utc(fromLocal: local), layer: .nginx, kind: .log, line: 0, raw: raw)
            event.level = ByteScanner.string(levelBytes)
            if stampOffset > 0 { applySyslogPrefix(UnsafeBufferPointer(rebasing: b[..<min(stampOffset, b.count)]), to: &event) }
            s.skipSpaces()
            // `pid#tid: ` is written by every nginx since 0.x; tolerate its absence.
            var probe = s
            let pidBytes = probe.token()
            if pidBytes.count >= 4, pidBytes.last == 0x3A, let hash = pidBytes.firstIndex(of: 0x23),
               let pid = ByteScanner.int(UnsafeBufferPointer(rebasing: pidBytes[..<hash])),
               let tid = ByteScanner.int(UnsafeBufferPointer(rebasing: pidBytes[(hash + 1)..<(pidBytes.count - 1)])) {
                event.pid = Int(pid)
                event.extra["tid"] = String(tid)
                s = probe
                s.skipSpaces()
            }
            if s.peek() == 0x2A { // `*N ` connection serial
                var c = s
                c.pos += 1
                let conn = c.token()
                if ByteScanner.int(conn) != nil {
                    event.extra["connection"] = ByteScanner.string(conn)
                    s = c
                }
            }
            let body = ByteScanner.string(s.rest)
            var message = Substring(body)
            if let r = body.range(of: ", client: ", options: .backwards) {
                message = body[..<r.lowerBound]
                applyContext(body[body.index(r.lowerBound, offsetBy: 2)...], to: &event)
            }
            let text = message.trimmingCharacters(in: .whitespaces)
            if !text.isEmpty {
                event.message = text
                event.error = text
                describeFailure(text, into: &event)
            }
            return .success(event)
        }
    }

    /// The parts nginx adds to a failure (`ngx_log_error_core`): ` (errno: strerror)` after the
    /// message and ` while <action>` (what the connection was doing) at its end. They tell a refused
    /// connect (`111`, `connecting to upstream`) from a read timeout (`110`, `reading response header
    /// from upstream`) without parsing the wording again.
    static func describeFailure(_ message: String, into event: inout Event) {
        if let r = message.range(of: " while ", options: .backwards) {
            let action = message[r.upperBound...]
            // Quoted text (FastCGI output) may say "while" too; nginx's actions are short and unquoted.
            if !action.isEmpty, action.count <= 80, !action.contains("\""), !action.contains(")") {
                event.extra["action"] = String(action)
            }
        }
        var searchEnd = message.endIndex
        while let open = message.range(of: " (", options: .backwards, range: message.startIndex..<searchEnd) {
            let afterOpen = message[open.upperBound...]
            let digits = afterOpen.prefix { $0.isASCII && $0.isNumber }
            if !digits.isEmpty, digits.count <= 5, afterOpen.dropFirst(digits.count).hasPrefix(": "),
               afterOpen.contains(")") {
                event.extra["errno"] = String(digits)
                return
            }
            searchEnd = open.lowerBound
        }
    }

    /// `client: a, server: b, request: "…", upstream: "…", host: "…", referrer: "…"`.
    static func applyContext(_ context: Substring, to event: inout Event) {
        var rest = context
        while !rest.isEmpty {
            guard let colon = rest.firstIndex(of: ":"), isKey(rest[..<colon]) else {
                event.extra["context"] = String(rest)
                return
            }
            let key = String(rest[..<colon])
            var valueStart = rest.index(after: colon)
            if valueStart < rest.endIndex, rest[valueStart] == " " { valueStart = rest.index(after: valueStart) }
            var value: Substring
            var next: Substring.Index
            if valueStart < rest.endIndex, rest[valueStart] == "\"" {
                // The closing quote is the one followed by the end or by `, key:`: values are not escaped.
                let inner = rest.index(after: valueStart)
                var i = inner
                var close: Substring.Index?
                while i < rest.endIndex {
                    if rest[i] == "\"" {
                        let after = rest.index(after: i)
                        if after == rest.endIndex || startsNextKey(rest[after...]) { close = i; break }
                    }
                    i = rest.index(after: i)
                }
                if let close {
                    value = rest[inner..<close]
                    next = rest.index(after: close)
                } else {
                    value = rest[inner...]
                    next = rest.endIndex
                }
            } else {
                var i = valueStart
                var end = rest.endIndex
                while i < rest.endIndex {
                    if rest[i] == ",", startsNextKey(rest[i...]) { end = i; break }
                    i = rest.index(after: i)
                }
                value = rest[valueStart..<end]
                next = end
            }
            apply(key, String(value), to: &event)
            rest = rest[next...]
            if rest.hasPrefix(", ") { rest = rest.dropFirst(2) } else if rest.hasPrefix(",") { rest = rest.dropFirst() }
        }
    }

    private static func apply(_ key: String, _ value: String, to event: inout Event) {
        switch key {
        case "client":
            // `client: xxx.xxx.xxx.xxx` in published excerpts, or text a hostile request put there.
            event.setAddress(.client, value, elseKeep: "client_text")
        case "server":
            if !value.isEmpty { event.extra["server"] = value }
        case "request":
            if !value.isEmpty {
                Array(value.utf8).withUnsafeBufferPointer { splitRequest($0, into: &event) }
            }
        case "upstream":
            event.extra["upstream"] = value
        case "host":
            if !value.isEmpty { event.host = value }
        case "referrer":
            event.extra["referer"] = value
        default:
            let name = key.replacingOccurrences(of: " ", with: "_").replacingOccurrences(of: "/", with: "_")
            event.extra[name] = value
        }
    }

    /// Context keys are short lowercase words (`client`, `bytes from/to client`).
    private static func isKey(_ s: Substring) -> Bool {
        !s.isEmpty && s.count <= 32 && s.first != " " && s.allSatisfy { ($0 >= "a" && $0 <= "z") || $0 == " " || $0 == "/" || $0 == "_" }
    }

    /// True at `, key:` (the start of the next context field).
    private static func startsNextKey(_ s: Substring) -> Bool {
        guard s.hasPrefix(", ") else { return false }
        let afterComma = s.dropFirst(2)
        guard let colon = afterComma.prefix(33).firstIndex(of: ":") else { return false }
        return isKey(afterComma[..<colon])
    }

    /// `host nginx[983478]: ` or `daemon.err nginx[8751]: ` before the stamp (syslog without its own
    /// stamp, as fail2ban and OpenWrt's logread show it): the host name and pid, when given.
    static func applySyslogPrefix(_ prefix: UnsafeBufferPointer<UInt8>, to event: inout Event) {
        let text = ByteScanner.string(prefix)
        event.program = "nginx"
        event.extra["syslog_prefix"] = text.trimmingCharacters(in: .whitespaces)
        let words = text.split(separator: " ")
        if let first = words.first, !first.contains("nginx"), !first.contains("."), !first.hasSuffix(":") {
            event.hostname = String(first)
        }
    }

    // MARK: - Line classification on bytes

    /// Where the record's stamp starts: 0 for a plain error-log line; after `…nginx…: ` for one
    /// relayed through syslog with the syslog stamp already removed. Nil for any other line.
    static func stampOffset(_ b: UnsafeBufferPointer<UInt8>) -> Int? {
        if startsWithStamp(b) { return 0 }
        // The prefix is short and names nginx: `host nginx[2833]: `, `host nginx[1]: host nginx: `.
        // A full syslog line (`Apr  8 22:17:52 host nginx[1]: …`, `<27>…`) is the syslog importer's:
        // it keeps the syslog stamp too.
        let limit = min(b.count - 19, 120)
        guard limit > 0 else { return nil }
        if b[0] == 0x3C || (b[0] >= 0x30 && b[0] <= 0x39) { return nil }
        if b.count > 4, b[3] == 0x20, CivilTime.month(b[0], b[1], b[2]) != nil { return nil }
        var sawNginx = false
        var i = 0
        while i < limit {
            if !sawNginx, b[i] == 0x6E, i + 5 <= b.count, b[i + 1] == 0x67, b[i + 2] == 0x69, b[i + 3] == 0x6E, b[i + 4] == 0x78 {
                sawNginx = true
            }
            if sawNginx, b[i] == 0x3A, b[i + 1] == 0x20,
               startsWithStamp(UnsafeBufferPointer(rebasing: b[(i + 2)...])) {
                return i + 2
            }
            i += 1
        }
        return nil
    }

    /// `YYYY/MM/DD HH:` at the start of the line.
    static func startsWithStamp(_ b: UnsafeBufferPointer<UInt8>) -> Bool {
        guard b.count >= 19 else { return false }
        @inline(__always) func digit(_ i: Int) -> Bool { b[i] >= 0x30 && b[i] <= 0x39 }
        return digit(0) && digit(1) && digit(2) && digit(3) && b[4] == 0x2F && digit(5) && digit(6) && b[7] == 0x2F
            && digit(8) && digit(9) && b[10] == 0x20 && digit(11) && digit(12) && b[13] == 0x3A
    }

    static func count(_ byte: UInt8, in b: UnsafeBufferPointer<UInt8>) -> Int {
        var n = 0
        for c in b where c == byte { n += 1 }
        return n
    }

    private static let contextMarker = Array(", client: ".utf8)

    static func containsContext(_ b: UnsafeBufferPointer<UInt8>) -> Bool {
        let m = contextMarker
        guard b.count >= m.count else { return false }
        var i = 0
        while i <= b.count - m.count {
            if b[i] == m[0] {
                var k = 1
                while k < m.count, b[i + k] == m[k] { k += 1 }
                if k == m.count { return true }
            }
            i += 1
        }
        return false
    }

    static func isBlank(_ b: UnsafeBufferPointer<UInt8>) -> Bool {
        b.allSatisfy { $0 == 0x20 || $0 == 0x09 }
    }
}
