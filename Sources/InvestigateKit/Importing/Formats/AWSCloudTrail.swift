import Foundation

/// AWS CloudTrail records: the `{"Records":[…]}` documents a trail delivers to S3
/// (`AWSLogs/<account>/CloudTrail/<region>/YYYY/MM/DD/…json.gz`), a bare array of records, one
/// record per line (CloudTrail in CloudWatch Logs, `jq -c '.Records[]'`), and the output of
/// `aws cloudtrail lookup-events` (`{"Events":[{…,"CloudTrailEvent":"<record as a JSON string>"}]}`).
///
/// Record fields: the CloudTrail user guide, "CloudTrail record contents"
/// (https://docs.aws.amazon.com/awscloudtrail/latest/userguide/cloudtrail-event-reference-record-contents.html).
/// The samples are the AWS WAF developer guide's own examples (archived
/// `awsdocs/aws-waf-and-shield-advanced-developer-guide` `doc_source/logging-using-cloudtrail.md`):
/// a wafv2 `UpdateWebACL` record, compacted to one line, and a WAF Classic `Records` document as
/// the guide prints it.
///
/// Records are control-plane API calls, on no request's path: layer `cloudtrail`, kind `log`. A
/// CloudTrail file therefore never counts as WAF (or any request layer's) logs in the diagnosis.
public struct AWSCloudTrailImporter: Importer {
    // Context the diagnosis reads beyond the window's margin (`Importer.storedWholeForAWindow`).
    public var storedWholeForAWindow: Bool { true }

    public init() {}

    public let id = "cloudtrail"
    /// S3 objects and API output, written whole: an unterminated last line is read as it is.
    public var writtenLive: Bool { false }
    /// A trail's object is one line holding every record of a few minutes.
    public var maxRecordBytes: Int? { 64 * 1024 * 1024 }
    public let title = "AWS CloudTrail records (S3 Records documents, one record per line, lookup-events output)"
    public let layer = Layer.cloudtrail
    public let documentation = "https://docs.aws.amazon.com/awscloudtrail/latest/userguide/cloudtrail-event-reference-record-contents.html"

    public let samples = [
        FormatSample(fileName: "112233445566_CloudTrail_us-west-2_20191106T1925Z_EXAMPLE1abcd2EFG.json.gz", lines: [
            #"{"Records":[{"eventVersion":"1.05","userIdentity":{"type":"AssumedRole","principalId":"principalId","arn":"arn:aws:sts::112233445566:assumed-role/Admin","accountId":"112233445566","accessKeyId":"accessKeyId","sessionContext":{"sessionIssuer":{"type":"Role","principalId":"principalId","arn":"arn:aws:iam::112233445566:role/Admin","accountId":"112233445566","userName":"Admin"},"webIdFederationData":{},"attributes":{"mfaAuthenticated":"false","creationDate":"2019-11-06T19:17:20Z"}}},"eventTime":"2019-11-06T19:20:56Z","eventSource":"wafv2.amazonaws.com","eventName":"UpdateWebACL","awsRegion":"us-west-2","sourceIPAddress":"10.0.0.1","userAgent":"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_12_6) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/78.0.3904.87 Safari/537.36","requestParameters":{"name":"foo","scope":"CLOUDFRONT","id":"ebbcb976-8d59-4d20-8ca8-4ab2f6b7c07b","defaultAction":{"block":{}},"description":"foo","rules":[{"name":"foo","priority":1,"statement":{"geoMatchStatement":{"countryCodes":["AF"]}},"action":{"block":{}},"visibilityConfig":{"sampledRequestsEnabled":true,"cloudWatchMetricsEnabled":true,"metricName":"foo"}}],"visibilityConfig":{"sampledRequestsEnabled":true,"cloudWatchMetricsEnabled":true,"metricName":"foo"},"lockToken":"67551e73-49d8-4363-be48-244deea72ea9"},"responseElements":{"nextLockToken":"a6b54c01-7975-4e6d-b7d0-2653cb6e231d"},"requestID":"41c96e12-9790-46ab-b145-a230f358f2c2","eventID":"517a10e6-4ca9-4828-af90-a5cff9756594","eventType":"AwsApiCall","apiVersion":"2019-04-23","recipientAccountId":"112233445566"}]}"#,
        ]),
        FormatSample(fileName: "waf-classic-cloudtrail.json", lines: [
            "{",
            "  \"Records\": [",
            "    {",
            "      \"eventVersion\": \"1.03\",",
            "      \"userIdentity\": {",
            "        \"type\": \"IAMUser\",",
            "        \"principalId\": \"AIDAIEP4IT4TPDEXAMPLE\",",
            "        \"arn\": \"arn:aws:iam::777777777777:user/nate\",",
            "        \"accountId\": \"777777777777\",",
            "        \"accessKeyId\": \"AKIAIOSFODNN7EXAMPLE\",",
            "        \"userName\": \"nate\"",
            "      },",
            "      \"eventTime\": \"2016-04-25T21:35:22Z\",",
            "      \"eventSource\": \"waf.amazonaws.com\",",
            "      \"eventName\": \"GetRule\",",
            "      \"awsRegion\": \"us-west-2\",",
            "      \"sourceIPAddress\": \"AWS Internal\",",
            "      \"userAgent\": \"console.amazonaws.com\",",
            "      \"requestParameters\": {",
            "        \"ruleId\": \"723c2943-82dc-4bc1-a29b-c7d73example\"",
            "      },",
            "      \"responseElements\": null,",
            "      \"requestID\": \"8e4f3211-d548-11e3-a8a9-73e33example\",",
            "      \"eventID\": \"an236542-d1f9-4639-bb3d-8d2bbexample\",",
            "      \"eventType\": \"AwsApiCall\",",
            "      \"apiVersion\": \"2015-08-24\",",
            "      \"recipientAccountId\": \"777777777777\"",
            "    }",
            "  ]",
            "}",
        ]),
    ]

