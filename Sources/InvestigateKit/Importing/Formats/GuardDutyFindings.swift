import Foundation

/// GuardDuty findings: `aws guardduty get-findings` output (`{"Findings": […]}`, PascalCase keys),
/// the findings GuardDuty exports to S3 (one camelCase finding per line) and EventBridge events
/// (`"detail-type": "GuardDuty Finding"`, the finding in `detail`). One record (kind `finding`) per
/// finding: context beside the logs, never a request.
public struct GuardDutyFindingsImporter: Importer {
    // Context the diagnosis reads beyond the window's margin (`Importer.storedWholeForAWindow`).
    public var storedWholeForAWindow: Bool { true }

    public init() {}

    public let id = "guardduty-findings"
    public var writtenLive: Bool { false }
    public let title = "Amazon GuardDuty findings (get-findings JSON, S3 export, EventBridge)"
    public let layer = Layer.system
    public let documentation = "https://docs.aws.amazon.com/guardduty/latest/APIReference/API_GetFindings.html"

    // The shapes of the API reference (`Finding`, `PortProbeAction`) and of GuardDuty's sample
    // findings as exported (fields as in Elastic's aws/guardduty pipeline test input).
    public let samples = [
        FormatSample(fileName: "guardduty-get-findings.json", lines: [
            "{",
            "    \"Findings\": [",
            "        {",
            "            \"AccountId\": \"111122223333\",",
            "            \"Arn\": \"arn:aws:guardduty:us-east-1:111122223333:detector/12abc34d567e8f4912ab3d45e67891f2/finding/1ab2c3d4e5f6a7b8c9d0e1f2a3b4c5d6\",",
            "            \"CreatedAt\": \"2026-01-22T03:40:12.016Z\",",
            "            \"Id\": \"1ab2c3d4e5f6a7b8c9d0e1f2a3b4c5d6\",",
            "            \"Region\": \"us-east-1\",",
            "            \"Resource\": {",
            "                \"InstanceDetails\": {",
            "                    \"InstanceId\": \"i-0abcdef1234567890\"",
            "                },",
            "                \"ResourceType\": \"Instance\"",
            "            },",
            "            \"SchemaVersion\": \"2.0\",",
            "            \"Service\": {",
            "                \"Action\": {",
            "                    \"ActionType\": \"PORT_PROBE\",",
            "                    \"PortProbeAction\": {",
            "                        \"Blocked\": false,",
            "                        \"PortProbeDetails\": [",
            "                            {",
            "                                \"LocalPortDetails\": { \"Port\": 443, \"PortName\": \"HTTPS\" },",
            "                                \"RemoteIpDetails\": { \"IpAddressV4\": \"198.51.100.7\" }",
            "                            }",
            "                        ]",
            "                    }",
            "                },",
            "                \"Archived\": false,",
            "                \"Count\": 12,",
            "                \"EventFirstSeen\": \"2026-01-22T03:40:00.000Z\",",
            "                \"EventLastSeen\": \"2026-01-22T03:56:10.000Z\",",
            "                \"ResourceRole\": \"TARGET\",",
            "                \"ServiceName\": \"guardduty\"",
            "            },",
            "            \"Severity\": 2,",
            "            \"Title\": \"Unprotected port on EC2 instance i-0abcdef1234567890 is being probed.\",",
            "            \"Type\": \"Recon:EC2/PortProbeUnprotectedPort\",",
            "            \"UpdatedAt\": \"2026-01-22T03:56:20.000Z\"",
            "        }",
            "    ]",
            "}",
        ]),
        FormatSample(fileName: "guardduty-export.jsonl", lines: [
            #"{"schemaVersion":"2.0","accountId":"123412341234","region":"us-east-1","partition":"aws","id":"d6012345678912345678912349f831b8f","arn":"arn:aws:guardduty:us-east-1:123412341234:detector/d60123456789e5461eabcd1234abcd1234/finding/d6012345678912345678912349f831b8f","type":"Trojan:EC2/BlackholeTraffic!DNS","resource":{"resourceType":"Instance","instanceDetails":{"instanceId":"i-99999999","instanceType":"m3.xlarge"}},"service":{"serviceName":"guardduty","detectorId":"d60123456789e5461eabcd1234abcd1234","action":{"actionType":"DNS_REQUEST","dnsRequestAction":{"domain":"GeneratedFindingDomainName","protocol":"UDP","blocked":true}},"resourceRole":"TARGET","eventFirstSeen":"2022-11-17T09:33:19.000Z","eventLastSeen":"2022-11-22T12:22:20.000Z","archived":false,"count":2},"severity":5,"createdAt":"2022-11-17T09:33:19.224Z","updatedAt":"2022-11-22T12:22:20.934Z","title":"Blackholed domain name queried by EC2 instance i-99999999.","description":"EC2 instance i-99999999 is querying a domain name of a blackholed domain."}"#,
        ]),
        FormatSample(fileName: "guardduty-eventbridge.json", lines: [
            #"{"version":"0","id":"c8c4daa7-a20c-2f03-0070-b7393dd542ad","detail-type":"GuardDuty Finding","source":"aws.guardduty","account":"123456789012","time":"2026-01-22T03:57:00Z","region":"us-east-1","resources":[],"detail":{"schemaVersion":"2.0","accountId":"123456789012","region":"us-east-1","id":"16afba5c5c43e07c9e3e5e2e544e95df","arn":"arn:aws:guardduty:us-east-1:123456789012:detector/123456789012/finding/16afba5c5c43e07c9e3e5e2e544e95df","type":"Recon:EC2/Portscan","resource":{"resourceType":"Instance","instanceDetails":{"instanceId":"i-0abcdef1234567890"}},"service":{"serviceName":"guardduty","action":{"actionType":"NETWORK_CONNECTION","networkConnectionAction":{"connectionDirection":"INBOUND","remoteIpDetails":{"ipAddressV4":"203.0.113.99"},"localPortDetails":{"port":22,"portName":"SSH"},"protocol":"TCP","blocked":false}},"resourceRole":"TARGET","eventFirstSeen":"2026-01-22T03:51:00.000Z","eventLastSeen":"2026-01-22T03:55:30.000Z","archived":false,"count":4},"severity":5,"createdAt":"2026-01-22T03:52:00.000Z","updatedAt":"2026-01-22T03:56:00.000Z","title":"203.0.113.99 is performing a port scan against i-0abcdef1234567890.","description":"EC2 instance i-0abcdef1234567890 is being probed."}}"#,
        ]),
    ]

