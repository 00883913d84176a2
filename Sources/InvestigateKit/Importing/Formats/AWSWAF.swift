import Foundation

/// AWS WAF v2 logs: one JSON record per line (S3, CloudWatch Logs), or Firehose output where the
/// records follow each other without a newline (`}{`).
public struct AWSWAFImporter: Importer {
    /// Firehose delivers records back to back with no newline: a whole object (5 MiB by default,
    /// buffers up to 128 MiB) is one physical line. 32 MiB covers common buffer settings while
    /// keeping memory bounded; larger objects are rejected with the reason.
    public var maxRecordBytes: Int? { 32 * 1024 * 1024 }

    public init() {}

    public let id = "waf"
    /// S3 objects and Firehose deliveries are finished files: an unterminated last line is read as it is.
    public var writtenLive: Bool { false }
    public let title = "AWS WAF v2 log (JSON, S3/CloudWatch/Firehose)"
    public let layer = Layer.waf
    public let documentation = "https://docs.aws.amazon.com/waf/latest/developerguide/logging-fields.html"

    public let samples = [
        FormatSample(fileName: "111111111111_waflogs_us-east-1_TEST-WEBACL_20230523T0710Z_e0ca43b5.log", lines: [
            #"{"timestamp":1684825816966,"formatVersion":1,"webaclId":"arn:aws:wafv2:us-east-1:944697335072:regional/webacl/cloudmonitoring-waf/8acf338d-9594-449d-b99a-f4e88a4cbac5","terminatingRuleId":"AWS-AWSManagedRulesAnonymousIpList","terminatingRuleType":"MANAGED_RULE_GROUP","action":"BLOCK","terminatingRuleMatchDetails":[],"httpSourceName":"ALB","httpSourceId":"944697335072-app/alb/1e3b6eac51c9c245","ruleGroupList":[{"ruleGroupId":"AWS#AWSManagedRulesCommonRuleSet","terminatingRule":null,"nonTerminatingMatchingRules":[],"excludedRules":null,"customerConfig":null},{"ruleGroupId":"AWS#AWSManagedRulesAnonymousIpList","terminatingRule":{"ruleId":"HostingProviderIPList","action":"BLOCK","ruleMatchDetails":null},"nonTerminatingMatchingRules":[],"excludedRules":null,"customerConfig":null}],"rateBasedRuleList":[],"nonTerminatingMatchingRules":[],"requestHeadersInserted":null,"responseCodeSent":null,"httpRequest":{"clientIp":"185.254.196.186","country":"US","headers":[{"name":"Host","value":"52.54.199.152"},{"name":"User-agent","value":"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/81.0.4044.129 Safari/537.36"},{"name":"Accept-Encoding","value":"gzip, deflate"},{"name":"Accept","value":"*/*"},{"name":"Connection","value":"keep-alive"}],"uri":"/.env","args":"REDACTED","httpVersion":"HTTP/1.1","httpMethod":"GET","requestId":"1-646c66d8-23174f95617bd0c633b81f3a"},"labels":[{"name":"awswaf:managed:aws:anonymous-ip-list:HostingProviderIPList"}]}"#,
            #"{"timestamp":1632420416512,"formatVersion":1,"webaclId":"arn:aws:wafv2:us-east-1:123456789012:regional/webacl/captcha-web-acl/585e38b5-afce-4d2a-b417-14fb08b66c67","terminatingRuleId":"captcha-rule","terminatingRuleType":"REGULAR","action":"CAPTCHA","terminatingRuleMatchDetails":[],"httpSourceName":"APIGW","httpSourceId":"123456789012:b34myvfw0b:pen-test","ruleGroupList":[],"rateBasedRuleList":[],"nonTerminatingMatchingRules":[],"requestHeadersInserted":null,"responseCodeSent":405,"httpRequest":{"clientIp":"72.21.198.65","country":"US","headers":[{"name":"X-Forwarded-For","value":"72.21.198.65"},{"name":"Host","value":"b34myvfw0b.gamma.execute-api.us-east-1.amazonaws.com"},{"name":"X-Amzn-Trace-Id","value":"Root=1-614cc240-18b57ff33c10e5c016b508c5"}],"uri":"/pen-test/pets","args":"","httpVersion":"HTTP/1.1","httpMethod":"GET","requestId":"GINKHEssoAMFsrg="},"captchaResponse":{"responseCode":405,"solveTimestamp":0,"failureReason":"TOKEN_MISSING"}}"#,
        ]),
    ]

