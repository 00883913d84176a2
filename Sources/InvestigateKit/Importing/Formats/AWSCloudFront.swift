import Foundation

/// Amazon CloudFront standard access logs (W3C extended format, tab-separated, a `#Version:` and a
/// `#Fields:` line at the top of every S3 object `DISTID.YYYY-MM-DD-HH.unique-id.gz`).
///
/// Field list and meanings: the CloudFront developer guide, "Standard log file format" (archived
/// `awsdocs/amazon-cloudfront-developer-guide` `doc_source/AccessLogs.md`, and the live
/// standard-logs-reference page); x-edge-detailed-result-type values from its real-time logs page.
/// The samples are the guide's own example lines. The field order is read from the file's
/// `#Fields:` line when there is one (a distribution may log fewer or more fields); without it, the
/// documented 33 fields in their documented order.
public struct AWSCloudFrontImporter: Importer {
    public init() {}

    public let id = "cloudfront"
    /// S3 objects, written whole: an unterminated last line is read as it is.
    public var writtenLive: Bool { false }
    public let title = "Amazon CloudFront standard access log"
    public let layer = Layer.cloudfront
    public let documentation = "https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/standard-logs-reference.html"

    static let ua = "Mozilla/5.0%20(Windows%20NT%2010.0;%20Win64;%20x64)%20AppleWebKit/537.36%20(KHTML,%20like%20Gecko)%20Chrome/78.0.3904.108%20Safari/537.36"

    public let samples = [
        FormatSample(fileName: "E2EXAMPLE1ABCD.2019-12-04-21.a1b2c3d4.gz", lines: [
            "2019-12-04\t21:02:31\tLAX1\t392\t192.0.2.100\tGET\td111111abcdef8.cloudfront.net\t/index.html\t200\t-\t\(ua)\t-\t-\tHit\tSOX4xwn4XV6Q4rgb7XiVGOHms_BGlTAC4KyHmureZmBNrjGdRLiNIQ==\td111111abcdef8.cloudfront.net\thttps\t23\t0.001\t-\tTLSv1.2\tECDHE-RSA-AES128-GCM-SHA256\tHit\tHTTP/2.0\t-\t-\t11040\t0.001\tHit\ttext/html\t78\t-\t-",
            "2019-12-04\t21:02:31\tLAX1\t392\t192.0.2.100\tGET\td111111abcdef8.cloudfront.net\t/index.html\t200\t-\t\(ua)\t-\t-\tHit\tk6WGMNkEzR5BEM_SaF47gjtX9zBDO2m349OY2an0QPEaUum1ZOLrow==\td111111abcdef8.cloudfront.net\thttps\t23\t0.000\t-\tTLSv1.2\tECDHE-RSA-AES128-GCM-SHA256\tHit\tHTTP/2.0\t-\t-\t11040\t0.000\tHit\ttext/html\t78\t-\t-",
            "2019-12-13\t22:36:27\tSEA19-C1\t900\t192.0.2.200\tGET\td111111abcdef8.cloudfront.net\t/favicon.ico\t502\thttp://www.example.com/\t\(ua)\t-\t-\tError\t1pkpNfBQ39sYMnjjUQjmH2w1wdJnbHYTbag21o_3OfcQgPzdL2RSSQ==\twww.example.com\thttp\t675\t0.102\t-\t-\t-\tError\tHTTP/1.1\t-\t-\t25260\t0.102\tOriginDnsError\ttext/html\t507\t-\t-",
            "2019-12-13\t22:37:02\tSEA19-C2\t900\t192.0.2.200\tGET\td111111abcdef8.cloudfront.net\t/\t502\t-\tcurl/7.55.1\t-\t-\tError\tkBkDzGnceVtWHqSCqBUqtA_cEs2T3tFUBbnBNkB9El_uVRhHgcZfcw==\twww.example.com\thttp\t387\t0.103\t-\t-\t-\tError\tHTTP/1.1\t-\t-\t12644\t0.103\tOriginDnsError\ttext/html\t507\t-\t-",
        ]),
    ]

