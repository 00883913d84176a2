import Foundation

/// Amazon Inspector (v2) findings: `aws inspector2 list-findings` output (`{"findings": […]}`),
/// one finding per line (exports, Security Lake feeds), or EventBridge events
/// (`"detail-type": "Inspector2 Finding"`). One record (kind `finding`) per finding, on the layer
/// of the software it concerns: nginx for an nginx package, gunicorn, the application for its
/// Python dependencies, Lambda for a function, else the host (`system`).
public struct InspectorFindingsImporter: Importer {
    // Context the diagnosis reads beyond the window's margin (`Importer.storedWholeForAWindow`).
    public var storedWholeForAWindow: Bool { true }

    public init() {}

    public let id = "inspector-findings"
    public var writtenLive: Bool { false }
    public let title = "Amazon Inspector findings (inspector2 list-findings JSON, EventBridge)"
    public let layer = Layer.system
    public let documentation = "https://docs.aws.amazon.com/inspector/v2/APIReference/API_Finding.html"

    // Fields of the API reference's `Finding` (`packageVulnerabilityDetails`,
    // `networkReachabilityDetails`, `resources`), shaped as in Elastic's aws/inspector pipeline test input.
    public let samples = [
        FormatSample(fileName: "inspector2-list-findings.json", lines: [
            "{",
            "    \"findings\": [",
            "        {",
            "            \"awsAccountId\": \"111122223333\",",
            "            \"description\": \"A use-after-free in the resolver of nginx before 1.21.0 lets a remote attacker crash a worker or run code.\",",
            "            \"findingArn\": \"arn:aws:inspector2:us-east-1:111122223333:finding/0ab1c2d3e4f5a6b7c8d9e0f1a2b3c4d5\",",
            "            \"firstObservedAt\": \"2026-01-10T08:00:00.000000+00:00\",",
            "            \"lastObservedAt\": \"2026-01-22T02:00:00.000000+00:00\",",
            "            \"packageVulnerabilityDetails\": {",
            "                \"source\": \"NVD\",",
            "                \"vulnerabilityId\": \"CVE-2021-23017\",",
            "                \"vulnerablePackages\": [",
            "                    {",
            "                        \"fixedInVersion\": \"1.20.1\",",
            "                        \"name\": \"nginx\",",
            "                        \"packageManager\": \"OS\",",
            "                        \"version\": \"1.18.0\"",
            "                    }",
            "                ]",
            "            },",
            "            \"resources\": [",
            "                {",
            "                    \"details\": {",
            "                        \"awsEc2Instance\": {",
            "                            \"ipV4Addresses\": [\"10.1.2.15\"],",
            "                            \"platform\": \"UBUNTU_20_04\"",
            "                        }",
            "                    },",
            "                    \"id\": \"i-0abcdef1234567890\",",
            "                    \"type\": \"AWS_EC2_INSTANCE\"",
            "                }",
            "            ],",
            "            \"severity\": \"HIGH\",",
            "            \"status\": \"ACTIVE\",",
            "            \"title\": \"CVE-2021-23017 - nginx\",",
            "            \"type\": \"PACKAGE_VULNERABILITY\"",
            "        }",
            "    ]",
            "}",
        ]),
        FormatSample(fileName: "inspector-findings.jsonl", lines: [
            #"{"awsAccountId":"123456789012","description":"Requests is a HTTP library.","findingArn":"arn:aws:inspector2:us-east-2:123451256789:finding/fb6294abcdef0123456789abcdef8404","firstObservedAt":1748629505.465,"inspectorScore":6.5,"lastObservedAt":1749165997.322,"packageVulnerabilityDetails":{"source":"AMAZON_CVE","vulnerabilityId":"CVE-2024-35195","vulnerablePackages":[{"arch":"NOARCH","epoch":0,"fixedInVersion":"0:2.6.0-10.amzn2.0.6","name":"python-requests","packageManager":"OS","version":"2.6.0"}]},"resources":[{"details":{"awsEc2Instance":{"ipV4Addresses":["10.90.0.87"],"platform":"AMAZON_LINUX_2"}},"id":"i-059abcdefabcdef1b","partition":"aws","region":"us-east-2","type":"AWS_EC2_INSTANCE"}],"severity":"MEDIUM","status":"ACTIVE","title":"CVE-2024-35195 - python-requests","type":"PACKAGE_VULNERABILITY","updatedAt":1749165997.322}"#,
            #"{"awsAccountId":"123456789","description":"Port range 80 to 443 is reachable from an internet gateway.","findingArn":"arn:aws:inspector2:us-east-1:123456789:finding/4f0c1d2e3b4a5968778695a4b3c2d1e0","firstObservedAt":"1.663703546405E9","lastObservedAt":"1.663703546405E9","networkReachabilityDetails":{"openPortRange":{"begin":80,"end":443},"protocol":"TCP"},"resources":[{"id":"i-0abcdef1234567890","type":"AWS_EC2_INSTANCE"}],"severity":"INFORMATIONAL","status":"ACTIVE","title":"Port 80 to 443 is reachable from an Internet Gateway","type":"NETWORK_REACHABILITY"}"#,
        ]),
    ]

