/// CloudFront answered the viewer itself: geo restriction, an invalid request, a quota, or an origin
/// it could not reach or read. Its standard log says so in `x-edge-detailed-result-type` (the CloudFront
/// developer guide: "When x-edge-result-type is Error, this field contains the specific type of error").
///
/// A CloudFront error that only passes the origin's own error on (result type `Error`, detailed type
/// `Error` or absent) is not CloudFront's answer: the rule stays silent and the layers behind it
/// judge. So does it whenever a layer behind the edge logged the request: the origin answered.
public struct CloudFrontOwnErrorRule: DiagnosisRule {
    public init() {}
    public let id = "cloudfront-own-error"
    public let title = "CloudFront answered the viewer itself"
    public let doc = RuleDoc(
        fires: "The request's CloudFront record has an error status and an `x-edge-detailed-result-type` naming CloudFront's own refusal or failure (`ClientGeoBlocked`, `InvalidRequest…`, `LimitExceeded`, `CapacityExceeded`, `OriginConnectError`, `OriginDnsError`, `AbortedOrigin`, …), and no layer behind the edge logged the request. With `Error` alone: a 403 to a signed URL (`Expires`, `Signature`/`Policy`, `Key-Pair-Id` in the query) is CloudFront's own, caused by the client when `Expires` is before the request; otherwise, with no logs of any layer behind the edge, the origin's error passed on (responder `upstream`: the origin, whose kind CloudFront's log does not name; an XML body is S3's).",
        evidence: "The CloudFront line (status, result types, edge location, request id); an origin-side failure names the origin's logs as expectedly silent.",
        example: "403 for GET /private from 198.51.100.7: CloudFront's detailed result type is ClientGeoBlocked, the distribution refuses that country; no WAF, ALB or nginx record, as expected.")

    /// Refusals of the viewer's request at the edge: the origin never saw the request.
    static let viewerSide: Set<String> = ["ClientGeoBlocked", "ClientCommError", "ClientHungUpRequest", "InvalidRequest",
                                          "InvalidRequestBlocked", "InvalidRequestCertificate", "InvalidRequestHeader",
                                          "InvalidRequestMethod", "LimitExceeded", "CapacityExceeded"]
    /// Failures talking to the origin: CloudFront sent the error (502/504) because the origin could not be reached or read.
    static let originSide: Set<String> = ["OriginConnectError", "OriginDnsError", "OriginCommError", "OriginReadError",
                                          "OriginWriteError", "OriginHeaderTooBigError", "OriginInvalidResponseError",
                                          "OriginContentRangeLengthError", "OriginZeroSizeObjectError", "OriginError",
                                          "AbortedOrigin", "SlowReaderOriginError"]
    /// What each means, condensed from the guide.
    static let meaning: [String: String] = [
        "ClientGeoBlocked": "the distribution is configured to refuse requests from the viewer's geographic location",
        "ClientCommError": "the response to the viewer was interrupted by a communication problem between the edge and the viewer",
        "ClientHungUpRequest": "the viewer stopped prematurely while sending the request",
        "InvalidRequest": "the edge received an invalid request from the viewer",
        "InvalidRequestBlocked": "access to the requested resource is blocked",
        "InvalidRequestCertificate": "the distribution does not match the SSL/TLS certificate the HTTPS connection was made with",
        "InvalidRequestHeader": "the request contained an invalid header",
        "InvalidRequestMethod": "the distribution is not configured for the HTTP method used",
        "LimitExceeded": "a CloudFront quota was exceeded",
        "CapacityExceeded": "the edge had not enough capacity at the time (503)",
        "OriginConnectError": "the edge could not connect to the origin",
        "OriginDnsError": "the edge could not resolve the origin's domain name",
        "OriginCommError": "the request timed out connecting to the origin or reading from it",
        "OriginReadError": "the edge could not read from the origin",
        "OriginWriteError": "the edge could not write to the origin",
        "OriginHeaderTooBigError": "a header the origin returned is too big for the edge",
        "OriginInvalidResponseError": "the origin returned an invalid response",
        "OriginContentRangeLengthError": "the origin's Content-Length does not match its Content-Range",
        "OriginZeroSizeObjectError": "a zero-size object from the origin resulted in an error",
        "OriginError": "the origin returned an incorrect response",
        "AbortedOrigin": "the edge encountered an issue with the origin",
        "SlowReaderOriginError": "the viewer was slow to read the message that caused the origin error",
    ]
    /// Layers behind the edge (a web ACL on the distribution is evaluated at the edge, not behind it).
    static let behindEdge: [Layer] = [.apigateway, .nlb, .alb, .nginx, .gunicorn, .app, .lambda]

