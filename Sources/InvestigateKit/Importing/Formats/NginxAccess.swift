import Foundation

/// nginx access logs: `combined`, the packaged `main` (combined + `"$http_x_forwarded_for"`), and
/// the common custom variants that append request time, upstream times, `$request_id` or `$host`
/// after those fields. Apache's combined log has the same shape and is read too.
///
/// Any other layout is read exactly by compiling its `log_format` line (`--nginx-log-format`).
public struct NginxAccessImporter: Importer {
    // The common log stamp, where `combined` and its variants put it; not for a layout the user described.
    public func lineTimeScan(_ options: ImportOptions) -> LineTimeScan? { options.nginxLogFormat == nil ? LineTimeScan(.commonLog, multiline: false) : nil }

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
            // A virtual host first (Apache's vhost_combined, goaccess#645).
            #"www.xxxxxx.com:80 46.229.168.73 - - [31/Jan/2017:09:44:00 +0100] "GET /showthread.php?s=ff10fb2cebe47ec51e598eb4c6eb0b8f&t=14607 HTTP/1.1" 301 738 "-" "Mozilla/5.0 (compatible; SemrushBot/1.2~bl; +http://www.semrush.com/bot.html)""#,
            // `escape=json`, in nginx-proxy's LOG_JSON layout (nginx-proxy#2197).
            #"{"time_local":"2023-03-20T10:15:32+00:00","client_ip":"-","remote_addr":"172.18.0.1","request":"GET / HTTP/1.1","status":"200","body_bytes_sent":"615","request_time":"0.000","upstream_response_time":"0.001","upstream_addr":"172.18.0.3:80","http_referrer":"","http_user_agent":"curl/7.88.1","request_id":"0b2a1c3d4e5f60718293a4b5c6d7e8f9"}"#,
        ]),
    ]

    public let fieldNotes = """
        `$remote_addr` → `peer_ip`; the client is the rightmost public hop of `$http_x_forwarded_for` when \
        present (the hop our own load balancer appended), else `$remote_addr` → `client_ip`. `$time_local` \
        (completion time, with its offset) → `time`; `$request` → `method` (its start), `extra.protocol` (its end), `path`, `query` (the target whole in between, \
        spaces included; a malformed request line is kept whole in `extra.request`); `$status`, `$body_bytes_sent` → `status`, `bytes`; \
        `$http_referer`, `$remote_user` → `extra`; `$http_user_agent` → `user_agent`. Trailing fields of \
        common custom formats: `rt=`/`request_time=` or a bare decimal → `duration`; `urt=`, `uct=`, `uht=` \
        → `extra.upstream_*`; `host=` → `host`; a 32-hex token (`$request_id`) → `request_id`; \
        `Root=1-…` → `trace_id`; any other trailing token → `extra.trailing`. An address list before the \
        ident field (`"xff" $remote_addr - …`, `$proxy_add_x_forwarded_for - …`) → `forwarded_for`. \
        A virtual host before `$remote_addr` (`$host $remote_addr - …`, `$host:$server_port …`, Apache's \
        `%v:%p %h %l …`: a host name or address followed by an address, or a host name followed by any \
        text and the ident `-`) → `host`, its port → `extra.server_port`. After the standard fields, bare \
        times are read without a format: of two (`$request_time` and `$upstream_response_time`, in either order), the larger → `duration` \
        (`$request_time` includes the upstream's time and is never a list), the other → `extra.upstream_response_time`; one alone → `duration`; \
        more stay in `extra.trailing`, and a note says so; `ip:port`, \
        `unix:` and their lists → `extra.upstream_addr`, a quoted address list → `forwarded_for`. nginx's escapes of `\"` and `\\` \
        (`\\x22`, `\\x5C`) in the request, referer and user agent are decoded; escapes of unprintable bytes stay as written. \
        `escape=json` lines (a JSON object whose keys are the variable names, with or without `$`/`@`; \
        `time`/`timestamp`/`time_local`/`time_iso8601` read by the shape of the value; `http_referrer`) are \
        read as `--nginx-log-format` reads those variables; they must name `remote_addr`, a stamp and the \
        request or status. `client_ip` and `peer_ip` hold IP addresses only: a `$remote_addr` that is none \
        (`unix:`, a resolved host name, a masked `X.X.X.X`) → `extra.remote_addr_text`, with a note; \
        X-Forwarded-For hops that are no address are never the client. \
        Error-log records among the lines (one file for both logs; fail2ban's fixtures; journald's \
        `host nginx[2833]: 2015/01/21 …`) are read as `nginx-error` reads them, their zone-less stamps in the \
        zone of `--tz`, else of the file's own access lines before them, else UTC (a note says which). \
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
        // API Gateway's CLF preset reads as an nginx line with unquoted fields after the size; a
        // UUID request id there is API Gateway's.
        let records = lines.filter { !$0.hasPrefix("#") }
        if !records.isEmpty, records.filter(APIGatewayAccessParser.isConsoleCLFWithRequestID).count * 2 > records.count { score *= 0.5 }
        // nginx's access lines sent to syslog (`access_log syslog:`) read as one loosely (the
        // syslog prefix as `$remote_addr` and `$remote_user`): such a file is syslog's to read.
        if !records.isEmpty, records.filter({ $0.range(of: Self.syslogPrefix, options: .regularExpression) != nil }).count * 2 > records.count { score *= 0.5 }
        return score
    }

    /// A syslog line's prefix: `Feb  6 05:32:10 host prog[pid]: ` or `2025-02-06T05:32:10+00:00 host prog[pid]: `.
    static let syslogPrefix = #"^(?:<\d{1,3}>)?(?:[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d|\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\S*) \S+ [^\s:\[]+(?:\[\d+\])?: "#

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

    /// Error-log records among the access lines (one file for both logs, fail2ban's fixtures,
    /// journald's output) are read as the error log would read them (`NginxMixedAccessParser`).
    public func makeParser(_ context: ParseContext) throws -> any RecordParser {
        let hints = context.hints
        let directory = context.directory
        let path = context.path, position = context.position
        let fileZone = NginxFileZone()
        let learnZone: (ZoneSpec) -> Void = { zone in
            fileZone.zone = fileZone.zone ?? zone
            hints.learnZone(zone, directory: directory, from: path, position: position)
        }
        let errorZone = NginxErrorZone(context)
        if let format = try logFormat ?? context.options.nginxLogFormat.map(NginxLogFormat.init(definition:)) {
            return NginxMixedAccessParser(access: NginxLogFormatParser(format: format, learnZone: learnZone),
                                          fileZone: fileZone, errorZone: errorZone)
        }
        return NginxMixedAccessParser(access: NginxAccessParser(directory: directory, learnZone: learnZone),
                                      fileZone: fileZone, errorZone: errorZone)
    }
}

/// The offset a file's first access line showed (set by the access parser's `learnZone`).
final class NginxFileZone: @unchecked Sendable {
    var zone: ZoneSpec?
}

/// What the zone of error records inside an access log can come from besides the file's own
/// access lines: `--tz`. (Not an access log beside it: access logs are parsed side by side, and
/// must learn nothing from each other.)
struct NginxErrorZone {
    var given: ZoneSpec?

    init(_ context: ParseContext) {
        given = context.options.timeZone
    }

    init(given: ZoneSpec? = nil) {
        self.given = given
    }
}

/// An nginx access log with error-log records among its lines: fail2ban's test files mix both,
/// one `access_log`/`error_log` pair may point at the same file, and journald writes
/// `host nginx[2833]: 2015/01/21 …` for the error records. A line with the error log's stamp, and
/// the lines continuing such a record while its quoted text is open, go to an `NginxErrorParser`;
/// every other line to the access parser. The error records' zone-less stamps are read in the
/// zone of `--tz`, else of this file's own access lines before them, else UTC, and a note says which.
struct NginxMixedAccessParser<Access: RecordParser>: RecordParser {
    var access: Access
    let fileZone: NginxFileZone
    let errorZone: NginxErrorZone
    private var errors: NginxErrorParser?

    init(access: Access, fileZone: NginxFileZone, errorZone: NginxErrorZone) {
        self.access = access
        self.fileZone = fileZone
        self.errorZone = errorZone
    }

    mutating func consume(_ line: Line, into sink: inout RecordSink) {
        if errors?.hasPending == true {
            if NginxErrorParser.stampOffset(line.bytes) != nil { return errors!.consume(line, into: &sink) }
            if errors!.pendingIsOpen {
                // Inside quoted text an error record continues, unless the line is an access record.
                var scratch = RecordSink()
                access.consume(line, into: &scratch)
                if scratch.rejected.isEmpty, scratch.eventCount > 0 {
                    errors!.flushPending(into: &sink)
                    return Self.move(scratch, into: &sink)
                }
                return errors!.consume(line, into: &sink)
            }
            errors!.flushPending(into: &sink)
        }
        if !line.isEmpty, NginxErrorParser.stampOffset(line.bytes) != nil {
            if errors == nil { errors = makeErrorParser() }
            return errors!.consume(line, into: &sink)
        }
        access.consume(line, into: &sink)
    }

    mutating func finish(into sink: inout RecordSink) {
        errors?.finish(into: &sink)
        access.finish(into: &sink)
    }

    private func makeErrorParser() -> NginxErrorParser {
        let what = "nginx error-log records in this access log (their stamps have no zone) read"
        if let given = errorZone.given {
            return NginxErrorParser(zone: given, zoneNote: "\(what) in \(given), from --tz", readsAccessLines: false)
        }
        if let own = fileZone.zone {
            return NginxErrorParser(zone: own, zoneNote: "\(what) in \(own), the offset of the file's own access-log lines before them; give --tz to override", readsAccessLines: false)
        }
        return NginxErrorParser(zone: .utc, zoneNote: "\(what) as UTC: no --tz and no access-log line with a zone before them; give --tz if the server ran in another zone", readsAccessLines: false)
    }

    static func move(_ scratch: RecordSink, into sink: inout RecordSink) {
        for e in scratch.events { sink.emit(e) }
        sink.rejected += scratch.rejected
        for n in scratch.notes { sink.note(n) }
    }
}

/// The fixed-layout parser for combined/main and their common extensions, on bytes.
struct NginxAccessParser: RecordParser {
    let directory: String
    let learnZone: ((ZoneSpec) -> Void)?
    private var zoneLearnt = false
    private var dst = DSTZoneInference()

    init(directory: String, learnZone: ((ZoneSpec) -> Void)?) {
        self.directory = directory
        self.learnZone = learnZone
    }

    /// The file's offset, once, and a named zone when the offset changes (a daylight-saving switch).
    private mutating func learn(offset: Int, utc: Int64) {
        guard let learnZone else { return }
        if !zoneLearnt {
            zoneLearnt = true
            learnZone(.fixed(seconds: offset))
        }
        if let named = dst.observe(offset: offset, utc: utc) { learnZone(named) }
    }

    mutating func consume(_ line: Line, into sink: inout RecordSink) {
        if line.isEmpty { return }
        if consumeCommonShape(line, into: &sink) { return }
        if line.isComment { return sink.rejectComment(line, notA: "an access-log record") }
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
        // `$remote_addr` an address and the ident `-`: anything else (a virtual host first, an
        // address list, a socket name) is for the general reader.
        let remote = s.token()
        guard IPAddressText.isAddress(remote) else { return false }
        let ident = s.token()
        guard ident.count == 1, ident[0] == 0x2D else { return false }
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
        // nginx's `\x22`/`\x5C` escapes inside the quoted fields: the general reader decodes them.
        if request.contains(0x5C) || (quoted.0?.contains(0x5C) ?? false) || (quoted.1?.contains(0x5C) ?? false) { return false }
        // The request line: METHOD origin-form-target [protocol].
        guard let parts = RequestLine(request) else { return false }
        let method = parts.method(request), target = parts.target(request)
        guard target.first == 0x2F else { return false }
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
        if let proto = parts.protocolName(request) { sink.batch.extraField("protocol", proto, start: extra) }
        if let referer = quoted.0.flatMap(ByteScanner.optionalBytes) { sink.batch.extraField("referer", referer, start: extra) }
        if let u = ByteScanner.optionalBytes(user) { sink.batch.extraField("remote_user", u, start: extra) }
        sink.batch.endExtra(start: extra)
        learn(offset: offset, utc: time)
        return true
    }

    mutating func consumeAnyShape(_ line: Line, into sink: inout RecordSink) {
        if line.bytes.first == 0x7B { return consumeJSON(line, into: &sink) } // `{`: escape=json
        if NginxErrorParser.stampOffset(line.bytes) != nil {
            // Read as one where the file is an nginx access log (`NginxMixedAccessParser`).
            return sink.reject(line, "an nginx error-log record in an access log")
        }
        var s = ByteScanner(line.bytes)
        // A virtual host may come first (`$host $remote_addr - …`, `$host:$server_port …`, Apache's
        // vhost_combined `%v:%p %h %l …`): a host name or an address, then where `$remote_addr`
        // stands an address or an address list; or a host name, then anything, then the ident `-`
        // (combined has the ident second: `203.0.113.5 - user [`).
        var vhost: UnsafeBufferPointer<UInt8>?
        do {
            var probe = s
            let first = probe.token()
            let secondIsAddresses: Bool
            var thirdIsIdent = false
            if probe.peek() == 0x22 {
                secondIsAddresses = true
            } else {
                let second = probe.token()
                secondIsAddresses = Self.isAddressOrListHop(second)
                let third = probe.token()
                thirdIsIdent = !(second.count == 1 && second[0] == 0x2D) && third.count == 1 && third[0] == 0x2D
            }
            if !first.isEmpty, first[0] != 0x22, first[first.count - 1] != 0x2C, Self.isHostField(first),
               secondIsAddresses || (thirdIsIdent && !IPAddressText.isAddress(first)) {
                vhost = first
                _ = s.token()
            }
        }
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
            if IPAddressText.isAddress(next) {
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
        if let vhost { Self.applyVirtualHost(vhost, to: &event, sink: &sink) }
        let peer = ByteScanner.string(remote)
        if event.setAddress(.peer, peer, elseKeep: "remote_addr_text") {
            event.clientIP = event.peerIP
        } else {
            sink.note(IPAddressText.note(field: "nginx $remote_addr", key: "remote_addr_text"))
        }
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
        if !s.atEnd, parseTrailing(&s, into: &event) {
            sink.note("bare times after the standard fields were read without a format: of two, the larger as $request_time (duration: it includes the upstream's time, and is never a list or `-`), the other as $upstream_response_time; one alone as $request_time; give --nginx-log-format to read another layout exactly")
        }
        learn(offset: offset, utc: time)
        if Self.contains(Self.escapeMark, in: line.bytes) { Self.decodeQuoteEscapes(&event) }
        sink.emit(event)
    }

    private static let escapeMark = Array("\\x".utf8)

    /// nginx writes a `"` or `\` inside a quoted field as `\x22` / `\x5C` (its default escaping; the
    /// other escapes stand for bytes that are not printable and stay as written): the request's,
    /// referer's and user agent's own characters are restored, as other layers log them.
    static func decodeQuoteEscapes(_ event: inout Event) {
        func decode(_ s: String?) -> String? {
            guard let s, s.contains("\\x") else { return s }
            var out = ""
            var rest = Substring(s)
            while let r = rest.range(of: "\\x") {
                out += rest[..<r.lowerBound]
                let code = rest[r.upperBound...].prefix(2)
                if code.uppercased() == "22" { out += "\"" } else if code.uppercased() == "5C" { out += "\\" } else { out += rest[r.lowerBound..<rest.index(r.upperBound, offsetBy: code.count)] }
                rest = rest[rest.index(r.upperBound, offsetBy: code.count)...]
            }
            return out + rest
        }
        event.path = decode(event.path)
        event.query = decode(event.query)
        event.userAgent = decode(event.userAgent)
        if let referer = event.extra["referer"] { event.extra["referer"] = decode(referer) }
    }

    mutating func finish(into sink: inout RecordSink) {}

    private static let remoteAddrKey = Array("remote_addr".utf8)

    /// A line of a `log_format … escape=json '{"remote_addr":"$remote_addr",…}'`: a JSON object
    /// whose keys name the variables (`remote_addr`, `$remote_addr` or `@remote_addr`; `time`,
    /// `timestamp` for whichever stamp the value is; `http_referrer` for `$http_referer`), read
    /// as `--nginx-log-format` reads those variables. It must give `$remote_addr`, a stamp and the
    /// request or the status; other JSON (API Gateway, CloudWatch) is not an nginx line.
    mutating func consumeJSON(_ line: Line, into sink: inout RecordSink) {
        guard Self.contains(Self.remoteAddrKey, in: line.bytes) else {
            return sink.reject(line, "JSON without a remote_addr key: not an nginx access-log line (escape=json lines name the variables)")
        }
        guard case .success(let value) = AWSJSON.parse(line.bytes), let object = value as? [String: Any] else {
            return sink.reject(line, "invalid or truncated JSON, or not an object")
        }
        var reader = NginxFieldReader(event: Event(time: nil, layer: .nginx, kind: .access, line: line.number, raw: line.copyBytes()))
        var sawAddress = false, sawTime = false, sawRequest = false
        // Sorted: the same record whatever order the keys came in.
        for (key, value) in object.sorted(by: { $0.key < $1.key }) {
            var name = key.lowercased()
            while name.first == "$" || name.first == "@" { name.removeFirst() }
            guard let text = AWSJSON.string(value) ?? (AWSJSON.isEmptyCollection(value) ? nil : AWSJSON.compact(value)) else { continue }
            let kind = Self.jsonKind(name, text)
            switch kind {
            case .remoteAddr: sawAddress = true
            case .timeLocal, .timeISO8601, .msec: sawTime = true
            case .request, .requestMethod, .requestURI, .uri, .status: sawRequest = true
            default: break
            }
            let why = Line.with(text, number: line.number) { reader.apply(kind, name: name, $0.bytes) }
            if let why { return sink.reject(line, "escape=json line: \(why)") }
        }
        guard sawAddress, sawTime, sawRequest else {
            return sink.reject(line, "JSON without nginx's remote_addr, a time_local/time_iso8601/msec stamp and the request or status: not an nginx access-log line")
        }
        let event = reader.finish(into: &sink)
        if let learnt = reader.learnt, !zoneLearnt, let learnZone {
            zoneLearnt = true
            learnZone(learnt)
        }
        sink.note("JSON lines (log_format escape=json) read by their keys as nginx variables")
        sink.emit(event)
    }

    /// The variable a JSON key names. A stamp is read by the shape of its value, whatever the key
    /// says: configurations write `"time_local":"$time_iso8601"` (nginx-proxy's JSON default) as
    /// often as `"@timestamp":"$time_iso8601"`.
    static func jsonKind(_ name: String, _ value: String) -> NginxLogFormat.Kind {
        switch name {
        case "time", "timestamp", "time_local", "time_iso8601", "msec":
            let u = Array(value.utf8)
            if u.count >= 11, u[2] == 0x2F, u[6] == 0x2F { return .timeLocal }
            if u.count >= 19, u[4] == 0x2D, u[7] == 0x2D { return .timeISO8601 }
            if !u.isEmpty, u.allSatisfy({ ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x2E }) { return .msec }
            return name == "time" || name == "timestamp" ? .other : NginxLogFormat.Kind(variable: name)
        case "http_referrer", "referrer", "referer": return .referer
        default: return NginxLogFormat.Kind(variable: name)
        }
    }

    static func contains(_ needle: [UInt8], in b: UnsafeBufferPointer<UInt8>) -> Bool {
        guard b.count >= needle.count else { return false }
        var i = 0
        while i <= b.count - needle.count {
            if b[i] == needle[0] {
                var k = 1
                while k < needle.count, b[i + k] == needle[k] { k += 1 }
                if k == needle.count { return true }
            }
            i += 1
        }
        return false
    }

    /// An address, or the first hop of an address list (`203.0.113.7,`).
    static func isAddressOrListHop(_ b: UnsafeBufferPointer<UInt8>) -> Bool {
        if let last = b.last, last == 0x2C { return IPAddressText.isAddress(UnsafeBufferPointer(rebasing: b[..<(b.count - 1)])) }
        return IPAddressText.isAddress(b)
    }

    /// What `$host`, `$server_name`, `$http_host` or `%v:%p` write: a host name or an address,
    /// with an optional `:port` (`[ipv6]:port` too), or `-`/`_`. Letters, digits, `.-_:[]` only.
    static func isHostField(_ b: UnsafeBufferPointer<UInt8>) -> Bool {
        guard !b.isEmpty, b.count <= 255 else { return false }
        for c in b {
            let ok = (c >= 0x30 && c <= 0x39) || (c >= 0x61 && c <= 0x7A) || (c >= 0x41 && c <= 0x5A)
                || c == 0x2E || c == 0x2D || c == 0x5F || c == 0x3A || c == 0x5B || c == 0x5D
            if !ok { return false }
        }
        return true
    }

    /// The leading virtual host → `host` (and its `:port` → `extra.server_port`).
    static func applyVirtualHost(_ b: UnsafeBufferPointer<UInt8>, to event: inout Event, sink: inout RecordSink) {
        sink.note("lines begin with a virtual host before $remote_addr ($host, $server_name or Apache's %v:%p): read into host, its port into extra.server_port")
        guard let text = ByteScanner.optionalString(b), text != "_" else { return }
        var host = Substring(text)
        func isPort(_ p: Substring) -> Bool { !p.isEmpty && p.count <= 5 && p.allSatisfy { $0.isASCII && $0.isNumber } }
        if host.hasPrefix("[") {
            // `[2001:db8::1]:443`
            if let close = host.firstIndex(of: "]") {
                let after = host[host.index(after: close)...]
                if after.hasPrefix(":"), isPort(after.dropFirst()) {
                    event.extra["server_port"] = String(after.dropFirst())
                    host = host[...close]
                }
            }
        } else if let colon = host.firstIndex(of: ":"), !host[host.index(after: colon)...].contains(":"),
                  isPort(host[host.index(after: colon)...]) {
            // `name:443`; a bare IPv6 address (several colons) has no port.
            event.extra["server_port"] = String(host[host.index(after: colon)...])
            host = host[..<colon]
        }
        if !host.isEmpty { event.host = String(host) }
    }

    private func findOpenBracket(_ b: UnsafeBufferPointer<UInt8>, from: Int) -> Int? {
        var i = from
        while i < b.count {
            if b[i] == 0x5B, i == from || b[i - 1] == 0x20 { return i }
            i += 1
        }
        return nil
    }

    /// Free-form fields after the standard ones, as the custom formats people write them:
    /// `key=value` pairs, an X-Amzn-Trace-Id, bare times (`$request_time`, then
    /// `$upstream_response_time`, lists such as `0.001, 0.002 : 0.010` included), `$upstream_addr`
    /// (`10.0.0.5:8000`, `unix:/run/app.sock`, lists), a quoted address list
    /// (`"$http_x_forwarded_for"`), a 32-hex `$request_id`. Returns true when bare times were read
    /// by their position (the caller notes it).
    private func parseTrailing(_ s: inout ByteScanner, into event: inout Event) -> Bool {
        var unknown: [String] = []
        var times: [UnsafeBufferPointer<UInt8>] = []
        while !s.atEnd {
            s.skipSpaces()
            if s.atEnd { break }
            let tok: UnsafeBufferPointer<UInt8>
            var quoted = false
            if s.peek() == 0x22, let q = s.quoted() {
                tok = q
                quoted = true
            } else {
                tok = Self.listToken(&s)
            }
            if tok.isEmpty { continue }
            let text = ByteScanner.string(tok)
            if let eq = text.firstIndex(of: "="), eq != text.startIndex, !text.hasPrefix("Root=") {
                let key = String(text[..<eq]).lowercased()
                var value = String(text[text.index(after: eq)...])
                if value.hasPrefix("\"") && value.hasSuffix("\"") && value.count >= 2 { value = String(value.dropFirst().dropLast()) }
                applyKeyValue(key, value, into: &event, unknown: &unknown)
            } else if text.hasPrefix("Root=") || text.contains(";Root=") {
                event.traceID = traceRoot(text)
            } else if !quoted, Self.isTimeList(tok) {
                times.append(tok)
            } else if !quoted, Self.isUpstreamAddressList(text) {
                if event.extra["upstream_addr"] == nil { event.extra["upstream_addr"] = text } else { unknown.append(text) }
            } else if quoted, event.forwardedFor == nil, Self.isAddressList(text) {
                event.forwardedFor = text
                if let client = ByteScanner.clientFromForwardedFor(text) { event.clientIP = client }
            } else if text.count == 32, text.allSatisfy(\.isHexDigit) {
                event.requestID = text
            } else if text != "-" {
                unknown.append(text)
            }
        }
        // Two bare times are `$request_time` and `$upstream_response_time` in either order (both
        // orders are common): $request_time includes the upstream's time, so it is the larger,
        // and it is never a list. A third or more cannot be told apart: kept as text.
        var positional = false
        if times.count == 2, event.duration == nil, event.extra["upstream_response_time"] == nil {
            let texts = times.map { ByteScanner.string($0) }
            let plain = texts.map { !$0.contains(",") && !$0.contains(" ") && !$0.contains(":") }
            let micros = times.map { ByteScanner.secondsToMicros($0) }
            let request: Int?
            switch (plain[0], plain[1]) {
            case (true, true): request = (micros[0] ?? -1) >= (micros[1] ?? -1) ? 0 : 1
            case (true, false): request = 0
            case (false, true): request = 1
            default: request = nil
            }
            if let r = request, let us = micros[r] {
                event.duration = us
                event.extra["upstream_response_time"] = texts[1 - r]
                positional = true
                times = []
            }
        }
        for (k, tok) in times.enumerated() {
            let text = ByteScanner.string(tok)
            if k == 0, event.duration == nil, !text.contains(","), !text.contains(" "), let micros = ByteScanner.secondsToMicros(tok) {
                event.duration = micros
                positional = true
            } else if k == 1, times.count == 2, event.extra["upstream_response_time"] == nil {
                event.extra["upstream_response_time"] = text
                positional = true
            } else {
                unknown.append(text)
            }
        }
        if !unknown.isEmpty { event.extra["trailing"] = unknown.joined(separator: " ") }
        return positional
    }

    /// One space-separated token, or a list nginx writes with spaces in it (`$upstream_addr` and
    /// `$upstream_*_time`: `a, b : c`): a token ending in `,` or followed by a lone `:` continues.
    static func listToken(_ s: inout ByteScanner) -> UnsafeBufferPointer<UInt8> {
        func next(_ s: inout ByteScanner) -> Range<Int> {
            let from = s.pos
            let tok = s.token()
            return from..<(from + tok.count)
        }
        let first = next(&s)
        guard !first.isEmpty else { return UnsafeBufferPointer(rebasing: s.bytes[first]) }
        var last = first
        var parts = 0
        while parts < 64 {
            var probe = s
            probe.skipSpaces()
            let following = next(&probe)
            if following.isEmpty || s.bytes[following.lowerBound] == 0x22 { break }
            if s.bytes[last.upperBound - 1] == 0x2C {
                last = following // `a, b`
            } else if following.count == 1, s.bytes[following.lowerBound] == 0x3A {
                let after = next(&probe) // `a : b`
                guard !after.isEmpty else { break }
                last = after
            } else {
                break
            }
            s = probe
            parts += 1
        }
        return UnsafeBufferPointer(rebasing: s.bytes[first.lowerBound..<last.upperBound])
    }

    /// `0.016`, `-`, or a list of them (`0.001, 0.002 : 0.010`), with at least one number: each
    /// part digits with one `.` in them, or `-`.
    static func isTimeList(_ b: UnsafeBufferPointer<UInt8>) -> Bool {
        var sawNumber = false
        var digits = 0, dots = 0, dash = false
        func partOK() -> Bool {
            if dash { return digits == 0 && dots == 0 }
            return digits > 0 && dots == 1
        }
        for c in b {
            switch c {
            case 0x30...0x39: if dash { return false }; digits += 1
            case 0x2E: if digits == 0 || dots > 0 { return false }; dots += 1
            case 0x2D: if digits > 0 || dots > 0 || dash { return false }; dash = true
            case 0x2C, 0x3A:
                guard partOK() else { return false }
                if !dash { sawNumber = true }
                digits = 0; dots = 0; dash = false
            case 0x20: continue
            default: return false
            }
        }
        guard partOK() else { return false }
        return sawNumber || !dash
    }

    /// `$upstream_addr`: `10.0.0.5:8000`, `[2001:db8::5]:80`, `unix:/run/app.sock`, or a list of them.
    static func isUpstreamAddressList(_ text: String) -> Bool {
        var any = false
        for part in text.split(separator: ",").flatMap({ $0.split(separator: " : ") }) {
            let p = part.trimmingCharacters(in: .whitespaces)
            if p.isEmpty || p == "-" { continue }
            if p.hasPrefix("unix:") && p.count > 5 { any = true; continue }
            guard p.contains(":"), let address = IPAddressText.address(inHostPort: p[...]), address.count < p.count else { return false }
            any = true
        }
        return any
    }

    /// A list of addresses only (an X-Forwarded-For value): `203.0.113.7` or `198.51.100.2, 10.0.0.1`.
    static func isAddressList(_ text: String) -> Bool {
        let hops = text.split(separator: ",")
        return !hops.isEmpty && hops.allSatisfy { IPAddressText.isAddress($0.trimmingCharacters(in: .whitespaces)) }
    }

    private func applyKeyValue(_ key: String, _ value: String, into event: inout Event, unknown: inout [String]) {
        let dash = value == "-" || value.isEmpty
        switch key {
        case "rt", "request_time":
            // Seconds with a fraction, as nginx prints them; a whole number's unit is unknown.
            if !dash, value.contains(".") { event.duration = Line.with(value, number: 0) { ByteScanner.secondsToMicros($0.bytes) } }
            else if !dash { event.extra[key] = value }
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

/// A request line's parts: the method from its start, the protocol (`HTTP/x.y`, or `-`) from its
/// end, and the target whole in between, spaces and all. Attack probes send spaces in the URL
/// (`/shell?cd+/tmp;wget+ a.example/x`), which ALB logs as received and nginx accepts: reading
/// token by token cut the target at the first space and took the rest for the protocol.
struct RequestLine {
    var methodEnd: Int
    var targetRange: Range<Int>
    var protocolRange: Range<Int>?

    init?(_ b: UnsafeBufferPointer<UInt8>) {
        var i = 0
        while i < b.count, b[i] != 0x20 { i += 1 }
        guard i > 0, i <= 20, i < b.count else { return nil }
        for k in 0..<i {
            let c = b[k]
            guard (c >= 0x41 && c <= 0x5A) || c == 0x2D || c == 0x5F else { return nil }
        }
        methodEnd = i
        let start = i + 1
        var end = b.count
        protocolRange = nil
        var j = b.count - 1
        while j >= start, b[j] != 0x20 { j -= 1 }
        if j >= start, Self.isProtocol(UnsafeBufferPointer(rebasing: b[(j + 1)...])) {
            protocolRange = (j + 1)..<b.count
            end = j
        }
        // One space separates the parts; a target that begins or ends with another is no target.
        guard start < end, b[start] != 0x20, b[end - 1] != 0x20 else { return nil }
        targetRange = start..<end
    }

    /// `HTTP/1.1`, `HTTP/2.0`, `HTTP/2`, `HTTP/3`, or `-`.
    static func isProtocol(_ b: UnsafeBufferPointer<UInt8>) -> Bool {
        if b.count == 1 { return b[0] == 0x2D }
        guard b.count >= 6, b.count <= 12, b[0] == 0x48, b[1] == 0x54, b[2] == 0x54, b[3] == 0x50, b[4] == 0x2F else { return false }
        var digits = 0, dots = 0
        for c in b[5...] {
            if c >= 0x30 && c <= 0x39 { digits += 1 } else if c == 0x2E, digits > 0, dots == 0 { dots += 1 } else { return false }
        }
        return digits > 0 && b[b.count - 1] != 0x2E
    }

    func method(_ b: UnsafeBufferPointer<UInt8>) -> UnsafeBufferPointer<UInt8> { UnsafeBufferPointer(rebasing: b[..<methodEnd]) }
    func target(_ b: UnsafeBufferPointer<UInt8>) -> UnsafeBufferPointer<UInt8> { UnsafeBufferPointer(rebasing: b[targetRange]) }
    /// The protocol, unless it is `-`.
    func protocolName(_ b: UnsafeBufferPointer<UInt8>) -> UnsafeBufferPointer<UInt8>? {
        guard let r = protocolRange, r.count > 1 else { return nil }
        return UnsafeBufferPointer(rebasing: b[r])
    }
}

/// Splits `METHOD target PROTOCOL` into method, path and query (`RequestLine`). A request line
/// that is not of that shape (`-`, TLS bytes sent to a plain port) is kept whole in `extra.request`.
func splitRequest(_ request: UnsafeBufferPointer<UInt8>, into event: inout Event) {
    guard let parts = RequestLine(request) else {
        if let whole = ByteScanner.optionalString(request) { event.extra["request"] = whole }
        return
    }
    event.method = ByteScanner.string(parts.method(request))
    if let proto = parts.protocolName(request) { event.extra["protocol"] = ByteScanner.string(proto) }
    splitTarget(ByteScanner.string(parts.target(request)), into: &event)
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