    public let fieldNotes = """
        One record per finding, kind `finding`: `time` = `lastObservedAt` (else `updatedAt`), `alt_time` = \
        `firstObservedAt` (ISO-8601 as the CLI prints them, or epoch seconds as exports carry them); `level` = \
        `severity`; `message` = vulnerability, severity, packages, resource and title. `extra.vulnerability_id`, \
        `extra.packages` (`name version (fixed in X)`, `;`-separated), `extra.resource` (instance id, function name or \
        image), `extra.resource_type`, `extra.resource_ips`, `extra.open_ports` (network reachability), `extra.severity`, \
        `extra.status`, `extra.finding_type`, `extra.title`, `extra.inspector_score`, `extra.finding_arn`. Layer: `nginx` \
        for an nginx package, `gunicorn` for gunicorn, `app` for Python packages of the application (pip/Poetry/Pipenv \
        manifests, Flask, Werkzeug, Django), `lambda` for a Lambda function, else `system`. A finding without a type \
        and title, or without any stamp, is rejected with the reason; findings never count as a layer's logs.
        """

    public func recognize(_ lines: [String], fileName: String) -> Double {
        guard let first = lines.first?.trimmingCharacters(in: .whitespaces), first.hasPrefix("{") || first.hasPrefix("[") else { return 0 }
        let joined = lines.joined(separator: "\n")
        if joined.contains("\"Inspector2 Finding\"") { return 1 }
        guard joined.contains("\"findingArn\"") else { return 0 }
        return joined.contains("arn:aws:inspector2:") || joined.contains("\"packageVulnerabilityDetails\"")
            || joined.contains("\"networkReachabilityDetails\"") || joined.contains("\"inspectorScore\"") ? 1 : 0
    }

    public func makeParser(_ context: ParseContext) throws -> any RecordParser { InspectorParser() }
}

struct InspectorParser: RecordParser {
    var document = JSONDocumentBuffer()

    mutating func consume(_ line: Line, into sink: inout RecordSink) {
        if line.isComment { return sink.rejectComment(line, notA: "part of an Inspector findings JSON document") }
        document.append(line, into: &sink)
    }

    mutating func finish(into sink: inout RecordSink) {
        let doc = document
        document = JSONDocumentBuffer()
        JSONRecords.read(doc, noun: "Inspector finding", into: &sink, isPage: { v in
            guard let o = v as? [String: Any] else { return (v as? [Any])?.isEmpty ?? false }
            return o["findings"] != nil
        }, isRecord: { o in
            o["detail"] is [String: Any] || o["findingArn"] != nil
        }, handle: { range, object, _, sink in
            Self.finding(range, object, doc, into: &sink)
        })
    }

    /// The layer of the software a package finding concerns.
    static func layer(packages: [[String: Any]], resourceType: String?) -> Layer {
        for p in packages {
            let name = (AWSJSON.meaningful(p["name"]) ?? "").lowercased()
            let manager = (AWSJSON.meaningful(p["packageManager"]) ?? "").uppercased()
            if name == "nginx" || name.hasPrefix("nginx-") { return .nginx }
            if name == "gunicorn" || name == "python3-gunicorn" { return .gunicorn }
            if ["PIP", "POETRY", "PIPENV"].contains(manager) || ["flask", "werkzeug", "django"].contains(name) { return .app }
        }
        if resourceType == "AWS_LAMBDA_FUNCTION" { return .lambda }
        return .system
    }

