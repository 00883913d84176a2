/// The fallback: the innermost layer that logged the status the client got answered it.
public struct InnermostRecordRule: DiagnosisRule {
    public init() {}
    public let id = "innermost-record"
    public let title = "The innermost layer that logged the status (no specific rule applied)"
    public let doc = RuleDoc(
        fires: "No specific rule explains the error.",
        evidence: "The access records of the request.",
        example: "404 seen at nginx with no app log given: nginx is the innermost layer known to have sent it; low confidence.")

    public func diagnose(_ c: RequestCase) -> Verdict? {
        guard let status = c.clientStatus else { return nil }
        let withStatus = c.records.filter { $0.event.kind == .access && $0.event.status == status }.sorted { $0.event.layer < $1.event.layer }
        guard let innermost = withStatus.last else { return nil }
        let layer = innermost.event.layer
        let deeper = c.path.filter { $0 > layer && $0 != .gunicorn }
        let missingData = deeper.filter { !c.hasData($0) }
        let confidence: Confidence = missingData.isEmpty ? .medium : .low
        var text = "\(layer.rawValue) is the innermost layer that logged \(status) for this request, so it sent the response as far as these logs show."
        if !missingData.isEmpty {
            text += " No logs of \(missingData.map(\.rawValue).joined(separator: ", ")) were given, so a layer behind it may have produced the status."
        }
        return Verdict(responder: layer, cause: StatusMeaning.cause(of: status, answeredBy: layer), confidence: confidence, explanation: text, evidence: withStatus,
                       nextSteps: missingData.map { "Ingest the \($0.rawValue) logs for this time to see whether it produced the status." },
                       expectedAbsent: [:], reasonKey: "innermost-\(layer.rawValue)-\(status)")
    }
}
