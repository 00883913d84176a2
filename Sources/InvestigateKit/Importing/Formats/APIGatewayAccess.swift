import Foundation

/// Amazon API Gateway access logs, REST and HTTP APIs: JSON with whatever keys the user chose
/// (mapped by the `$context` names people use), and the console's predefined CLF, CSV and XML formats.
public struct APIGatewayAccessImporter: Importer {
    public init() {}

    public let id = "apigateway-access"
    /// Delivered by API Gateway to CloudWatch Logs or Firehose, so a file of it is an export or an object: an unterminated last line is read as it is.
    public var writtenLive: Bool { false }
    public let title = "Amazon API Gateway access log (JSON with $context keys, CLF, CSV, XML)"
    public let layer = Layer.apigateway
    public let documentation = "https://docs.aws.amazon.com/apigateway/latest/developerguide/set-up-logging.html"

    public let samples = [
        FormatSample(fileName: "apigateway-access.log", lines: [
            #"{"requestId":"48752d0f-c99d-4cfa-a5a7-f3c6834d19e5","ip":"1.128.0.0","caller":"-","user":"-","requestTime":"10/Jun/2023:15:36:28 +0000","httpMethod":"GET","resourcePath":"/pets","status":"200","protocol":"HTTP/1.1","responseLength":"184"}"#,
            #"{"requestId":"GQIVriFLIAMEMsA=","ip":"1.128.0.0","requestTime":"09/Jun/2023:12:54:08 +0000","httpMethod":"GET","routeKey":"GET /","status":"200","protocol":"HTTP/1.1","responseLength":"47140"}"#,
        ]),
        FormatSample(fileName: "apigateway-access.csv", lines: [
            "203.0.113.7,-,-,06/Feb/2025:05:32:45 +0000,GET,/pets/{petId},HTTP/1.1,502,36,fbcaf9e5-d535-40a1-891c-7b70118cf7e8,K2G9wEbUoAMEvag=",
            "203.0.113.7,06/Feb/2025:05:32:46 +0000,GET,GET /pets,HTTP/1.1,200,47,GQIVriFLIAMEMsA=",
        ]),
        FormatSample(fileName: "apigateway-access.xml", lines: [
            #"<request id="48752d0f-c99d-4cfa-a5a7-f3c6834d19e5"> <extendedRequestId>K2G9wEbUoAMEvag=</extendedRequestId> <ip>1.128.0.0</ip> <caller>-</caller> <user>-</user> <requestTime>10/Jun/2023:15:36:28 +0000</requestTime> <httpMethod>GET</httpMethod> <resourcePath>/pets</resourcePath> <status>200</status> <protocol>HTTP/1.1</protocol> <responseLength>184</responseLength> </request>"#,
        ]),
    ]

    public let fieldNotes = """
        Keys are matched case-insensitively, with or without a `context.` prefix and nested objects flattened \
        with dots. `requestId` → `request_id`; `extendedRequestId` → `extra.extended_request_id`; \
        `ip`/`sourceIp`/`identity.sourceIp` → `client_ip` (no IP address, such as the console's `test-invoke-source-ip`, → `extra.source_ip_text`); `requestTime` (CLF) or `requestTimeEpoch` (ms) → \
        `time`; `httpMethod` → `method`; `path` (else `resourcePath`, else the path of `routeKey`) → `path`, \
        with `resourcePath`/`routeKey` also in `extra`; `status` (string or number) → `status`; \
        `error`/`errorMessage`/`error.message` → `error`; `error.responseType` (or a key `errorType`/`responseType` holding a \
        gateway response type such as `QUOTA_EXCEEDED`) → `extra.error_response_type`; `responseLength` → `bytes`; `userAgent` → `user_agent`; \
        `integrationStatus` → `target_status`; `integrationErrorMessage`, `integrationLatency` → `extra`; \
        `responseLatency` (ms) → `duration`; `awsEndpointRequestId`/`integration.requestId` (the AWS endpoint's request id: \
        a Lambda integration's invocation RequestId) → `extra.lambda_request_id`, which links the function's records; `wafResponseCode` → `waf_action` (ALLOW/BLOCK); `xrayTraceId` → \
        `trace_id`; `domainName` → `host`. Every other key is kept in `extra` under its own name. The console's \
        CSV (REST 11 columns, HTTP 8) and XML formats map the same way. Its CLF preset \
        (`ip caller user [time] "METHOD resource proto" status length requestId [extendedRequestId]`) is detected \
        as API Gateway's when the request id is a UUID (else nginx-access takes its nginx-like lines; \
        `--format apigateway-access` forces it); up to four fields appended after it (`$context.integrationLatency`, …) \
        are kept as written in `extra.clf_appended_fields`, unnamed, since the preset does not say what they are.
        """

