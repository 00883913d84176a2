/// The fallback: the innermost layer that logged the status the client got answered it.
public struct InnermostRecordRule: DiagnosisRule {
    public init() {}
    public let id = "innermost-record"
    public let title = "The innermost layer that logged the status (no specific rule applied)"
    public let doc = RuleDoc(
        fires: "No specific rule explains the error. A proxy's (nginx's, the ALB's, CloudFront's) unexplained 5xx gets cause `unknown`: it was most likely made behind it. An ALB record whose target answered the status, beside nginx logs with no record of it, names the target's address: those logs are probably another target's.",
        evidence: "The access records of the request.",
        example: "404 seen at nginx with no app log given: nginx is the innermost layer known to have sent it; low confidence.")

    public func diagnose(_ c: RequestCase) -> Verdict? {
        guard let status = c.clientStatus else { return nil }
        let withStatus = c.records.filter { $0.event.kind == .access && $0.event.status == status }.sorted { $0.event.layer < $1.event.layer }
        guard let innermost = withStatus.last else { return nil }
        if let extended = extendedByUnlinkedRecords(c, innermost: innermost, status: status) { return extended }
        if let target = targetsAnswer(c, innermost: innermost, status: status) { return target }
        let layer = innermost.event.layer
        let deeper = c.path.filter { $0 > layer && $0 != .gunicorn }
        let notGiven = deeper.filter { !c.hasData($0) }
        let elsewhere = deeper.filter { c.hasData($0) && !c.covers($0) }
        let unseen = notGiven + elsewhere
        let confidence: Confidence = unseen.isEmpty ? .medium : .low
        var text = "\(layer.rawValue) is the innermost layer that logged \(status) for this request, so it sent the response as far as these logs show."
        if !notGiven.isEmpty {
            text += " No logs of \(notGiven.map(\.rawValue).joined(separator: ", ")) were given, so a layer behind it may have produced the status."
        }
        for l in elsewhere {
            let cov = c.coverage[l]
            text += " The \(l.rawValue) logs given cover \(cov?.first ?? "?") to \(cov?.last ?? "?"), not this moment, so they cannot show whether \(l.rawValue) produced it."
        }
        // A server error that a layer in front passed on was most often made behind it: with the
        // layers behind unseen at this moment, which one caused it is not known, and is not guessed.
        // A proxy (nginx, the ALB, CloudFront) rarely makes a 5xx of its own without saying so in
        // its error log, which the specific rules read; unexplained, its 5xx was most likely passed
        // on from behind, even when the logs behind it have no record (they are then suspicious).
        let passedOn = status >= 500 && !Self.origins.contains(layer)
        let cause: Layer? = StatusMeaning.clientFaults.contains(status) || ((unseen.isEmpty || Self.origins.contains(layer)) && !passedOn)
            ? StatusMeaning.cause(of: status, answeredBy: layer) : nil
        if cause == nil {
            text += " Which layer caused it is unknown from these logs."
        }
        var next = notGiven.map { "Ingest the \($0.rawValue) logs for this time to see whether it produced the status." }
        next += elsewhere.map { "Check the zone and clock of the \($0.rawValue) logs (`investigate sources` shows how their stamps were read), or find the \($0.rawValue) logs of this time." }
        return Verdict(responder: layer, cause: cause, confidence: confidence, explanation: text, evidence: withStatus,
                       nextSteps: next, expectedAbsent: [:], reasonKey: "innermost-\(layer.rawValue)-\(status)")
    }

    /// The ALB passed on its target's answer (target_status_code equal to its own), and nginx's logs
    /// are here without any record of it: the target that answered is named, since its host's
    /// logs, probably not these, are the ones to read.
    func targetsAnswer(_ c: RequestCase, innermost: StoredEvent, status: Int) -> Verdict? {
        guard innermost.event.layer == .alb, innermost.event.targetStatus == status, c.hasData(.nginx),
              let address = innermost.extra("target") else { return nil }
        var v = Verdict(
            responder: .nginx, cause: StatusMeaning.clientFaults.contains(status) ? .client : nil, confidence: .medium,
            explanation: "The ALB passed on the \(status) its target `\(address)` answered (target_status_code \(status)). None of the nginx records given matches this request, so the nginx logs given are probably another target's; which layer behind `\(address)` made the \(status) is unknown from these logs.",
            evidence: [innermost], nextSteps: ["Fetch the nginx, gunicorn and app logs of the host behind `\(address)` for this time."],
            expectedAbsent: [:], reasonKey: "alb-target-\(status)")
        v.reached = [.nginx]
        return v
    }

    /// Layers that make responses rather than pass them on: when one of them logged the status, it
    /// is the cause as far as any log can show.
    static let origins: Set<Layer> = [.app, .lambda]

    /// Deeper layers may hold this request's records unlinked (identical requests from one client
    /// inside the tolerance cannot be told apart). When records there carry the same path and status
    /// at this moment, the specific rules judge the case with one of them, at medium confidence.
    func extendedByUnlinkedRecords(_ c: RequestCase, innermost: StoredEvent, status: Int) -> Verdict? {
        guard let path = innermost.event.path, let t = innermost.event.time else { return nil }
        var extended = c
        var added: [StoredEvent] = []
        var candidatesSeen = 0
        for layer in [Layer.nginx, .gunicorn, .app] where layer > innermost.event.layer && !c.layersPresent.contains(layer) {
            let candidates = c.nearby.filter { e in
                e.event.layer == layer && e.event.kind == .access && e.event.status == status && e.event.path == path
                    && abs((e.event.time ?? 0) - t) <= 5_000_000
                    && (e.event.clientIP == nil || innermost.event.clientIP == nil || layer == .app || e.event.clientIP == innermost.event.clientIP)
            }
            guard let first = candidates.min(by: { abs(($0.event.time ?? 0) - t) < abs(($1.event.time ?? 0) - t) }) else { break }
            candidatesSeen = max(candidatesSeen, candidates.count)
            added.append(first)
        }
        guard !added.isEmpty else { return nil }
        let ids = Set(added.map(\.id))
        extended.records += added
        extended.nearby.removeAll { ids.contains($0.id) }
        for rule in [NginxRule(), AppRule()] as [any DiagnosisRule] {
            guard var verdict = rule.diagnose(extended) else { continue }
            verdict.confidence = min(verdict.confidence, .medium)
            verdict.explanation += " (The \(added.map(\.event.layer.rawValue).joined(separator: " and ")) record\(added.count > 1 ? "s" : "") used here could not be linked to this request with certainty: \(candidatesSeen) identical record\(candidatesSeen > 1 ? "s" : "") fit.)"
            return verdict
        }
        return nil
    }
}