    public let fieldNotes = """
        Fields are taken by name from the file's `#Fields:` line (both header lines are the file's frame, not records or rejected \
        lines), else in the documented order. `date` + `time` (UTC, when the edge finished responding) → `time`; \
        `time-taken` (s) → `duration`; `c-ip` → `client_ip` and `peer_ip` (no IP address → `extra.client_text`); \
        `x-forwarded-for` (what the viewer sent, not trusted) → `forwarded_for`; `cs-method` → `method`; \
        `cs-uri-stem` → `path`; `cs-uri-query` → `query`; `sc-status` → `status` (`000`, the viewer left before a \
        response: no status, `extra.sc_status`); `sc-bytes` → `bytes`; `cs(User-Agent)` → `user_agent`; \
        `x-host-header` (else `cs(Host)`) → `host`; `x-edge-request-id` → `request_id` (the `httpRequest.requestId` \
        of the WAF record of a web ACL on the distribution); `x-edge-detailed-result-type` (else the result type) \
        → `error` when `x-edge-result-type` or `x-edge-response-result-type` is `Error`. `extra`: `edge_location`, \
        `distribution_host` (`cs(Host)`), `referer`, `cookie`, `result_type`, `response_result_type`, \
        `detailed_result_type`, `scheme` (`cs-protocol`), `protocol` (`cs-protocol-version`), `received_bytes` \
        (`cs-bytes`), `ssl_protocol`, `ssl_cipher`, `fle_status`, `fle_encrypted_fields`, `client_port`, \
        `time_to_first_byte`, `content_type`, `content_len`, `range_start`, `range_end`; fields the 2023 guide \
        does not list (`c-country`, `asn`, …) → `extra` under their name (`-` → `_`) as written. CloudFront \
        URL-encodes spaces, controls, bytes ≥ 127 and the characters `<` `>` `"` `#` `%` `{` `}` `|` `\\` `^` `~` `[` `]`, \
        the backtick and `'` in field values: the text fields (stem, \
        query, referer, user agent, cookie, host headers, X-Forwarded-For, content type) are decoded once; a \
        value that is not valid percent-encoding or not UTF-8 after decoding is left out of its column and kept \
        in `extra.<field>_text` as written, with a note.
        """

    public func recognize(_ lines: [String], fileName: String) -> Double {
        var hits = 0, header = 0
        for line in lines {
            if line.hasPrefix("#Fields:") {
                if line.contains("x-edge-location") || line.contains("x-edge-request-id") || line.contains("x-edge-result-type") { hits += 1 }
            } else if line.hasPrefix("#Version:") {
                header += 1
            } else if Self.looksLikeRecord(line) {
                hits += 1
            }
        }
        guard hits > 0 else { return 0 }
        return Double(hits + header) / Double(lines.count)
    }

    /// `YYYY-MM-DD<TAB>HH:MM:SS<TAB>…` with at least a dozen tab-separated fields.
    static func looksLikeRecord(_ line: String) -> Bool {
        let u = Array(line.utf8.prefix(20))
        guard u.count == 20, u[10] == 0x09, u[4] == 0x2D, u[7] == 0x2D, u[13] == 0x3A, u[16] == 0x3A, u[19] == 0x09 else { return false }
        return line.utf8.reduce(0) { $0 + ($1 == 0x09 ? 1 : 0) } >= 11
    }

    public func makeParser(_ context: ParseContext) throws -> any RecordParser { AWSCloudFrontParser() }
}