    public func recognize(_ lines: [String], fileName: String) -> Double {
        var hits = 0
        for line in lines where APIGatewayAccessParser.shape(line) != nil { hits += 1 }
        return Double(hits) / Double(max(lines.count, 1))
    }

    public func makeParser(_ context: ParseContext) throws -> any RecordParser { APIGatewayAccessParser() }
}

struct APIGatewayAccessParser: RecordParser {
    enum Shape { case json, csv, xml, clf }

    /// A cheap look at a line (for detection): which of the formats it has.
    static func shape(_ line: String) -> Shape? {
        if line.hasPrefix("{") {
            let keys = ["\"requestId\"", "\"extendedRequestId\"", "\"requestid\""]
            let http = ["\"httpMethod\"", "\"status\"", "\"requestTime\"", "\"resourcePath\"", "\"routeKey\"", "\"responseLength\""]
            guard keys.contains(where: line.contains), http.filter(line.contains).count >= 2 else { return nil }
            return .json
        }
        if line.hasPrefix("<request") { return .xml }
        let parts = line.split(separator: ",", omittingEmptySubsequences: false)
        if parts.count == 11, AWSTime.clf(String(parts[3])) != nil { return .csv }
        if parts.count == 8, AWSTime.clf(String(parts[1])) != nil { return .csv }
        // Same shape as nginx's combined log: listed after nginx-access, it wins only by --format or
        // when a CloudWatch log group names API Gateway.
        if Line.with(line, number: 1, { clf($0) }) != nil { return .clf }
        return nil
    }

    mutating func consume(_ line: Line, into sink: inout RecordSink) {
        if line.isEmpty { return }
        if line.isComment { return sink.rejectComment(line, notA: "an API Gateway access record") }
        let text = line.text
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        var fields: [String: Any] = [:]
        if trimmed.hasPrefix("{") {
            switch AWSJSON.parseObject(line.copyBytes()) {
            case .failure(let why): return sink.reject(line, why.description)
            case .success(let o): Self.flatten(o, prefix: "", into: &fields)
            }
        } else if trimmed.hasPrefix("<request") {
            guard let parsed = Self.xml(trimmed) else { return sink.reject(line, "unreadable XML access record") }
            fields = parsed
        } else if let csv = Self.csv(trimmed) {
            fields = csv
        } else if let clf = Self.clf(line) {
            fields = clf
        } else {
            return sink.reject(line, "not an API Gateway access record (JSON, CLF, CSV or XML)")
        }
        switch Self.event(fields, line: line.number, raw: line.copyBytes()) {
        case .success(let e):
            if e.extra["source_ip_text"] != nil { sink.note(IPAddressText.note(field: "API Gateway $context.identity.sourceIp", key: "source_ip_text")) }
            sink.emit(e)
        case .failure(let why): sink.reject(line, why.description)
        }
    }

    mutating func finish(into sink: inout RecordSink) {}