    /// CloudFront gave up on the origin (its origin response timeout), and the origin's records
    /// show it answered later, successfully: the slowest layer behind is the cause.
    func lateOrigin(_ c: RequestCase, cf: StoredEvent, status: Int, behind: [StoredEvent]) -> Verdict {
        let sorted = behind.sorted { $0.event.layer < $1.event.layer }
        let deepest: StoredEvent = sorted.last { ($0.event.duration ?? 0) > 0 } ?? sorted[sorted.count - 1]
        let waited = cf.event.duration.map { String(format: "%.1f", Double($0) / 1e6) }
        let took = deepest.event.duration.map { String(format: "%.1f", Double($0) / 1e6) }
        var cause: Layer = [.nginx, .gunicorn].contains(deepest.event.layer) && c.hasData(.app) ? .app : deepest.event.layer
        // The ALB's own time is its target's: a long target_processing_time points behind it.
        if deepest.event.layer == .alb, let target = deepest.extra("target_processing_time").flatMap(Double.init), target >= 1 {
            cause = c.hasData(.app) ? .app : .nginx
        }
        var v = Verdict(
            responder: .cloudfront, cause: cause, confidence: .high,
            explanation: "CloudFront answered \(status) itself (`x-edge-detailed-result-type` \(cf.extra("detailed_result_type") ?? "-")): it gave up waiting for its origin\(waited.map { " after \($0) s" } ?? "") (the origin response timeout). The origin did answer, later and successfully: \(sorted.map { "\($0.event.layer.rawValue) logged \($0.event.elbStatus ?? $0.event.status ?? 0)" }.joined(separator: ", "))\(took.map { ", \(deepest.event.layer.rawValue) after \($0) s" } ?? ""). The slow layer behind is the cause.",
            evidence: [cf] + sorted, nextSteps: ["Find why \(cf.event.path ?? "this path") took so long behind the origin (the app's log for it), or raise the distribution's origin response timeout."],
            expectedAbsent: [:], reasonKey: "cloudfront-\(status)-late-origin")
        v.reached = Set(sorted.map(\.event.layer))
        return v
    }

    /// CloudFront's answer for a signed URL (`Expires`, `Signature`/`Policy`, `Key-Pair-Id` in the
    /// query): an `Expires` before the request is CloudFront's own 403 for an expired link.
    func signedURL(_ c: RequestCase, cf: StoredEvent, status: Int) -> Verdict? {
        guard status == 403, let query = cf.event.query, query.contains("Key-Pair-Id="),
              query.contains("Signature=") || query.contains("Policy=") else { return nil }
        let fields = Dictionary(query.split(separator: "&").compactMap { pair -> (String, String)? in
            let kv = pair.split(separator: "=", maxSplits: 1)
            return kv.count == 2 ? (String(kv[0]), String(kv[1])) : nil
        }, uniquingKeysWith: { a, _ in a })
        var absent: [Layer: String] = [:]
        for l in Self.behindEdge { absent[l] = "expected: CloudFront checks a signed URL at the edge and refuses it before the origin" }
        if let expires = fields["Expires"].flatMap({ Int64($0) }), expires > 0, let t = cf.event.time, expires * 1_000_000 < t {
            let late = Double(t / 1_000_000 - expires) / 3600
            let ago = late >= 1 ? String(format: "%.1f h", late) : "\(t / 1_000_000 - expires) s"
            return Verdict(
                responder: .cloudfront, cause: .client, confidence: .high,
                explanation: "CloudFront refused the request with 403 itself: it carried a signed URL (`Key-Pair-Id` \(fields["Key-Pair-Id"] ?? "?")) whose `Expires` (\(TimeFormat.isoUTC(expires * 1_000_000))) was \(ago) before the request. An expired link is refused at the edge; the origin never saw it.",
                evidence: [cf], nextSteps: ["Have the application issue a fresh signed URL (the user reused an old link, or the link's lifetime is shorter than how long users keep pages open)."],
                expectedAbsent: absent, reasonKey: "cloudfront-403-signed-url-expired")
        }
        return Verdict(
            responder: .cloudfront, cause: nil, confidence: .medium,
            explanation: "CloudFront answered 403 to a signed URL (`Key-Pair-Id` \(fields["Key-Pair-Id"] ?? "?")) that had not expired: CloudFront refuses a signature that does not verify (a URL altered after signing, a key not in the distribution's trusted key group, a policy the request does not meet); which is not in its log.",
            evidence: [cf], nextSteps: ["Check the signing key against the distribution's trusted key groups and that the URL reaches the viewer unaltered (its encoding, added parameters)."],
            expectedAbsent: absent, reasonKey: "cloudfront-403-signed-url")
    }