    public let fieldNotes = """
        One event per record, layer `cloudtrail`, kind `log`. `eventTime` → `time`; `sourceIPAddress` → \
        `client_ip` when it is an IP address; an AWS service name (`AWS Internal`, `*.amazonaws.com`) → \
        `extra.source_service`, other text → `extra.client_text` with a note; `userAgent` → `user_agent`; \
        `requestID` → `request_id`; `errorCode`/`errorMessage` → `error`; `message`: `<eventSource> <eventName>`, \
        the request parameters' scalar values (name, id, scope, …) and who called. `extra`: `event_source`, \
        `event_name`, `event_id`, `event_type`, `aws_region`, `account_id` (`recipientAccountId`), `user_arn` \
        (`userIdentity.arn`, else the session issuer's), `user_type`, `read_only`, `error_code`, `error_message`, \
        `request_parameters` (compact JSON, cut at 4 KB with `…(cut)` and a note), `resource` (the ARN, name or id \
        a WAF call concerns); for a change to AWS WAF (`waf`, `waf-regional`, `wafv2.amazonaws.com`, an event that \
        is not read-only and not `Get…`/`List…`/`Describe…`/`Check…`), `waf_change` (the event name). `raw` is the \
        record's bytes with its line range; the frame around records (`{"Records":[`, `]}`) is framing; a record \
        without `eventTime` or `eventName`, or not an object, is rejected with the reason; a truncated document \
        keeps every complete record before the cut and rejects the rest.
        """

    public func recognize(_ lines: [String], fileName: String) -> Double {
        guard let first = lines.first?.trimmingCharacters(in: .whitespaces), first.hasPrefix("{") || first.hasPrefix("[") else { return 0 }
        let joined = lines.joined(separator: "\n")
        if joined.contains("\"CloudTrailEvent\"") && joined.contains("\"EventName\"") { return 1 }
        let keys = ["\"eventVersion\"", "\"eventTime\"", "\"eventSource\"", "\"eventName\""]
        let found = keys.filter { joined.contains($0) }.count
        // A pretty-printed record may show only its first keys within the sampled lines.
        if found == keys.count || (found >= 2 && joined.contains("\"Records\"")) { return 1 }
        return 0
    }

    public func makeParser(_ context: ParseContext) throws -> any RecordParser { AWSCloudTrailParser() }
}

struct AWSCloudTrailParser: RecordParser {
    var document = JSONDocumentBuffer()

    mutating func consume(_ line: Line, into sink: inout RecordSink) {
        // No line of a JSON document starts with `#` (a string holds no raw newline).
        if line.isComment { return sink.rejectComment(line, notA: "part of a CloudTrail JSON document") }
        document.append(line, into: &sink)
    }