    static func finding(_ range: Range<Int>, _ outer: [String: Any], _ doc: JSONDocumentBuffer, into sink: inout RecordSink) -> JSONRecords.Outcome {
        let (first, last) = doc.lineRange(range)
        let raw = doc.slice(range)
        let o = (outer["detail"] as? [String: Any]) ?? outer
        guard AWSJSON.meaningful(o["findingArn"]) != nil || AWSJSON.meaningful(o["title"]) != nil, let type = AWSJSON.meaningful(o["type"]) else {
            sink.rejected.append(RejectedLine(line: first, lineEnd: last, reason: "Inspector finding has no type, or neither findingArn nor title", raw: raw))
            return .taken([range])
        }
        let lastSeen = JSONRecords.time(o["lastObservedAt"]) ?? JSONRecords.time(o["updatedAt"])
        let firstSeen = JSONRecords.time(o["firstObservedAt"])
        guard let time = lastSeen ?? firstSeen else {
            sink.rejected.append(RejectedLine(line: first, lineEnd: last, reason: "Inspector finding has no lastObservedAt, updatedAt or firstObservedAt stamp", raw: raw))
            return .taken([range])
        }
        let details = o["packageVulnerabilityDetails"] as? [String: Any]
        let packages = (details?["vulnerablePackages"] as? [Any])?.compactMap { $0 as? [String: Any] } ?? []
        let resources = (o["resources"] as? [Any])?.compactMap { $0 as? [String: Any] } ?? []
        let resource = resources.first
        let resourceType = resource.flatMap { AWSJSON.meaningful($0["type"]) }
        var e = Event(time: time, layer: layer(packages: packages, resourceType: resourceType), kind: .finding, line: first, lineEnd: last, raw: raw)
        if let firstSeen, firstSeen != time { e.altTime = firstSeen }
        e.level = AWSJSON.meaningful(o["severity"])
        e.extra["finding_type"] = type
        if let s = e.level { e.extra["severity"] = s }
        if let s = AWSJSON.meaningful(o["status"]) { e.extra["status"] = s }
        if let t = AWSJSON.meaningful(o["title"]) { e.extra["title"] = t }
        if let a = AWSJSON.meaningful(o["findingArn"]) { e.extra["finding_arn"] = a }
        if let s = AWSJSON.string(o["inspectorScore"]) { e.extra["inspector_score"] = s }
        let vuln = details.flatMap { AWSJSON.meaningful($0["vulnerabilityId"]) }
        if let vuln { e.extra["vulnerability_id"] = vuln }
        let packageText = packages.map { p -> String in
            var s = [AWSJSON.meaningful(p["name"]) ?? "?", AWSJSON.meaningful(p["version"])].compactMap { $0 }.joined(separator: " ")
            if let fixed = AWSJSON.meaningful(p["fixedInVersion"]), fixed != "NotAvailable" { s += " (fixed in \(fixed))" }
            return s
        }
        if !packageText.isEmpty { e.extra["packages"] = packageText.joined(separator: "; ") }
        let resourceName: String? = resource.flatMap { r in
            let d = r["details"] as? [String: Any]
            if let f = d?["awsLambdaFunction"] as? [String: Any], let n = AWSJSON.meaningful(f["functionName"]) { return n }
            return AWSJSON.meaningful(r["id"])
        }
        if let resourceName { e.extra["resource"] = resourceName }
        if let resourceType { e.extra["resource_type"] = resourceType }
        if let ec2 = (resource?["details"] as? [String: Any])?["awsEc2Instance"] as? [String: Any],
           let ips = (ec2["ipV4Addresses"] as? [Any])?.compactMap(AWSJSON.meaningful), !ips.isEmpty {
            e.extra["resource_ips"] = ips.joined(separator: ",")
        }
        if let net = o["networkReachabilityDetails"] as? [String: Any], let range = net["openPortRange"] as? [String: Any],
           let b = AWSJSON.string(range["begin"]), let end = AWSJSON.string(range["end"]) {
            e.extra["open_ports"] = b == end ? b : "\(b)-\(end)"
        }
        var text = "Inspector"
        if let vuln { text += " \(vuln)" } else { text += " \(type)" }
        if let s = e.level { text += " (\(s))" }
        if let first = packageText.first { text += ": \(first)\(packageText.count > 1 ? " and \(packageText.count - 1) more" : "")" }
        if let ports = e.extra["open_ports"] { text += ": ports \(ports) reachable" }
        if let resourceName { text += " on \(resourceName)" }
        if let t = e.extra["title"] { text += " — \(t)" }
        e.message = text
        sink.emit(e)
        return .taken([range])
    }
}