    public let fieldNotes = """
        `timestamp` (epoch ms, arrival at WAF) → `time`; `httpRequest.clientIp` → `client_ip` (a value that is no IP address, such as a masked `X.X.X.X`, → `extra.client_ip_text`); `httpMethod`, \
        `uri`, `args` → `method`, `path`, `query`; headers (any case) `Host`, `User-Agent`, `X-Forwarded-For` → \
        `host`, `user_agent`, `forwarded_for`; every header, in record order with its name's case and repeats \
        kept, → `extra.headers` (`[{"name":…,"value":…},…]`); the `Root` of `X-Amzn-Trace-Id` → `trace_id`, else for \
        `httpSourceName` ALB `httpRequest.requestId` (the ALB trace id); `httpRequest.requestId` → `request_id`; \
        `action` → `waf_action`; `terminatingRuleId` → `waf_rule`; the terminating rule inside `ruleGroupList` → \
        `extra.waf_subrule` (`<ruleGroupId>:<ruleId>`); `responseCodeSent`, else 403 for BLOCK, 405 for CAPTCHA, \
        202 for CHALLENGE → `status` (none for ALLOW/COUNT). `extra`: `terminating_rule_type`, `http_source_name`, \
        `http_source_id`, `country`, `labels` (comma-joined), `rate_based_rules`, `non_terminating_rules`, \
        `terminating_match_details`, `response_code_sent`, `webacl_id`, `http_version`, `captcha_failure`, \
        `challenge_failure`, `oversize_fields`. Firehose files with records back to back (`}{`) are split into \
        one event per record, all on the same line number (such an object is a single line for the ingest \
        pipeline: past its 4 MiB line limit it is kept as a rejected line, not parsed).
        """

    public func recognize(_ lines: [String], fileName: String) -> Double {
        let hits = lines.filter { l in
            l.hasPrefix("{") && l.contains("\"webaclId\"") && (l.contains("\"httpRequest\"") || l.contains("\"terminatingRuleId\""))
        }.count
        return Double(hits) / Double(max(lines.count, 1))
    }

    public func makeParser(_ context: ParseContext) throws -> any RecordParser { AWSWAFParser() }
}

struct AWSWAFParser: RecordParser {
    mutating func consume(_ line: Line, into sink: inout RecordSink) {
        if line.isEmpty { return }
        if line.isComment { return sink.rejectComment(line, notA: "a WAF record") }
        let split = AWSJSON.splitConcatenated(line.bytes)
        if split.values.isEmpty {
            return sink.reject(line, split.truncated != nil ? "truncated JSON record" : "not a JSON record")
        }
        if split.values.count > 1 { sink.note("records written back to back without newlines (Firehose) were split apart") }
        for range in split.values {
            let bytes = UnsafeBufferPointer(rebasing: line.bytes[range])
            let raw = Array(bytes)
            // The typed reader takes the usual record; whatever it does not read exactly as the
            // generic path would goes through `[String: Any]` (and Foundation, which words errors).
            let record: WAFRecord
            if let typed = WAFRecord.read(bytes) {
                record = typed
            } else {
                switch AWSJSON.parseObject(raw) {
                case .failure(let why):
                    sink.reject(line: line.number, reason: why.description, raw: raw)
                    continue
                case .success(let object):
                    record = WAFRecord(object)
                }
            }
            switch Self.event(record, line: line.number, raw: raw) {
            case .success(let event):
                if event.extra["client_ip_text"] != nil { sink.note(IPAddressText.note(field: "WAF httpRequest.clientIp", key: "client_ip_text")) }
                sink.emit(event)
            case .failure(let why): sink.reject(line: line.number, reason: why.description, raw: raw)
            }
        }
        if let t = split.truncated {
            sink.reject(line: line.number, reason: "truncated JSON record after \(split.values.count) complete one(s)", raw: Array(line.bytes[t]))
        }
        for g in split.garbage where !g.isEmpty {
            sink.reject(line: line.number, reason: "text outside any JSON record", raw: Array(line.bytes[g]))
        }
    }