    mutating func finish(into sink: inout RecordSink) {
        let doc = document
        document = JSONDocumentBuffer()
        doc.bytes.withUnsafeBufferPointer { b in
            let split = AWSJSON.splitConcatenated(b)
            for value in split.values { readValue(value, b, doc, complete: true, into: &sink) }
            if let t = split.truncated { readValue(t, b, doc, complete: false, into: &sink) }
            for g in split.garbage { doc.reject(g, "text outside any JSON value", into: &sink) }
        }
    }

    /// Whether the object at `start` opens with a key that holds an array of records.
    static func opensWithRecordArray(_ b: UnsafeBufferPointer<UInt8>, at start: Int) -> Bool {
        var i = start + 1
        while i < b.count, b[i] == 0x20 || b[i] == 0x0A || b[i] == 0x0D || b[i] == 0x09 { i += 1 }
        for key in ["\"Records\"", "\"Events\""] {
            let k = Array(key.utf8)
            if i + k.count <= b.count, Array(b[i..<(i + k.count)]) == k { return true }
        }
        return false
    }

    private mutating func readValue(_ range: Range<Int>, _ b: UnsafeBufferPointer<UInt8>, _ doc: JSONDocumentBuffer, complete: Bool,
                                    into sink: inout RecordSink) {
        var candidates: [Range<Int>] = []
        if b[range.lowerBound] == 0x5B {
            candidates = AWSJSON.nestedContainers(b, in: range, depth: 1).map(\.range)
        } else if Self.opensWithRecordArray(b, at: range.lowerBound) {
            // `{"Records":[…]}` (and lookup-events' `{"Events":[…], "NextToken": …}`): the elements of its arrays.
            candidates = AWSJSON.nestedContainers(b, in: range, depth: 2).map(\.range)
        } else if complete {
            candidates = [range]
        }
        var found = 0
        var lastEnd = range.lowerBound
        defer { doc.accountOutside(candidates, in: complete ? range : range.lowerBound..<max(range.lowerBound, lastEnd), into: &sink) }
        for c in candidates {
            lastEnd = c.upperBound
            let (first, last) = doc.lineRange(c)
            let raw = doc.slice(c)
            guard b[c.lowerBound] == 0x7B else {
                doc.reject(c, "element of the Records array is not a JSON object", into: &sink)
                continue
            }
            var o: [String: Any]
            switch AWSJSON.parseObject(Array(b[c])) {
            case .failure(let why):
                doc.reject(c, "CloudTrail record is not valid JSON (\(why.description))", into: &sink)
                continue
            case .success(let parsed):
                o = parsed
            }
            // lookup-events: the record is a JSON string inside the event summary.
            if let inner = o["CloudTrailEvent"] as? String {
                switch AWSJSON.parseObject(Array(inner.utf8)) {
                case .failure(let why):
                    doc.reject(c, "lookup-events CloudTrailEvent is not a JSON record (\(why.description))", into: &sink)
                    continue
                case .success(let parsed):
                    o = parsed
                }
            }
            switch Self.event(o, line: first, lineEnd: last, raw: raw, sink: &sink) {
            case .success(let e):
                found += 1
                sink.emit(e)
            case .failure(let why):
                doc.reject(c, why.description, into: &sink)
            }
        }
        if !complete {
            doc.reject(lastEnd..<range.upperBound, "truncated CloudTrail document: \(found) complete record(s) before the cut were kept", into: &sink)
        }
    }

    static let readVerbs = ["Get", "List", "Describe", "Check"]
    static let wafSources: Set<String> = ["waf.amazonaws.com", "waf-regional.amazonaws.com", "wafv2.amazonaws.com"]
    static let summaryKeys = ["name", "id", "scope", "webACLId", "webAclId", "webACLArn", "resourceArn", "ipSetId", "ruleGroupId", "ruleId",
                              "regexPatternSetId", "bucketName", "functionName", "distributionId", "loadBalancerArn"]
    static let parameterLimit = 4096