    /// `Error` alone, with no layer behind the edge given: the origin's own error, passed on. What
    /// the origin is (S3, a load balancer, a custom server) is not in CloudFront's log.
    func relayedOrigin(_ c: RequestCase, cf: StoredEvent, status: Int) -> Verdict? {
        // Served from the cache or fetched without error (`Hit`, `Miss`): CloudFront's answer.
        guard cf.extra("result_type") == "Error", Self.behindEdge.allSatisfy({ !c.hasData($0) }) else { return nil }
        let took = cf.event.duration.map { String(format: "%.3f s", Double($0) / 1e6) }
        let hit = (cf.extra("response_result_type") ?? "") == "Hit"
        var text = "CloudFront passed on an error its origin answered: its result type is `Error` with no refusal of its own named (`x-edge-detailed-result-type` would say `ClientGeoBlocked`, `InvalidRequest…` or `Origin…Error` for CloudFront's own)"
        text += took.map { "; the edge spent \($0) on it" } ?? ""
        text += hit ? ", serving an error cached from the origin." : "."
        if let type = cf.extra("content_type"), type.contains("xml") { text += " Its body is `\(type)`, as S3 writes its errors (`AccessDenied`, `NoSuchKey`)." }
        text += " No logs of the origin were given, so why it answered \(status) is not known from these."
        return Verdict(
            responder: .upstream, cause: StatusMeaning.clientFaults.contains(status) ? .client : status >= 500 ? nil : .upstream, confidence: .medium,
            explanation: text, evidence: [cf],
            nextSteps: ["Fetch the origin's logs for this moment: for an S3 origin, its server access logs or CloudTrail data events (an `AccessDenied` names a bucket policy, a missing object or origin access control); for a load balancer or server origin, its access and error logs."],
            expectedAbsent: Dictionary(uniqueKeysWithValues: Self.behindEdge.map { ($0, "unknown: the origin answered, and CloudFront's log does not say what it is (an S3 bucket has no \($0.rawValue))") }),
            reasonKey: "cloudfront-\(status)-origin")
    }