    mutating func finish(into sink: inout RecordSink) {}

    static func event(_ o: WAFRecord, line: Int, raw: [UInt8]) -> Result<Event, ImporterError> {
        guard let time = AWSJSON.millisToMicros(o.timestamp) else {
            return .failure(ImporterError(o.timestamp == nil ? "not a WAF record: no timestamp" : "timestamp is not epoch milliseconds"))
        }
        guard o.hasHTTPRequest || o.action != nil else {
            return .failure(ImporterError("not a WAF record: neither httpRequest nor action"))
        }
        var e = Event(time: time, layer: .waf, kind: .access, line: line, raw: raw)
        let action = AWSJSON.meaningful(o.action)?.uppercased()
        e.wafAction = action
        e.wafRule = AWSJSON.meaningful(o.terminatingRuleId)
        let sourceName = AWSJSON.meaningful(o.httpSourceName)
        put(&e, "terminating_rule_type", o.terminatingRuleType)
        put(&e, "http_source_name", o.httpSourceName)
        put(&e, "http_source_id", o.httpSourceId)
        put(&e, "webacl_id", o.webaclId)
        if let subrule = o.subrule { e.extra["waf_subrule"] = subrule }
        for (name, value) in zip(WAFRecord.collectionNames, o.collections) {
            if let value, !AWSJSON.isEmptyCollection(value) { e.extra[name] = AWSJSON.compact(value) }
        }
        if let names = o.labelNames, !names.isEmpty { e.extra["labels"] = names.joined(separator: ",") }
        for (name, response) in [("captcha_failure", o.captchaResponse), ("challenge_failure", o.challengeResponse)] {
            if let r = response as? [String: Any], let why = AWSJSON.meaningful(r["failureReason"]) { e.extra[name] = why }
        }

        let sent = AWSJSON.int(o.responseCodeSent)
        if let sent { e.extra["response_code_sent"] = String(sent) }
        if let sent, (100...999).contains(sent) {
            e.status = Int(sent)
        } else {
            switch action {
            case "BLOCK": e.status = 403
            case "CAPTCHA": e.status = 405
            case "CHALLENGE": e.status = 202
            default: break
            }
        }

        if let r = o.request {
            e.setAddress(.client, AWSJSON.meaningful(r.clientIp), elseKeep: "client_ip_text")
            put(&e, "country", r.country)
            put(&e, "http_version", r.httpVersion)
            e.method = AWSJSON.meaningful(r.httpMethod)
            if let uri = AWSJSON.string(r.uri), !uri.isEmpty { e.path = uri }
            if let args = AWSJSON.string(r.args), !args.isEmpty { e.query = args }
            let requestID = AWSJSON.meaningful(r.requestId)
            e.requestID = requestID
            for header in r.headers {
                switch header.name {
                case .host: if e.host == nil { e.host = header.value }
                case .userAgent: if e.userAgent == nil { e.userAgent = header.value }
                case .forwardedFor: if e.forwardedFor == nil { e.forwardedFor = header.value }
                case .traceID: if e.traceID == nil { e.traceID = AWSTrace.root(header.value) }
                }
            }
            // Every header as the record lists it (names in their case, in order, repeats kept):
            // what-if rules inspect any header, and rate rules aggregate by them (docs/replay.md).
            // `[]` when the record lists none: the request had no headers, not "not logged".
            if let all = r.allHeadersJSON { e.extra["headers"] = all }
            if e.host == nil { e.host = AWSJSON.meaningful(r.host) }
            // For ALB sources WAF logs the ALB's trace id (without Root=) as the request id.
            if e.traceID == nil, sourceName == "ALB", let requestID, requestID.hasPrefix("1-") { e.traceID = requestID }
        } else {
            e.extra["problem"] = "no httpRequest object"
        }
        return .success(e)
    }