struct AWSCloudFrontParser: RecordParser {
    /// The documented fields, in order (the header AWS writes today).
    static let documentedFields = [
        "date", "time", "x-edge-location", "sc-bytes", "c-ip", "cs-method", "cs(Host)", "cs-uri-stem", "sc-status",
        "cs(Referer)", "cs(User-Agent)", "cs-uri-query", "cs(Cookie)", "x-edge-result-type", "x-edge-request-id",
        "x-host-header", "cs-protocol", "cs-bytes", "time-taken", "x-forwarded-for", "ssl-protocol", "ssl-cipher",
        "x-edge-response-result-type", "cs-protocol-version", "fle-status", "fle-encrypted-fields", "c-port",
        "time-to-first-byte", "x-edge-detailed-result-type", "sc-content-type", "sc-content-len", "sc-range-start",
        "sc-range-end",
    ]
    /// Text fields CloudFront URL-encodes and that are decoded once (see `fieldNotes`).
    static let decoded: Set<String> = ["cs-uri-stem", "cs-uri-query", "cs(Referer)", "cs(User-Agent)", "cs(Cookie)", "cs(Host)",
                                       "x-host-header", "x-forwarded-for", "sc-content-type"]
    /// Plain fields → their `extra` key.
    static let extraKeys: [String: String] = [
        "x-edge-location": "edge_location", "cs(Host)": "distribution_host", "cs(Referer)": "referer", "cs(Cookie)": "cookie",
        "x-edge-result-type": "result_type", "x-edge-response-result-type": "response_result_type",
        "x-edge-detailed-result-type": "detailed_result_type", "cs-protocol": "scheme", "cs-protocol-version": "protocol",
        "cs-bytes": "received_bytes", "ssl-protocol": "ssl_protocol", "ssl-cipher": "ssl_cipher", "fle-status": "fle_status",
        "fle-encrypted-fields": "fle_encrypted_fields", "c-port": "client_port", "time-to-first-byte": "time_to_first_byte",
        "sc-content-type": "content_type", "sc-content-len": "content_len", "sc-range-start": "range_start", "sc-range-end": "range_end",
    ]
    static let known = Set(documentedFields)

    var fields = Self.documentedFields
    var fromHeader = false

    mutating func consume(_ line: Line, into sink: inout RecordSink) {
        if line.isEmpty { return }
        if line.isComment {
            let text = line.text
            if text.hasPrefix("#Fields:") {
                let names = text.dropFirst("#Fields:".count).split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
                if names.contains("date") && names.contains("time") {
                    fields = names
                    fromHeader = true
                    let unknown = names.filter { !Self.known.contains($0) }
                    if !unknown.isEmpty {
                        sink.note("CloudFront fields not in the 2023 field list kept in extra as written (not URL-decoded): \(unknown.prefix(8).joined(separator: ", "))")
                    }
                } else {
                    sink.note("a #Fields: line without date and time was not used; the fields are read in the documented order")
                }
            }
            // The W3C header every object begins with is the file's frame, not a rejected record;
            // any other `#` line is a comment, kept as a rejected line as elsewhere.
            if text.hasPrefix("#Version:") || text.hasPrefix("#Fields:") { return sink.framing() }
            return sink.rejectComment(line, notA: "a CloudFront access-log record")
        }
        switch parse(line, &sink) {
        case .success(let e): sink.emit(e)
        case .failure(let why): sink.reject(line, why.description)
        }
    }

    mutating func finish(into sink: inout RecordSink) {}