    static func flatten(_ o: [String: Any], prefix: String, into out: inout [String: Any]) {
        for (k, v) in o {
            let key = prefix.isEmpty ? k : "\(prefix).\(k)"
            if let nested = v as? [String: Any], !nested.isEmpty, prefix.split(separator: ".").count < 4 {
                flatten(nested, prefix: key, into: &out)
            } else {
                out[key] = v
            }
        }
    }

    /// `<request id="…"> <ip>…</ip> … </request>`
    static func xml(_ text: String) -> [String: Any]? {
        var out: [String: Any] = [:]
        if let r = text.range(of: #"<request id="([^"]*)""#, options: .regularExpression) {
            let tag = text[r]
            if let q = tag.firstIndex(of: "\"") { out["requestId"] = unescapeXML(String(tag[tag.index(after: q)...].dropLast())) }
        }
        var rest = Substring(text)
        while let open = rest.range(of: "<") {
            let afterOpen = rest[open.upperBound...]
            guard let close = afterOpen.firstIndex(of: ">") else { break }
            let name = afterOpen[..<close]
            rest = afterOpen[afterOpen.index(after: close)...]
            guard !name.isEmpty, !name.hasPrefix("/"), !name.contains(" "), name.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "." || $0 == "_" }) else { continue }
            guard let end = rest.range(of: "</\(name)>") else { continue }
            out[String(name)] = unescapeXML(String(rest[..<end.lowerBound]))
            rest = rest[end.upperBound...]
        }
        return out.isEmpty ? nil : out
    }

    static func unescapeXML(_ s: String) -> String {
        guard s.contains("&") else { return s }
        return s.replacingOccurrences(of: "&lt;", with: "<").replacingOccurrences(of: "&gt;", with: ">")
            .replacingOccurrences(of: "&quot;", with: "\"").replacingOccurrences(of: "&apos;", with: "'")
            .replacingOccurrences(of: "&amp;", with: "&")
    }

    /// The console's CSV layouts: REST (11 columns) and HTTP (8 columns).
    static func csv(_ text: String) -> [String: Any]? {
        let p = text.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        if p.count == 11, AWSTime.clf(p[3]) != nil {
            return ["ip": p[0], "caller": p[1], "user": p[2], "requestTime": p[3], "httpMethod": p[4], "resourcePath": p[5],
                    "protocol": p[6], "status": p[7], "responseLength": p[8], "requestId": p[9], "extendedRequestId": p[10]]
        }
        if p.count == 8, AWSTime.clf(p[1]) != nil {
            return ["ip": p[0], "requestTime": p[1], "httpMethod": p[2], "routeKey": p[3], "protocol": p[4], "status": p[5],
                    "responseLength": p[6], "requestId": p[7]]
        }
        return nil
    }

    /// The console's CLF layouts: `ip caller user [time] "METHOD path proto" status length requestId [extendedRequestId]`,
    /// and the CloudFormation example that starts with the extended request id.
    static func clf(_ line: Line) -> [String: Any]? {
        var s = ByteScanner(line.bytes)
        var tokens: [String] = []
        while !s.atEnd, s.peek() != 0x5B {
            let t = s.token()
            if t.isEmpty { s.skipSpaces(); continue }
            tokens.append(ByteScanner.string(t))
            if tokens.count > 4 { return nil }
        }
        guard s.skip(0x5B), let timeBytes = s.until(0x5D) else { return nil }
        let time = ByteScanner.string(timeBytes)
        guard AWSTime.clf(time) != nil else { return nil }
        s.skipSpaces()
        guard let request = s.quoted() else { return nil }
        var rest: [String] = []
        while !s.atEnd {
            s.skipSpaces()
            let t = s.token()
            if !t.isEmpty { rest.append(ByteScanner.string(t)) }
        }
        // status, length, requestId [, extendedRequestId]: no quoted referer/agent as nginx writes them.
        // Teams often append $context variables (integrationLatency, …) to the preset; those
        // unnamed fields are kept as written, never guessed at.
        guard rest.count >= 3, rest.count <= 4 + Self.maxAppendedCLFFields, rest[0].count == 3, Int(rest[0]) != nil,
              !rest.contains(where: { $0.contains("\"") }) else { return nil }
        // Beyond the preset's fields, only a request id that is API Gateway's own (a UUID) tells
        // this from an nginx log with unquoted fields of its own.
        if rest.count > 4, !isRequestID(rest[2]) { return nil }
        var out: [String: Any] = ["requestTime": time, "status": rest[0], "responseLength": rest[1], "requestId": rest[2]]
        if rest.count > 3 { out["extendedRequestId"] = rest[3] }
        if rest.count > 4 { out["clf_appended_fields"] = rest[4...].joined(separator: " ") }
        switch tokens.count {
        case 3: out["ip"] = tokens[0]; out["caller"] = tokens[1]; out["user"] = tokens[2]
        case 4: out["extendedRequestId"] = tokens[0]; out["ip"] = tokens[1]; out["caller"] = tokens[2]; out["user"] = tokens[3]
        default: return nil
        }
        let parts = ByteScanner.string(request).split(separator: " ", omittingEmptySubsequences: true).map(String.init)
        if parts.count >= 1 { out["httpMethod"] = parts[0] }
        if parts.count >= 3 {
            out["resourcePath"] = parts[1...(parts.count - 2)].joined(separator: " ")
            out["protocol"] = parts[parts.count - 1]
        } else if parts.count == 2 { out["resourcePath"] = parts[1] }
        return out
    }

    static let maxAppendedCLFFields = 4

    /// `$context.requestId` of a REST API: a UUID (8-4-4-4-12 hex digits).
    static func isRequestID(_ s: String) -> Bool {
        let groups = s.split(separator: "-", omittingEmptySubsequences: false)
        return groups.map(\.count) == [8, 4, 4, 4, 12] && groups.allSatisfy { $0.allSatisfy(\.isHexDigit) }
    }

    /// Whether a line is the console's CLF preset whose request id is API Gateway's own: nginx's
    /// detection defers to API Gateway for such lines.
    static func isConsoleCLFWithRequestID(_ line: String) -> Bool {
        guard !line.hasPrefix("{"), let f = Line.with(line, number: 1, { clf($0) }), let id = f["requestId"] as? String else { return false }
        return isRequestID(id)
    }

    /// Normalised key: lowercased, without `$context.`/`context.` and without separators.
    static func normalise(_ key: String) -> String {
        var k = key.lowercased()
        for p in ["$context.", "context.", "$context_", "context_"] where k.hasPrefix(p) { k = String(k.dropFirst(p.count)) }
        return k.replacingOccurrences(of: "_", with: "").replacingOccurrences(of: "-", with: "")
    }

    static func event(_ fields: [String: Any], line: Int, raw: [UInt8]) -> Result<Event, ImporterError> {
        var e = Event(time: nil, layer: .apigateway, kind: .access, line: line, raw: raw)
        var path: String?, resourcePath: String?, routeKey: String?
        var problems: [String] = []
        var sawIdentity = false
        for (key, value) in fields.sorted(by: { $0.key < $1.key }) {
            let k = normalise(key)
            let text = AWSJSON.meaningful(value)
            switch k {
            case "requestid":
                e.requestID = text; sawIdentity = sawIdentity || text != nil
            case "extendedrequestid":
                if let text { e.extra["extended_request_id"] = text; sawIdentity = true }
            case "ip", "sourceip", "identity.sourceip", "clientip":
                e.setAddress(.client, text, elseKeep: "source_ip_text")
            case "requesttime":
                guard let text else { break }
                if let t = AWSTime.clf(text) ?? AWSTime.iso8601(text) { e.time = e.time ?? t } else { problems.append("requestTime '\(text.prefix(40))' unreadable") }
                e.extra["request_time"] = text
            case "requesttimeepoch":
                if let t = AWSTime.epoch(value) { e.time = t } else if text != nil { problems.append("requestTimeEpoch is not a number") }
            case "httpmethod", "method":
                e.method = text
            case "path":
                path = text
            case "resourcepath":
                resourcePath = text
            case "routekey":
                routeKey = text
            case "status":
                guard let text else { break }
                if let v = AWSJSON.int(value), (100...999).contains(v) { e.status = Int(v) } else {
                    problems.append("status '\(text.prefix(40))' is not a status code"); e.extra["status"] = text
                }
            case "error", "errormessage", "error.message", "errormessagestring", "error.messagestring":
                if let text, e.error == nil || k.hasSuffix("message") { e.error = text }
            case "error.responsetype", "errorresponsetype":
                if let text { e.extra["error_response_type"] = text }
            case "errortype", "responsetype":
                // Custom formats name `$context.error.responseType` so too; its values are the
                // gateway response types (THROTTLED, QUOTA_EXCEEDED), else the key is kept as is.
                if let text, !text.isEmpty, text.count <= 64, text.utf8.allSatisfy({ ($0 >= 0x41 && $0 <= 0x5A) || $0 == 0x5F || ($0 >= 0x30 && $0 <= 0x39) }) {
                    e.extra["error_response_type"] = text
                } else if let text { e.extra[k] = text }
            case "responselength":
                guard let text else { break }
                if let v = AWSJSON.int(value), v >= 0 { e.bytes = v } else { problems.append("responseLength is not a number"); e.extra["response_length"] = text }
            case "protocol":
                if let text { e.extra["protocol"] = text }
            case "useragent", "identity.useragent":
                e.userAgent = text
            case "integrationstatus", "integration.integrationstatus", "integration.status":
                guard let text else { break }
                if let v = AWSJSON.int(value), (100...999).contains(v) { if e.targetStatus == nil || k == "integrationstatus" { e.targetStatus = Int(v) } }
                else { e.extra[k == "integrationstatus" ? "integration_status" : key] = text }
            case "integrationerrormessage", "integration.error":
                if let text { e.extra["integration_error"] = text }
            case "integrationlatency", "integration.latency":
                if let text { e.extra["integration_latency_ms"] = text }
            case "responselatency":
                if let ms = AWSJSON.millisToMicros(value) { e.duration = ms } else if text != nil { problems.append("responseLatency is not a number") }
            case "wafresponsecode":
                if let text {
                    e.extra["waf_response_code"] = text
                    e.wafAction = text.uppercased().hasPrefix("WAF_") ? String(text.uppercased().dropFirst(4)) : text
                }
            case "awsendpointrequestid", "integration.requestid", "integrationrequestid":
                // "The AWS endpoint's request ID" (x-amzn-RequestId): for a Lambda integration, the
                // invocation's RequestId, which its START/END/REPORT lines carry.
                if let text { e.extra["lambda_request_id"] = text }
            case "xraytraceid":
                if let text { e.traceID = AWSTrace.root(text) }
            case "domainname":
                e.host = text
            default:
                guard !(value is NSNull) else { break }
                let rendered = AWSJSON.compact(value)
                if rendered != "-" && !rendered.isEmpty { e.extra[key] = rendered }
            }
        }
        guard sawIdentity || (e.method != nil && e.status != nil) else {
            return .failure(ImporterError("not an API Gateway access record: no requestId or extendedRequestId"))
        }
        if let r = resourcePath { e.extra["resource_path"] = r }
        if let r = routeKey { e.extra["route_key"] = r }
        if let path { splitTarget(path, into: &e) }
        else if let resourcePath { e.path = resourcePath }
        else if let routeKey {
            let parts = routeKey.split(separator: " ", maxSplits: 1)
            if parts.count == 2 {
                if e.method == nil { e.method = String(parts[0]) }
                e.path = String(parts[1])
            } else { e.path = routeKey }
        }
        if !problems.isEmpty { e.extra["problems"] = problems.joined(separator: "; ") }
        return .success(e)
    }
}