    private static func put(_ e: inout Event, _ key: String, _ value: Any?) {
        if let s = AWSJSON.meaningful(value) { e.extra[key] = s }
    }
}

/// What `AWSWAFParser.event` reads of a WAF record, as the values `[String: Any]` would hold
/// (`nil` for an absent key, `NSNull` for null): from a whole parsed object, or read straight off
/// the bytes by `read`, which builds only these values and checks the rest without building it.
/// A test holds both ways to the same events.
struct WAFRecord {
    var timestamp: Any?
    var hasHTTPRequest = false
    var action: Any?
    var terminatingRuleId: Any?
    var terminatingRuleType: Any?
    var httpSourceName: Any?
    var httpSourceId: Any?
    var webaclId: Any?
    /// `<ruleGroupId>:<ruleId>` of the first rule group with a terminating rule.
    var subrule: String?
    /// The values of `collectionKeys`, in that order.
    var collections: [Any?] = [nil, nil, nil, nil, nil]
    var labelNames: [String]?
    var captchaResponse: Any?
    var challengeResponse: Any?
    var responseCodeSent: Any?
    /// nil unless `httpRequest` is an object.
    var request: Request?

    struct Request {
        var clientIp: Any?, country: Any?, httpVersion: Any?, httpMethod: Any?
        var uri: Any?, args: Any?, requestId: Any?, host: Any?
        /// The headers the event's columns take, in record order (name and value both strings).
        var headers: [Header] = []
        /// Every header, `[{"name":…,"value":…},…]` (`HeaderList`); nil unless `headers` is an array.
        var allHeadersJSON: String?
    }

    struct Header {
        enum Name { case host, userAgent, forwardedFor, traceID }
        var name: Name
        var value: String
    }

    /// `extra["headers"]` written as the elements are read: each element that is an object with a
    /// `name` and a `value` a string or number renders (`AWSJSON.string`), compact, in order.
    /// Both readers write through it, so their text is the same byte for byte.
    struct HeaderList {
        private var out: [UInt8] = [0x5B]
        private var count = 0

        /// A header from decoded values (the generic reader, and the typed one's unusual strings).
        mutating func append(name: String, value: String) {
            open()
            JSONText.appendQuoted(name.utf8, to: &out)
            middle()
            JSONText.appendQuoted(value.utf8, to: &out)
            out.append(0x7D)
        }

        /// A header from its JSON text: each part either a string as written (quotes included,
        /// with no backslash, so exactly what `JSONText.appendQuoted` writes for its value) or the
        /// decoded value to escape.
        mutating func append(name: Part, value: Part) {
            open()
            name.write(to: &out)
            middle()
            value.write(to: &out)
            out.append(0x7D)
        }

        enum Part {
            case raw(UnsafeBufferPointer<UInt8>), decoded(String)
            func write(to out: inout [UInt8]) {
                switch self {
                case .raw(let b): out.append(contentsOf: b)
                case .decoded(let s): JSONText.appendQuoted(s.utf8, to: &out)
                }
            }
        }

