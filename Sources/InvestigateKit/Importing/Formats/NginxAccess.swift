import Foundation

/// nginx access logs: `combined`, the packaged `main` (combined + `"$http_x_forwarded_for"`), and
/// the common custom variants that append request time, upstream times, `$request_id` or `$host`
/// after those fields. Apache's combined log has the same shape and is read too.
///
/// Any other layout is read exactly by compiling its `log_format` line (`--nginx-log-format`).
public struct NginxAccessImporter: Importer {
    /// The user's compiled `log_format` (`--nginx-log-format`): lines are recognised and read with it.
    public let logFormat: NginxLogFormat?

    public init(logFormat: NginxLogFormat? = nil) {
        self.logFormat = logFormat
    }

    public let id = "nginx-access"
    public let title = "nginx access log (combined, main, and custom log_format)"
    public let layer = Layer.nginx
    public let documentation = "https://nginx.org/en/docs/http/ngx_http_log_module.html#log_format"
    /// Access logs run first: their `$time_local` offset gives the error log beside them its zone.
    public let ingestOrder = 10

    public let samples = [
        FormatSample(fileName: "access.log", lines: [
            #"172.24.0.1 - - [01/Feb/2019:18:34:01 +0000] "GET / HTTP/1.0" 504 167 "-" "ApacheBench/2.3""#,
            #"10.1.1.210 - - [06/Feb/2025:14:32:45 +0900] "GET /api/ping?x=1 HTTP/1.1" 400 31 "-" "Mozilla/5.0 (X11; Linux x86_64)" "203.0.113.7""#,
            #"10.1.1.211 - alice [06/Feb/2025:14:32:46 +0900] "POST /app/login HTTP/1.1" 302 0 "https://example.com/app/" "curl/8.5.0" "198.51.100.23, 203.0.113.9" rt=0.016 uct="0.001" uht="0.015" urt="0.015""#,
            #"192.0.2.10 - - [11/Feb/2022:13:32:04 +0000] "GET /api/environments?status=open&status=ack HTTP/1.1" 200 86 "http://example.org/alerts" "Mozilla/5.0" - 0.016 x_forwarded_for=- host=example.org d800a214304b188147d569b5df5328e6 71248cd6-6ede-4a89-9a51-f1b3eeb1b6ea"#,
        ]),
    ]

    public let fieldNotes = """
        `$remote_addr` → `peer_ip`; the client is the rightmost public hop of `$http_x_forwarded_for` when \
        present (the hop our own load balancer appended), else `$remote_addr` → `client_ip`. `$time_local` \
        (completion time, with its offset) → `time`; `$request` → `method`, `path`, `query` (a malformed \
        request line is kept whole in `extra.request`); `$status`, `$body_bytes_sent` → `status`, `bytes`; \
        `$http_referer`, `$remote_user` → `extra`; `$http_user_agent` → `user_agent`. Trailing fields of \
        common custom formats: `rt=`/`request_time=` or a bare decimal → `duration`; `urt=`, `uct=`, `uht=` \
        → `extra.upstream_*`; `host=` → `host`; a 32-hex token (`$request_id`) → `request_id`; \
        `Root=1-…` → `trace_id`; any other trailing token → `extra.trailing`. An address list before the \
        ident field (`"xff" $remote_addr - …`, `$proxy_add_x_forwarded_for - …`) → `forwarded_for`. \
        With `--nginx-log-format` the line is read exactly by that layout (also for detection), each value \
        ending at the text that follows it in the format: `$time_local`, `$time_iso8601`, `$msec` → `time`; \
        `$request_method`, `$request_uri`, `$uri`, `$args` → `method`, `path`, `query` (`$request` wins); \
        `$bytes_sent` → `bytes` when `$body_bytes_sent` is absent; `$request_time` → `duration`; `$upstream_*` \
        → `extra` under their names (lists such as `0.001, 0.002 : 0.010` kept whole); `$host`, `$http_host`, \
        `$server_name` → `host`; `$request_id` → `request_id`; `$http_x_amzn_trace_id` → `trace_id` (the \
        `Root=` part, without `Root=`); `$connection` → `extra.connection` (the error log's `*N`); `$pid`, \
        `$hostname` → `pid`, `hostname`; any other variable → `extra` under its name.
        """

    public func recognize(_ lines: [String], fileName: String) -> Double {
        if let logFormat {
            return Self.share(of: lines, readBy: NginxLogFormatParser(format: logFormat, learnZone: nil))
        }
        var score = Self.share(of: lines, readBy: NginxAccessParser(directory: "", learnZone: nil))
        // gunicorn writes the very same combined shape; its file names tell them apart.
        if fileName.lowercased().contains("gunicorn") { score *= 0.5 }
        return score
    }