    func parse(_ line: Line, _ sink: inout RecordSink) -> Result<Event, ImporterError> {
        var values = line.bytes.split(separator: 0x09, omittingEmptySubsequences: false).map { Array($0) }
        // The guide's own example ends one line with a tab: an empty field after the last.
        if values.count == fields.count + 1, values.last?.isEmpty == true { values.removeLast() }
        var trailing: [[UInt8]] = []
        if values.count > fields.count {
            // More fields than named: only without a header (a newer layout): kept, said.
            guard !fromHeader else {
                return .failure(ImporterError("\(values.count) tab-separated fields; the #Fields: line names \(fields.count)"))
            }
            trailing = Array(values[fields.count...])
            values.removeLast(values.count - fields.count)
        }
        guard values.count == fields.count || (!fromHeader && values.count >= 19) else {
            return .failure(ImporterError("only \(values.count) tab-separated fields; \(fromHeader ? "the #Fields: line names" : "a CloudFront record has") \(fields.count)"))
        }
        var byName: [String: String] = [:]
        var rawText: [String: [UInt8]] = [:]
        for (name, value) in zip(fields, values) {
            rawText[name] = value
        }
        var e = Event(time: nil, layer: .cloudfront, kind: .access, line: line.number, raw: line.copyBytes())
        var badEncoding: [String] = []
        for (name, bytes) in rawText {
            if bytes == [0x2D] || bytes.isEmpty { continue }
            if Self.decoded.contains(name) {
                if let text = Self.percentDecode(bytes) { byName[name] = text } else {
                    badEncoding.append(name)
                    e.extra[Self.extraName(name) + "_text"] = String(decoding: bytes, as: UTF8.self)
                }
            } else {
                byName[name] = String(decoding: bytes, as: UTF8.self)
            }
        }
        if !badEncoding.isEmpty {
            sink.note("CloudFront fields that are not valid URL encoding (or not UTF-8 once decoded) were left out of their columns and kept in extra.<field>_text as written: \(badEncoding.sorted().joined(separator: ", "))")
        }
        guard let date = byName["date"], let clock = byName["time"] else { return .failure(ImporterError("no date or time field")) }
        guard date.utf8.count == 10, clock.utf8.count == 8, let time = AWSTime.iso8601("\(date)T\(clock)Z") else {
            return .failure(ImporterError("date '\(date.prefix(20))' and time '\(clock.prefix(20))' are not YYYY-MM-DD and HH:MM:SS"))
        }
        e.time = time
        if let ip = byName["c-ip"] {
            if e.setAddress(.client, ip, elseKeep: "client_text") { e.peerIP = e.clientIP } else {
                sink.note(IPAddressText.note(field: "c-ip", key: "client_text"))
            }
        }
        e.forwardedFor = byName["x-forwarded-for"]
        e.method = byName["cs-method"]
        e.path = byName["cs-uri-stem"]
        e.query = byName["cs-uri-query"]
        if let status = byName["sc-status"] {
            guard status.utf8.count == 3, let v = Int(status) else {
                return .failure(ImporterError("sc-status '\(status.prefix(20))' is not a status code"))
            }
            if v == 0 { e.extra["sc_status"] = status } else { e.status = v }
        }
        if let v = byName["sc-bytes"] {
            guard let n = Int64(v), n >= 0 else { return .failure(ImporterError("sc-bytes '\(v.prefix(20))' is not a byte count")) }
            e.bytes = n
        }
        if let v = byName["time-taken"] {
            guard v.utf8.count <= 15, let us = Line.with(v, number: 0, { ByteScanner.secondsToMicros($0.bytes) }), us >= 0 else {
                return .failure(ImporterError("time-taken '\(v.prefix(20))' is not a number of seconds"))
            }
            e.duration = us
        }
        e.userAgent = byName["cs(User-Agent)"]
        e.requestID = byName["x-edge-request-id"]
        e.host = byName["x-host-header"] ?? byName["cs(Host)"]
        for (name, value) in byName {
            if let key = Self.extraKeys[name] { e.extra[key] = value } else if !Self.known.contains(name) { e.extra[Self.extraName(name)] = value }
        }
        if byName["x-edge-result-type"] == "Error" || byName["x-edge-response-result-type"] == "Error" {
            e.error = byName["x-edge-detailed-result-type"] ?? "Error"
        }
        if !trailing.isEmpty {
            e.extra["trailing"] = trailing.map { String(decoding: $0, as: UTF8.self) }.joined(separator: "\t")
            sink.note("records with more fields than the documented 33 and no #Fields: line: the extra fields are kept in extra.trailing")
        }
        return .success(e)
    }

    static func extraName(_ field: String) -> String {
        String(field.map { $0 == "-" || $0 == "(" ? "_" : $0 }.filter { $0 != ")" }).lowercased()
    }

    /// `%XX` → the byte; nil when a `%` is not followed by two hex digits or the result is not UTF-8.
    static func percentDecode(_ b: [UInt8]) -> String? {
        guard b.contains(0x25) else { return String(decoding: b, as: UTF8.self) }
        var out: [UInt8] = []
        out.reserveCapacity(b.count)
        var i = 0
        while i < b.count {
            if b[i] == 0x25 {
                guard i + 2 < b.count, let hi = hex(b[i + 1]), let lo = hex(b[i + 2]) else { return nil }
                out.append(hi << 4 | lo)
                i += 3
            } else {
                out.append(b[i])
                i += 1
            }
        }
        return String(validating: out, as: UTF8.self)
    }

    private static func hex(_ c: UInt8) -> UInt8? {
        switch c {
        case 0x30...0x39: return c - 0x30
        case 0x41...0x46: return c - 0x41 + 10
        case 0x61...0x66: return c - 0x61 + 10
        default: return nil
        }
    }
}