        private mutating func open() {
            if count > 0 { out.append(0x2C) }
            count += 1
            out.append(contentsOf: #"{"name":"#.utf8)
        }

        private mutating func middle() { out.append(contentsOf: #","value":"#.utf8) }

        var text: String {
            var closed = out
            closed.append(0x5D)
            return String(decoding: closed, as: UTF8.self)
        }
    }

    /// Members whose non-empty value `extra` keeps as compact JSON, and the `extra` names.
    static let collectionKeys: [StaticString] = ["rateBasedRuleList", "nonTerminatingMatchingRules", "terminatingRuleMatchDetails",
                                                 "requestHeadersInserted", "oversizeFields"]
    static let collectionNames = ["rate_based_rules", "non_terminating_rules", "terminating_match_details",
                                  "request_headers_inserted", "oversize_fields"]

    static func headerName(_ name: String) -> Header.Name? {
        // A dozen headers a record: ASCII names (all real ones) are matched without allocating
        // their lowercased copy; `lowercased()` of ASCII only maps A-Z.
        var name = name
        if let ascii = name.withUTF8({ bytes -> Header.Name?? in
            guard EventBatch.isASCII(bytes) else { return nil }
            return .some(headerSpellings.first { asciiCaseInsensitiveEqual(bytes, $0.spelling) }?.name)
        }) {
            return ascii
        }
        let lower = name.lowercased()
        return headerSpellings.first { lower == "\($0.spelling)" }?.name
    }

    /// `headerName` of an ASCII name's bytes (any other name is no column header).
    static func headerName(bytes: UnsafeBufferPointer<UInt8>) -> Header.Name? {
        guard EventBatch.isASCII(bytes) else { return headerName(ByteScanner.string(bytes)) }
        return headerSpellings.first { asciiCaseInsensitiveEqual(bytes, $0.spelling) }?.name
    }

    /// A JSON string as written, with no escape in it: its bytes between the quotes are its value.
    /// (`FastJSON` has checked it: valid UTF-8, no control character.)
    static func isPlainString(_ b: UnsafeBufferPointer<UInt8>) -> Bool {
        guard b.count >= 2, b[b.startIndex] == 0x22, b[b.endIndex - 1] == 0x22 else { return false }
        return !b.contains(0x5C)
    }

    private static let headerSpellings: [(name: Header.Name, spelling: StaticString)] = [
        (.host, "host"), (.userAgent, "user-agent"), (.forwardedFor, "x-forwarded-for"), (.traceID, "x-amzn-trace-id"),
    ]

    private static func asciiCaseInsensitiveEqual(_ bytes: UnsafeBufferPointer<UInt8>, _ lower: StaticString) -> Bool {
        guard bytes.count == lower.utf8CodeUnitCount else { return false }
        let l = lower.utf8Start
        for k in 0..<bytes.count {
            var c = bytes[k]
            if c >= 0x41 && c <= 0x5A { c |= 0x20 }
            if c != l[k] { return false }
        }
        return true
    }

    /// From a parsed object (the generic path).
    init(_ o: [String: Any]) {
        timestamp = o["timestamp"]
        hasHTTPRequest = o["httpRequest"] != nil
        action = o["action"]
        terminatingRuleId = o["terminatingRuleId"]
        terminatingRuleType = o["terminatingRuleType"]
        httpSourceName = o["httpSourceName"]
        httpSourceId = o["httpSourceId"]
        webaclId = o["webaclId"]
        if let groups = o["ruleGroupList"] as? [Any] {
            for case let g as [String: Any] in groups {
                if let rule = g["terminatingRule"] as? [String: Any], let ruleID = AWSJSON.meaningful(rule["ruleId"]) {
                    subrule = "\(AWSJSON.string(g["ruleGroupId"]) ?? "?"):\(ruleID)"
                    break
                }
            }
        }
        collections = Self.collectionKeys.map { o["\($0)"] }
        if let labels = o["labels"] as? [Any] {
            labelNames = labels.compactMap { ($0 as? [String: Any]).flatMap { AWSJSON.string($0["name"]) } }
        }
        captchaResponse = o["captchaResponse"]
        challengeResponse = o["challengeResponse"]
        responseCodeSent = o["responseCodeSent"]
        if let r = o["httpRequest"] as? [String: Any] {
            var request = Request(clientIp: r["clientIp"], country: r["country"], httpVersion: r["httpVersion"],
                                  httpMethod: r["httpMethod"], uri: r["uri"], args: r["args"], requestId: r["requestId"], host: r["host"])
            if let headers = r["headers"] as? [Any] {
                var all = HeaderList()
                for case let h as [String: Any] in headers {
                    guard let name = AWSJSON.string(h["name"]), let value = AWSJSON.string(h["value"]) else { continue }
                    all.append(name: name, value: value)
                    if let known = Self.headerName(name) { request.headers.append(Header(name: known, value: value)) }
                }
                request.allHeadersJSON = all.text
            }
            self.request = request
        }
    }

    private init() {}

    /// Straight off the bytes of one record; nil when the record must take the generic path (not
    /// an object, or anything `FastJSON` leaves to Foundation).
    static func read(_ bytes: UnsafeBufferPointer<UInt8>) -> WAFRecord? {
        FastJSON.read(bytes) { json -> WAFRecord? in
            var r = WAFRecord()
            let isObject = try json.members { json, key in
                switch key.count {
                case 6 where FastJSON.key(key, is: "action"): r.action = try json.anyValue()
                case 6 where FastJSON.key(key, is: "labels"): r.labelNames = try readLabels(&json)
                case 8 where FastJSON.key(key, is: "webaclId"): r.webaclId = try json.anyValue()
                case 9 where FastJSON.key(key, is: "timestamp"): r.timestamp = try json.anyValue()
                case 11 where FastJSON.key(key, is: "httpRequest"):
                    r.hasHTTPRequest = true
                    r.request = try readRequest(&json)
                case 12 where FastJSON.key(key, is: "httpSourceId"): r.httpSourceId = try json.anyValue()
                case 13 where FastJSON.key(key, is: "ruleGroupList"): r.subrule = try readSubrule(&json)
                case 14 where FastJSON.key(key, is: "httpSourceName"): r.httpSourceName = try json.anyValue()
                case 15 where FastJSON.key(key, is: "captchaResponse"): r.captchaResponse = try json.anyValue()
                case 16 where FastJSON.key(key, is: "responseCodeSent"): r.responseCodeSent = try json.anyValue()
                case 17 where FastJSON.key(key, is: "terminatingRuleId"): r.terminatingRuleId = try json.anyValue()
                case 17 where FastJSON.key(key, is: "challengeResponse"): r.challengeResponse = try json.anyValue()
                case 19 where FastJSON.key(key, is: "terminatingRuleType"): r.terminatingRuleType = try json.anyValue()
                default:
                    if let k = collectionKeys.firstIndex(where: { FastJSON.key(key, is: $0) }) {
                        r.collections[k] = try json.anyValue()
                    } else {
                        try json.skip()
                    }
                }
            }
            return isObject ? r : nil
        } ?? nil
    }

    /// `ruleGroupList`: the first group (an object) whose `terminatingRule` (an object) has a
    /// meaningful `ruleId`; a repeated key counts at its last occurrence, as in a dictionary.
    private static func readSubrule(_ json: inout FastJSON) throws -> String? {
        var found: String?
        try json.elements { json in
            var groupID: Any?, ruleID: String?
            try json.members { json, key in
                if FastJSON.key(key, is: "ruleGroupId") {
                    groupID = try json.anyValue()
                } else if FastJSON.key(key, is: "terminatingRule") {
                    var id: Any?
                    let isObject = try json.members { json, key in
                        if FastJSON.key(key, is: "ruleId") { id = try json.anyValue() } else { try json.skip() }
                    }
                    ruleID = isObject ? AWSJSON.meaningful(id) : nil
                } else {
                    try json.skip()
                }
            }
            if found == nil, let ruleID { found = "\(AWSJSON.string(groupID) ?? "?"):\(ruleID)" }
        }
        return found
    }

    /// `labels`: the `name` of each element that is an object (nil unless an array).
    private static func readLabels(_ json: inout FastJSON) throws -> [String]? {
        var names: [String] = []
        let isArray = try json.elements { json in
            var name: Any?
            try json.members { json, key in
                if FastJSON.key(key, is: "name") { name = try json.anyValue() } else { try json.skip() }
            }
            if let s = AWSJSON.string(name) { names.append(s) }
        }
        return isArray ? names : nil
    }

    /// `httpRequest`, when it is an object.
    private static func readRequest(_ json: inout FastJSON) throws -> Request? {
        var r = Request()
        let isObject = try json.members { json, key in
            switch key.count {
            case 3 where FastJSON.key(key, is: "uri"): r.uri = try json.anyValue()
            case 4 where FastJSON.key(key, is: "args"): r.args = try json.anyValue()
            case 4 where FastJSON.key(key, is: "host"): r.host = try json.anyValue()
            case 7 where FastJSON.key(key, is: "country"): r.country = try json.anyValue()
            case 7 where FastJSON.key(key, is: "headers"): (r.headers, r.allHeadersJSON) = try readHeaders(&json)
            case 8 where FastJSON.key(key, is: "clientIp"): r.clientIp = try json.anyValue()
            case 9 where FastJSON.key(key, is: "requestId"): r.requestId = try json.anyValue()
            case 10 where FastJSON.key(key, is: "httpMethod"): r.httpMethod = try json.anyValue()
            case 11 where FastJSON.key(key, is: "httpVersion"): r.httpVersion = try json.anyValue()
            default: try json.skip()
            }
        }
        return isObject ? r : nil
    }

    /// `headers`: the column headers among the elements that are objects with a `name` and a
    /// `value` a string or number renders, and every such element for `extra["headers"]` (nil
    /// unless an array). A plain string (no escape in it) is copied as written, not built.
    private static func readHeaders(_ json: inout FastJSON) throws -> ([Header], String?) {
        var kept: [Header] = []
        var all = HeaderList()
        let isArray = try json.elements { json in
            var nameAt: Range<Int>?, valueAt: Range<Int>?
            try json.members { json, key in
                if FastJSON.key(key, is: "name") {
                    nameAt = try json.valueRange()
                } else if FastJSON.key(key, is: "value") {
                    valueAt = try json.valueRange()
                } else {
                    try json.skip()
                }
            }
            guard let nameAt, let valueAt else { return }
            let nameRaw = json.bytes(at: nameAt), valueRaw = json.bytes(at: valueAt)
            let namePart: HeaderList.Part, valuePart: HeaderList.Part
            var known: Header.Name?
            if isPlainString(nameRaw) {
                namePart = .raw(nameRaw)
                known = headerName(bytes: UnsafeBufferPointer(rebasing: nameRaw[(nameRaw.startIndex + 1)..<(nameRaw.endIndex - 1)]))
            } else {
                guard let name = AWSJSON.string(try json.value(at: nameAt)) else { return }
                namePart = .decoded(name)
                known = headerName(name)
            }
            var value: String?
            if isPlainString(valueRaw) {
                valuePart = .raw(valueRaw)
                if known != nil { value = ByteScanner.string(UnsafeBufferPointer(rebasing: valueRaw[(valueRaw.startIndex + 1)..<(valueRaw.endIndex - 1)])) }
            } else {
                guard let v = AWSJSON.string(try json.value(at: valueAt)) else { return }
                valuePart = .decoded(v)
                value = v
            }
            all.append(name: namePart, value: valuePart)
            if let known, let value { kept.append(Header(name: known, value: value)) }
        }
        return (kept, isArray ? all.text : nil)
    }
}