    /// Share of the lines, comments aside, that the parser reads as one event each.
    private static func share(of lines: [String], readBy reader: some RecordParser) -> Double {
        var parser = reader
        var ok = 0, considered = 0
        for line in lines {
            // Comment lines (annotated excerpts, test fixtures) are no record of any format.
            if line.hasPrefix("#") { continue }
            considered += 1
            var sink = RecordSink()
            Line.with(line, number: 1) { parser.consume($0, into: &sink) }
            if sink.rejected.isEmpty && sink.eventCount > 0 { ok += 1 }
        }
        guard considered > 0 else { return 0 }
        return Double(ok) / Double(considered)
    }

    public func makeParser(_ context: ParseContext) throws -> any RecordParser {
        if let logFormat { return try logFormat.makeParser(context) }
        if let format = context.options.nginxLogFormat {
            return try NginxLogFormat(definition: format).makeParser(context)
        }
        let hints = context.hints
        let directory = context.directory
        let path = context.path, position = context.position
        return NginxAccessParser(directory: directory, learnZone: { zone in
            hints.learnZone(zone, directory: directory, from: path, position: position)
        })
    }
}

/// The fixed-layout parser for combined/main and their common extensions, on bytes.
struct NginxAccessParser: RecordParser {
    let directory: String
    let learnZone: ((ZoneSpec) -> Void)?
    private var zoneLearnt = false

    init(directory: String, learnZone: ((ZoneSpec) -> Void)?) {
        self.directory = directory
        self.learnZone = learnZone
    }

    mutating func consume(_ line: Line, into sink: inout RecordSink) {
        if line.isEmpty { return }
        if consumeCommonShape(line, into: &sink) { return }
        consumeAnyShape(line, into: &sink)
    }

    /// The shape of nearly every real line, `combined` or `main` (`$remote_addr - $remote_user
    /// [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent"
    /// ["$http_x_forwarded_for"]` with an origin-form target), read straight into the batch's
    /// columns with no intermediate `String` or `Event`: this is the ingest hot path. Any other
    /// shape, and any malformed line, returns false having stored nothing, and `consumeAnyShape`
    /// reads it (and words its rejection).
    mutating func consumeCommonShape(_ line: Line, into sink: inout RecordSink) -> Bool {
        let b = line.bytes
        var s = ByteScanner(b)
        // Field by field as `consumeAnyShape` reads them, so both readers agree on every line.
        let remote = s.token()
        guard !remote.isEmpty, remote[0] != 0x22, remote[remote.count - 1] != 0x2C else { return false }
        _ = s.token() // ident
        guard let userEnd = findOpenBracket(b, from: s.pos) else { return false }
        let user = UnsafeBufferPointer(rebasing: b[s.pos..<max(s.pos, userEnd - 1)])
        s.pos = userEnd + 1
        // A stamp out of range goes the general way too, to be rejected with its reason by `emit`.
        guard let timeBytes = s.until(0x5D), let (time, offset) = ByteScanner.clfTime(timeBytes),
              EventTime.accepted.contains(time) else { return false }
        s.skipSpaces()
        guard let request = s.quoted() else { return false }
        s.skipSpaces()
        let statusBytes = s.token()
        guard statusBytes.count == 3, let status = ByteScanner.int(statusBytes) else { return false }
        let sizeBytes = s.token()
        let size = ByteScanner.int(sizeBytes)
        guard size != nil || (sizeBytes.count == 1 && sizeBytes[0] == 0x2D) else { return false }
        s.skipSpaces()
        var quoted: (UnsafeBufferPointer<UInt8>?, UnsafeBufferPointer<UInt8>?, UnsafeBufferPointer<UInt8>?) = (nil, nil, nil)
        for i in 0..<3 where s.peek() == 0x22 {
            guard let q = s.quoted() else { return false }
            if i == 0 { quoted.0 = q } else if i == 1 { quoted.1 = q } else { quoted.2 = q }
            s.skipSpaces()
        }
        guard s.atEnd else { return false } // trailing custom fields: the general reader knows them
        // The request line: METHOD origin-form-target [protocol].
        var r = ByteScanner(request)
        let method = r.token()
        let target = r.token()
        let isMethod = !method.isEmpty && method.count <= 20 && method.allSatisfy { ($0 >= 0x41 && $0 <= 0x5A) || $0 == 0x2D || $0 == 0x5F }
        guard isMethod, target.first == 0x2F else { return false }
        let xff = quoted.2.flatMap(ByteScanner.optionalBytes)
        let client = xff.flatMap { ByteScanner.clientFromForwardedFor(ByteScanner.string($0)) }

        sink.batch.beginRow(layer: .nginx, kind: .access, line: line.number, lineEnd: line.number, time: time, raw: b)
        sink.batch.setNumber(.status, status)
        sink.batch.setNumber(.bytes, size)
        sink.batch.setText(.peerIP, remote)
        if let client { sink.batch.setText(.clientIP, client) } else { sink.batch.setText(.clientIP, remote) }
        if let xff { sink.batch.setText(.forwardedFor, xff) }
        sink.batch.setText(.method, method)
        var q = 0
        while q < target.count, target[q] != 0x3F { q += 1 }
        sink.batch.setText(.path, UnsafeBufferPointer(rebasing: target[..<q]))
        if q + 1 < target.count { sink.batch.setText(.query, UnsafeBufferPointer(rebasing: target[(q + 1)...])) }
        if let agent = quoted.1.flatMap(ByteScanner.optionalBytes) { sink.batch.setText(.userAgent, agent) }
        // `extra`, keys in ascending order: protocol, referer, remote_user.
        let extra = sink.batch.beginExtra()
        if !r.atEnd { sink.batch.extraField("protocol", r.rest, start: extra) }
        if let referer = quoted.0.flatMap(ByteScanner.optionalBytes) { sink.batch.extraField("referer", referer, start: extra) }
        if let u = ByteScanner.optionalBytes(user) { sink.batch.extraField("remote_user", u, start: extra) }
        sink.batch.endExtra(start: extra)
        if !zoneLearnt, let learnZone {
            zoneLearnt = true
            learnZone(.fixed(seconds: offset))
        }
        return true
    }