    public func diagnose(_ c: RequestCase) -> Verdict? {
        guard let cf = c.access(.cloudfront), let status = cf.event.status, status >= 400 else { return nil }
        // The origin logged this request: it answered, CloudFront passed it on; unless the origin's
        // answer came after CloudFront had given up (a read timeout: its record shows a success).
        let behind = c.records.filter { $0.event.kind == .access && Self.behindEdge.contains($0.event.layer) }
        if !behind.isEmpty {
            let detailed = cf.extra("detailed_result_type") ?? ""
            guard status == 504 || detailed == "OriginReadError" || detailed == "OriginCommError",
                  behind.allSatisfy({ ($0.event.elbStatus ?? $0.event.status ?? 0) < 500 }) else { return nil }
            return lateOrigin(c, cf: cf, status: status, behind: behind)
        }
        let result = cf.extra("result_type"), response = cf.extra("response_result_type")
        let detailed = cf.extra("detailed_result_type")
        let own: String
        if let detailed, Self.viewerSide.contains(detailed) || Self.originSide.contains(detailed) {
            own = detailed
        } else if result == "LimitExceeded" || result == "CapacityExceeded" || response == "LimitExceeded" || response == "CapacityExceeded" {
            own = result == "LimitExceeded" || response == "LimitExceeded" ? "LimitExceeded" : "CapacityExceeded"
        } else {
            // `Error` alone: a signed URL refused at the edge, or an origin's error passed on (or
            // served from the cache).
            if let signed = signedURL(c, cf: cf, status: status) { return signed }
            return relayedOrigin(c, cf: cf, status: status)
        }
        let edge = cf.extra("edge_location").map { " at edge \($0)" } ?? ""
        let id = cf.event.requestID.map { " (x-edge-request-id `\($0)`)" } ?? ""
        var text = "CloudFront answered \(status) itself\(edge)\(id): `x-edge-detailed-result-type` is `\(own)`, \(Self.meaning[own] ?? "CloudFront's own error")."
        var absent: [Layer: String] = [:]
        var cause: Layer
        var next: [String] = []
        if Self.originSide.contains(own) {
            // The origin: the first layer behind the edge whose logs were given.
            let origin = Self.behindEdge.first { c.hasData($0) && $0 != .lambda }
            cause = origin ?? .cloudfront
            if own == "OriginConnectError" || own == "OriginDnsError" {
                text += " No HTTP request reached the origin, so its access log cannot hold one"
                text += origin.map { "; the \($0.rawValue) logs given cover this moment and, as expected, hold no record of it." } ?? "; no origin logs were given."
                for l in Self.behindEdge { absent[l] = "expected: CloudFront could not \(own == "OriginDnsError" ? "resolve" : "connect to") its origin, so the request never reached \(l.rawValue)" }
                next.append(own == "OriginDnsError"
                    ? "Check the origin domain name in the distribution's origin settings and its DNS records at that time."
                    : "Check that the origin accepted connections from CloudFront at that time: its security group (the CloudFront managed prefix list), listener port and protocol, certificate, and health.")
            } else {
                text += " The origin\(origin.map { " (\($0.rawValue))" } ?? "") was reached but its answer failed at the edge; \(origin == nil ? "no origin logs were given." : "its logs hold no record linked to this request.")"
                next.append("Fetch the origin's logs for this moment\(origin.map { " (\($0.rawValue))" } ?? "") and look for the request by path and time: its own record says how it answered.")
            }
        } else {
            cause = own == "LimitExceeded" ? .client : StatusMeaning.cause(of: status, answeredBy: .cloudfront)
            if own == "ClientCommError" || own == "ClientHungUpRequest" { cause = .client }
            text += " The request was never forwarded to the origin."
            for l in Self.behindEdge { absent[l] = "expected: CloudFront refused the request at the edge before it reached \(l.rawValue)" }
            if own == "ClientGeoBlocked" {
                next.append("Check the distribution's geographic restrictions (allow or deny list) if this viewer should be served.")
            }
        }
        if c.access(.waf) == nil, c.hasData(.waf) {
            absent[.waf] = "expected: CloudFront's result type names its own \(Self.originSide.contains(own) ? "failure" : "refusal"), not a web ACL's decision"
        }
        var verdict = Verdict(responder: .cloudfront, cause: cause, confidence: .high, explanation: text, evidence: [cf],
                              nextSteps: next, expectedAbsent: absent, reasonKey: "cloudfront-\(status)-\(own)")
        // The origin had the request (a read or communication error comes after connecting): the
        // layers behind may have logged it, late and with their own status, so none is "expected".
        if Self.originSide.contains(own), own != "OriginConnectError", own != "OriginDnsError" {
            verdict.reached = Set(Self.behindEdge.filter { c.hasData($0) && $0 != .lambda })
        }
        return verdict
    }
}