    static func event(_ o: [String: Any], line: Int, lineEnd: Int, raw: [UInt8], sink: inout RecordSink) -> Result<Event, ImporterError> {
        guard let timeText = AWSJSON.string(o["eventTime"]) else { return .failure(ImporterError("CloudTrail record has no eventTime")) }
        guard let time = AWSTime.iso8601(timeText) else {
            return .failure(ImporterError("eventTime '\(timeText.prefix(40))' is not ISO-8601"))
        }
        guard let name = AWSJSON.meaningful(o["eventName"]) else { return .failure(ImporterError("CloudTrail record has no eventName")) }
        var e = Event(time: time, layer: .cloudtrail, kind: .log, line: line, lineEnd: lineEnd, raw: raw)
        let source = AWSJSON.meaningful(o["eventSource"])
        e.extra["event_name"] = name
        if let source { e.extra["event_source"] = source }
        func put(_ key: String, _ value: Any?) { if let v = AWSJSON.meaningful(value) { e.extra[key] = v } }
        put("event_id", o["eventID"]); put("event_type", o["eventType"]); put("aws_region", o["awsRegion"])
        put("account_id", o["recipientAccountId"]); put("event_version", o["eventVersion"])
        put("error_code", o["errorCode"]); put("error_message", o["errorMessage"])
        if let ro = o["readOnly"] { e.extra["read_only"] = AWSJSON.string(ro) ?? AWSJSON.compact(ro) }
        let identity = o["userIdentity"] as? [String: Any]
        let issuer = ((identity?["sessionContext"] as? [String: Any])?["sessionIssuer"] as? [String: Any])
        if let arn = AWSJSON.meaningful(identity?["arn"]) ?? AWSJSON.meaningful(issuer?["arn"]) { e.extra["user_arn"] = arn }
        put("user_type", identity?["type"])
        if let who = AWSJSON.meaningful(identity?["invokedBy"]) { e.extra["invoked_by"] = who }
        if let ip = AWSJSON.string(o["sourceIPAddress"]), !ip.isEmpty {
            if IPAddressText.isAddress(ip) { e.clientIP = ip }
            else if ip == "AWS Internal" || ip.hasSuffix(".amazonaws.com") || ip.hasSuffix(".amazonaws.com.cn") { e.extra["source_service"] = ip }
            else {
                e.extra["client_text"] = ip
                sink.note(IPAddressText.note(field: "sourceIPAddress", key: "client_text"))
            }
        }
        e.userAgent = AWSJSON.meaningful(o["userAgent"])
        e.requestID = AWSJSON.meaningful(o["requestID"])
        if let code = e.extra["error_code"] { e.error = code + (e.extra["error_message"].map { ": \($0)" } ?? "") }
        let parameters = o["requestParameters"] as? [String: Any]
        if let p = o["requestParameters"], !(p is NSNull) {
            var text = AWSJSON.compact(p)
            if text.utf8.count > parameterLimit {
                text = String(decoding: Array(text.utf8.prefix(parameterLimit)), as: UTF8.self) + "…(cut)"
                sink.note("requestParameters longer than \(parameterLimit) bytes were cut in extra.request_parameters (marked …(cut)); the record's bytes keep them whole")
            }
            e.extra["request_parameters"] = text
        }
        var summary: [String] = []
        for key in summaryKeys {
            if let v = parameters?[key], let s = AWSJSON.string(v) ?? (v is NSNumber ? AWSJSON.compact(v) : nil), !s.isEmpty {
                summary.append("\(key)=\(s.prefix(200))")
            }
        }
        let isWAF = source.map(wafSources.contains) ?? false
        let readOnly = e.extra["read_only"] == "true" || readVerbs.contains { name.hasPrefix($0) }
        if isWAF {
            let resource = AWSJSON.meaningful(parameters?["webACLArn"]) ?? AWSJSON.meaningful(parameters?["resourceArn"])
                ?? AWSJSON.meaningful(parameters?["name"]) ?? AWSJSON.meaningful(parameters?["id"])
                ?? AWSJSON.meaningful(parameters?["ipSetId"]) ?? AWSJSON.meaningful(parameters?["ruleGroupId"])
                ?? AWSJSON.meaningful(parameters?["ruleId"]) ?? AWSJSON.meaningful(parameters?["webACLId"])
            if let resource { e.extra["resource"] = resource }
            if !readOnly && e.extra["error_code"] == nil { e.extra["waf_change"] = name }
        }
        var message = "\(source ?? "?") \(name)"
        if !summary.isEmpty { message += " " + summary.joined(separator: " ") }
        if let who = e.extra["user_arn"] { message += " by \(who)" }
        if let err = e.error { message += " failed: \(err.prefix(300))" }
        e.message = message
        e.level = e.error == nil ? "info" : "error"
        return .success(e)
    }
}