    mutating func consumeAnyShape(_ line: Line, into sink: inout RecordSink) {
        var s = ByteScanner(line.bytes)
        // Some formats put an address list first (Filebeat's test logs): `"xff" $remote_addr - …`,
        // `xff-hop, xff-hop $remote_addr - …`, or `$proxy_add_x_forwarded_for - …` (the list, then
        // the peer). Such a list goes to `forwarded_for`.
        var leadingList: String?
        let start = s.pos
        var remote = s.token()
        if remote.first == 0x22 {
            s.pos = start
            guard let quoted = s.quoted() else { return sink.reject(line, "unterminated quoted address list") }
            leadingList = ByteScanner.optionalString(quoted)
            s.skipSpaces()
            remote = s.token()
        } else if remote.last == 0x2C {
            var hops = [ByteScanner.string(UnsafeBufferPointer(rebasing: remote[..<(remote.count - 1)]))]
            var hop = s.token()
            while hop.last == 0x2C, hops.count < 64 {
                hops.append(ByteScanner.string(UnsafeBufferPointer(rebasing: hop[..<(hop.count - 1)])))
                hop = s.token()
            }
            hops.append(ByteScanner.string(hop))
            var probe = s
            let next = probe.token()
            if Self.looksLikeAddress(next) {
                remote = next // `hop, hop $remote_addr`
                s = probe
            } else {
                // `$proxy_add_x_forwarded_for`: the header with the peer appended, kept whole, so a
                // public peer after private hops is the client.
                remote = hop
            }
            leadingList = hops.joined(separator: ", ")
        }
        guard !remote.isEmpty else { return sink.reject(line, "empty remote address") }
        _ = s.token() // ident, always "-"
        // $remote_user may itself contain spaces in hostile input: read up to " [".
        guard let userEnd = findOpenBracket(line.bytes, from: s.pos) else {
            return sink.reject(line, "no [time_local] field: not an access-log line")
        }
        let user = UnsafeBufferPointer(rebasing: line.bytes[s.pos..<max(s.pos, userEnd - 1)])
        s.pos = userEnd + 1
        guard let timeBytes = s.until(0x5D), let (time, offset) = ByteScanner.clfTime(timeBytes) else {
            return sink.reject(line, "unreadable [time_local]: expected dd/Mon/yyyy:HH:MM:SS +zzzz")
        }
        s.skipSpaces()
        guard let request = s.quoted() else { return sink.reject(line, "no quoted request line") }
        s.skipSpaces()
        let statusBytes = s.token()
        guard statusBytes.count == 3, let status = ByteScanner.int(statusBytes) else {
            return sink.reject(line, "status is not a three-digit code")
        }
        let sizeBytes = s.token()
        var event = Event(time: time, layer: .nginx, kind: .access, line: line.number, raw: line.copyBytes())
        event.status = Int(status)
        event.bytes = ByteScanner.int(sizeBytes)
        if !(sizeBytes.count == 1 && sizeBytes[0] == 0x2D) && event.bytes == nil {
            return sink.reject(line, "body size is not a number")
        }
        let peer = ByteScanner.string(remote)
        event.peerIP = peer
        event.clientIP = peer
        if let u = ByteScanner.optionalString(user) { event.extra["remote_user"] = u }
        if let leadingList {
            event.forwardedFor = leadingList
            if let client = ByteScanner.clientFromForwardedFor(leadingList) { event.clientIP = client }
        }
        splitRequest(request, into: &event)

        // Optional quoted fields: referer, user agent, X-Forwarded-For (main), then free-form extras.
        s.skipSpaces()
        var quotedFields: [UnsafeBufferPointer<UInt8>] = []
        while quotedFields.count < 3, s.peek() == 0x22 {
            guard let q = s.quoted() else { return sink.reject(line, "unterminated quoted field") }
            quotedFields.append(q)
            s.skipSpaces()
        }
        if quotedFields.count >= 1, let referer = ByteScanner.optionalString(quotedFields[0]) { event.extra["referer"] = referer }
        if quotedFields.count >= 2 { event.userAgent = ByteScanner.optionalString(quotedFields[1]) }
        if quotedFields.count >= 3, let xff = ByteScanner.optionalString(quotedFields[2]) {
            event.forwardedFor = xff
            if let client = ByteScanner.clientFromForwardedFor(xff) { event.clientIP = client }
        }
        if !s.atEnd { parseTrailing(&s, into: &event) }
        if !zoneLearnt, let learnZone {
            zoneLearnt = true
            learnZone(.fixed(seconds: offset))
        }
        sink.emit(event)
    }