    public let fieldNotes = """
        One record per finding, kind `finding`: `time` = `Service.EventLastSeen` (else `UpdatedAt`), `alt_time` = \
        `EventFirstSeen` (else `CreatedAt`); `client_ip` = the first remote address of the action (`RemoteIpDetails` of a \
        network connection, port probe, API call, Kubernetes or RDS login action), all of them in `extra.remote_ips`; \
        `level` = the severity's name (Low < 4 ≤ Medium < 7 ≤ High < 9 ≤ Critical); `message` = type, severity, resource, \
        remote address and title. `extra.finding_type`, `extra.severity`, `extra.resource_type`, `extra.resource` (instance \
        id, function name, cluster, bucket), `extra.local_ports`, `extra.action_type`, `extra.count`, `extra.first_seen`, \
        `extra.last_seen`, `extra.finding_id`, `extra.title`, `extra.archived`, `extra.sample` (GuardDuty's generated \
        sample findings). Layer `lambda` for a Lambda resource, else `system`. Keys are read in either case (the API's \
        CLI output is PascalCase, exports camelCase). A finding without a type or without any stamp is rejected with \
        the reason; findings never count as a layer's logs.
        """

    public func recognize(_ lines: [String], fileName: String) -> Double {
        guard let first = lines.first?.trimmingCharacters(in: .whitespaces), first.hasPrefix("{") || first.hasPrefix("[") else { return 0 }
        let joined = lines.joined(separator: "\n")
        if joined.contains("\"GuardDuty Finding\"") { return 1 }
        let lower = joined.lowercased()
        guard lower.contains("arn:aws:guardduty:") || lower.contains("\"servicename\": \"guardduty\"") || lower.contains("\"servicename\":\"guardduty\"") else { return 0 }
        return lower.contains("\"findings\"") || lower.contains("\"schemaversion\"") ? 1 : 0
    }