    mutating func finish(into sink: inout RecordSink) {}

    /// An IPv4 or IPv6 address token (digits, hex, dots and colons).
    static func looksLikeAddress(_ b: UnsafeBufferPointer<UInt8>) -> Bool {
        guard b.count >= 2, b.count <= 45 else { return false }
        var separators = 0
        for c in b {
            if c == 0x2E || c == 0x3A { separators += 1; continue }
            let hex = (c >= 0x30 && c <= 0x39) || (c >= 0x61 && c <= 0x66) || (c >= 0x41 && c <= 0x46)
            if !hex { return false }
        }
        return separators >= 2
    }

    private func findOpenBracket(_ b: UnsafeBufferPointer<UInt8>, from: Int) -> Int? {
        var i = from
        while i < b.count {
            if b[i] == 0x5B, i == from || b[i - 1] == 0x20 { return i }
            i += 1
        }
        return nil
    }

    /// Free-form fields after the standard ones, as the custom formats people write them.
    private func parseTrailing(_ s: inout ByteScanner, into event: inout Event) {
        var unknown: [String] = []
        var sawBareNumber = false
        while !s.atEnd {
            s.skipSpaces()
            if s.atEnd { break }
            let tok: UnsafeBufferPointer<UInt8>
            if s.peek() == 0x22, let q = s.quoted() { tok = q } else { tok = s.token() }
            if tok.isEmpty { continue }
            let text = ByteScanner.string(tok)
            if let eq = text.firstIndex(of: "="), eq != text.startIndex, !text.hasPrefix("Root=") {
                let key = String(text[..<eq]).lowercased()
                var value = String(text[text.index(after: eq)...])
                if value.hasPrefix("\"") && value.hasSuffix("\"") && value.count >= 2 { value = String(value.dropFirst().dropLast()) }
                applyKeyValue(key, value, into: &event, unknown: &unknown)
            } else if text.hasPrefix("Root=") || text.contains(";Root=") {
                event.traceID = traceRoot(text)
            } else if !sawBareNumber, let micros = ByteScanner.secondsToMicros(tok), text.contains(".") {
                sawBareNumber = true
                event.duration = micros
            } else if text.count == 32, text.allSatisfy(\.isHexDigit) {
                event.requestID = text
            } else if text != "-" {
                unknown.append(text)
            }
        }
        if !unknown.isEmpty { event.extra["trailing"] = unknown.joined(separator: " ") }
    }

    private func applyKeyValue(_ key: String, _ value: String, into event: inout Event, unknown: inout [String]) {
        let dash = value == "-" || value.isEmpty
        switch key {
        case "rt", "request_time":
            if !dash { event.duration = Line.with(value, number: 0) { ByteScanner.secondsToMicros($0.bytes) } }
        case "urt", "upstream_response_time": if !dash { event.extra["upstream_response_time"] = value }
        case "uct", "upstream_connect_time": if !dash { event.extra["upstream_connect_time"] = value }
        case "uht", "upstream_header_time": if !dash { event.extra["upstream_header_time"] = value }
        case "ua", "upstream_addr", "upstream": if !dash { event.extra["upstream_addr"] = value }
        case "us", "upstream_status": if !dash { event.extra["upstream_status"] = value }
        case "host", "http_host": if !dash { event.host = value }
        case "request_id", "req_id", "rid", "reqid": if !dash { event.requestID = value }
        case "x_forwarded_for", "xff", "http_x_forwarded_for":
            if !dash {
                event.forwardedFor = value
                if let client = ByteScanner.clientFromForwardedFor(value) { event.clientIP = client }
            }
        case "trace_id", "x_amzn_trace_id", "amzn_trace_id", "http_x_amzn_trace_id":
            if !dash { event.traceID = traceRoot(value) }
        default:
            unknown.append("\(key)=\(value)")
        }
    }

    private func traceRoot(_ text: String) -> String {
        for part in text.split(separator: ";") where part.hasPrefix("Root=") { return String(part.dropFirst(5)) }
        return text
    }
}

/// Splits `METHOD target PROTOCOL` into method, path and query. A request line that is not of that
/// shape (`-`, TLS bytes sent to a plain port) is kept whole in `extra.request`.
func splitRequest(_ request: UnsafeBufferPointer<UInt8>, into event: inout Event) {
    var r = ByteScanner(request)
    let method = r.token()
    let target = r.token()
    let isMethod = !method.isEmpty && method.count <= 20 && method.allSatisfy { ($0 >= 0x41 && $0 <= 0x5A) || $0 == 0x2D || $0 == 0x5F }
    guard isMethod, !target.isEmpty else {
        if let whole = ByteScanner.optionalString(request) { event.extra["request"] = whole }
        return
    }
    event.method = ByteScanner.string(method)
    if !r.atEnd { event.extra["protocol"] = ByteScanner.string(r.rest) }
    splitTarget(ByteScanner.string(target), into: &event)
}

/// A request target (`/p?q`, or an absolute URL as proxies log it) → path, query and host.
/// Scans UTF-8 bytes: this runs for every access-log line.
func splitTarget(_ target: String, into event: inout Event) {
    var t = target
    t.withUTF8 { b in
        var start = 0
        // scheme://host[:port]/… : find "://" after letters only.
        var i = 0
        while i < b.count, (b[i] >= 0x61 && b[i] <= 0x7A) || (b[i] >= 0x41 && b[i] <= 0x5A) { i += 1 }
        if i > 0, i + 2 < b.count, b[i] == 0x3A, b[i + 1] == 0x2F, b[i + 2] == 0x2F {
            let hostStart = i + 3
            var slash = hostStart
            while slash < b.count, b[slash] != 0x2F, b[slash] != 0x3F { slash += 1 }
            if event.host == nil, slash > hostStart {
                var hostEnd = slash
                if b[hostStart] != 0x5B { // not an IPv6 literal: drop a :port
                    var j = hostStart
                    while j < slash, b[j] != 0x3A { j += 1 }
                    hostEnd = j
                } else {
                    var j = hostStart
                    while j < slash, b[j] != 0x5D { j += 1 }
                    hostEnd = min(slash, j + 1)
                }
                if hostEnd > hostStart { event.host = String(decoding: UnsafeBufferPointer(rebasing: b[hostStart..<hostEnd]), as: UTF8.self) }
            }
            start = slash
            if slash >= b.count { event.path = "/"; return }
        }
        var q = start
        while q < b.count, b[q] != 0x3F { q += 1 }
        let path = UnsafeBufferPointer(rebasing: b[start..<q])
        event.path = path.isEmpty ? "/" : String(decoding: path, as: UTF8.self)
        if q + 1 < b.count { event.query = String(decoding: UnsafeBufferPointer(rebasing: b[(q + 1)...]), as: UTF8.self) }
    }
}

extension ImporterRegistry {
    /// This registry with `nginx-access` reading the user's `log_format` (`--nginx-log-format`), so
    /// that detection, too, recognises lines written in that layout. Throws on a malformed definition.
    public func withNginxLogFormat(_ definition: String?) throws -> ImporterRegistry {
        guard let definition else { return self }
        let format = try NginxLogFormat(definition: definition)
        return ImporterRegistry(importers.map { $0.id == "nginx-access" ? NginxAccessImporter(logFormat: format) : $0 })
    }
}