    public func makeParser(_ context: ParseContext) throws -> any RecordParser { GuardDutyParser() }
}

struct GuardDutyParser: RecordParser {
    var document = JSONDocumentBuffer()

    mutating func consume(_ line: Line, into sink: inout RecordSink) {
        if line.isComment { return sink.rejectComment(line, notA: "part of a GuardDuty findings JSON document") }
        document.append(line, into: &sink)
    }

    mutating func finish(into sink: inout RecordSink) {
        let doc = document
        document = JSONDocumentBuffer()
        JSONRecords.read(doc, noun: "GuardDuty finding", into: &sink, isPage: { v in
            guard let o = v as? [String: Any] else { return (v as? [Any])?.isEmpty ?? false }
            return JSONRecords.value(o, "Findings") != nil
        }, isRecord: { o in
            JSONRecords.value(o, "detail") is [String: Any] || (JSONRecords.value(o, "Type") != nil && JSONRecords.value(o, "Findings") == nil)
        }, handle: { range, object, _, sink in
            Self.finding(range, object, doc, into: &sink)
        })
    }

    static func severityName(_ s: Double) -> String {
        s >= 9 ? "Critical" : s >= 7 ? "High" : s >= 4 ? "Medium" : "Low"
    }

    /// Every `RemoteIpDetails` address under the action, in order of appearance (keys sorted).
    static func remoteAddresses(_ value: Any?, into out: inout [String], ports: inout [String]) {
        if let o = value as? [String: Any] {
            for key in o.keys.sorted() {
                let v = o[key]!
                switch key.lowercased() {
                case "remoteipdetails":
                    if let d = v as? [String: Any], let ip = JSONRecords.string(d, "IpAddressV4") ?? JSONRecords.string(d, "IpAddressV6"), !out.contains(ip) { out.append(ip) }
                case "localportdetails":
                    if let d = v as? [String: Any], let p = AWSJSON.string(JSONRecords.value(d, "Port")), !ports.contains(p) { ports.append(p) }
                case "sourceips":
                    for case let s as String in (v as? [Any]) ?? [] where !out.contains(s) { out.append(s) }
                default:
                    remoteAddresses(v, into: &out, ports: &ports)
                }
            }
        } else if let a = value as? [Any] {
            for v in a { remoteAddresses(v, into: &out, ports: &ports) }
        }
    }

    static func finding(_ range: Range<Int>, _ outer: [String: Any], _ doc: JSONDocumentBuffer, into sink: inout RecordSink) -> JSONRecords.Outcome {
        let (first, last) = doc.lineRange(range)
        let raw = doc.slice(range)
        var o = outer
        var eventTime: String?
        if let detail = JSONRecords.value(outer, "detail") as? [String: Any] {
            o = detail
            eventTime = JSONRecords.string(outer, "time")
        }
        guard let type = JSONRecords.string(o, "Type") else {
            sink.rejected.append(RejectedLine(line: first, lineEnd: last, reason: "GuardDuty finding has no Type", raw: raw))
            return .taken([range])
        }
        let service = JSONRecords.object(o, "Service")
        let lastSeen = JSONRecords.time(service.flatMap { JSONRecords.value($0, "EventLastSeen") }) ?? JSONRecords.time(JSONRecords.value(o, "UpdatedAt"))
        let firstSeen = JSONRecords.time(service.flatMap { JSONRecords.value($0, "EventFirstSeen") }) ?? JSONRecords.time(JSONRecords.value(o, "CreatedAt"))
        guard let time = lastSeen ?? firstSeen else {
            sink.rejected.append(RejectedLine(line: first, lineEnd: last, reason: "GuardDuty finding \(type) has no EventLastSeen, EventFirstSeen, UpdatedAt or CreatedAt stamp", raw: raw))
            return .taken([range])
        }
        let resource = JSONRecords.object(o, "Resource")
        let resourceType = JSONRecords.string(resource, "ResourceType")
        var e = Event(time: time, layer: resourceType?.lowercased() == "lambda" ? .lambda : .system, kind: .finding, line: first, lineEnd: last, raw: raw)
        if let firstSeen, firstSeen != time { e.altTime = firstSeen }
        var ips: [String] = [], ports: [String] = []
        remoteAddresses(service.flatMap { JSONRecords.value($0, "Action") }, into: &ips, ports: &ports)
        let valid = ips.filter(IPAddressText.isAddress)
        e.clientIP = valid.first
        if !ips.isEmpty { e.extra["remote_ips"] = ips.joined(separator: ",") }
        if !ports.isEmpty { e.extra["local_ports"] = ports.joined(separator: ",") }
        let resourceName: String? = {
            guard let resource else { return nil }
            if let i = JSONRecords.object(resource, "InstanceDetails"), let id = JSONRecords.string(i, "InstanceId") { return id }
            if let l = JSONRecords.object(resource, "LambdaDetails"), let n = JSONRecords.string(l, "FunctionName") ?? JSONRecords.string(l, "FunctionArn") { return n }
            if let k = JSONRecords.object(resource, "EksClusterDetails"), let n = JSONRecords.string(k, "Name") { return n }
            if let r = JSONRecords.object(resource, "RdsDbInstanceDetails"), let n = JSONRecords.string(r, "DbInstanceIdentifier") { return n }
            if let a = JSONRecords.object(resource, "AccessKeyDetails"), let n = JSONRecords.string(a, "UserName") ?? JSONRecords.string(a, "AccessKeyId") { return n }
            if let b = JSONRecords.value(resource, "S3BucketDetails") as? [Any], let d = b.first as? [String: Any], let n = JSONRecords.string(d, "Name") { return n }
            return nil
        }()
        let severity = AWSJSON.double(JSONRecords.value(o, "Severity"))
        e.level = severity.map(severityName)
        e.extra["finding_type"] = type
        if let severity { e.extra["severity"] = AWSJSON.string(NSNumber(value: severity)) }
        if let resourceType { e.extra["resource_type"] = resourceType }
        if let resourceName { e.extra["resource"] = resourceName }
        if let a = service.flatMap({ JSONRecords.object($0, "Action") }), let t = JSONRecords.string(a, "ActionType") { e.extra["action_type"] = t }
        if let c = service.flatMap({ AWSJSON.string(JSONRecords.value($0, "Count")) }) { e.extra["count"] = c }
        if let a = service.flatMap({ AWSJSON.string(JSONRecords.value($0, "Archived")) }) { e.extra["archived"] = a }
        if let firstSeen { e.extra["first_seen"] = TimeFormat.isoUTC(firstSeen) }
        e.extra["last_seen"] = TimeFormat.isoUTC(time)
        if let id = JSONRecords.string(o, "Id") { e.extra["finding_id"] = id }
        if let title = JSONRecords.string(o, "Title") { e.extra["title"] = title }
        if let eventTime { e.extra["event_time"] = eventTime }
        if let info = service.flatMap({ JSONRecords.object($0, "AdditionalInfo") }), (JSONRecords.value(info, "sample") as? Bool) == true {
            e.extra["sample"] = "true"
            sink.note("holds GuardDuty's generated sample findings (additionalInfo.sample)")
        }
        var text = "GuardDuty \(type)"
        if let severity { text += " (severity \(AWSJSON.string(NSNumber(value: severity)) ?? "?"), \(severityName(severity)))" }
        if let resourceName { text += " on \(resourceName)" }
        if let ip = ips.first { text += " from \(ip)\(ips.count > 1 ? " and \(ips.count - 1) more" : "")" }
        if let title = JSONRecords.string(o, "Title") { text += ": \(title)" }
        e.message = text
        sink.emit(e)
        return .taken([range])
    }
}
