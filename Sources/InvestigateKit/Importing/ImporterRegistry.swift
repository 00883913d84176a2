import Foundation

/// The importers a run knows, and content-based format detection.
public struct ImporterRegistry: Sendable {
    public let importers: [any Importer]

    public init(_ importers: [any Importer]) {
        self.importers = importers
    }

    /// Every format the tool reads. One line per importer; keep the groups apart so parallel work
    /// on different layers does not touch the same lines.
    public static let standard = ImporterRegistry([
        // nginx
        NginxAccessImporter(),
        NginxErrorImporter(),

        // syslog, journald, gunicorn, Flask/Python application logs
        SyslogImporter(),
        GunicornErrorImporter(),
        GunicornAccessImporter(),
        FlaskImporter(),
        PythonJSONLogImporter(),

        // AWS: WAF, ALB, API Gateway, Lambda, CloudWatch Logs wrappers
        AWSWAFImporter(),
        AWSALBImporter(),
        AWSClassicELBImporter(),
        APIGatewayAccessImporter(),
        APIGatewayExecutionImporter(),
        AWSLambdaImporter(),
        CloudWatchExportImporter(),
        CloudWatchJSONImporter(),
        CloudWatchTailImporter(),
        CloudWatchInsightsImporter(),
        CloudWatchSubscriptionImporter(),

        // AWS: context beside the logs (metrics, security findings)
        CloudWatchMetricsImporter(),
        GuardDutyFindingsImporter(),
        InspectorFindingsImporter(),

        // AWS: in front of the stack (CloudFront, NLB), ALB connection logs, CloudTrail
        AWSCloudFrontImporter(),
        AWSNLBImporter(),
        ALBConnectionLogImporter(),
        AWSCloudTrailImporter(),

    ])

    public func importer(id: String) -> (any Importer)? {
        importers.first { $0.id == id }
    }

    public var ids: [String] { importers.map(\.id) }

    /// The smallest share of sample lines an importer must accept to be chosen.
    public static let detectionThreshold = 0.5

    /// Picks the importer whose `recognize` scores highest on the leading lines (a share of them,
    /// 0…1); ties go to the one listed first. Returns nil when none reaches the threshold, with each
    /// candidate's score. With `stopAtCertain`, scoring stops at the first importer that reads every line:
    /// no later one can beat it, and the later recognisers (API Gateway, Lambda, CloudWatch) scan
    /// long JSON lines through Foundation, which cost a sixth of ingesting many small WAF objects.
    /// The scores are then partial, which callers that report ties must not ask for.
    public func detect(_ lines: [String], fileName: String, stopAtCertain: Bool = false) -> Detection {
        // Blank means only whitespace. `allSatisfy` stops at the first visible character, where
        // `trimmingCharacters` bridged whole multi-KB JSON lines through Foundation (58 µs each,
        // 2% of ingesting a WAF + ALB corpus of small objects).
        let sample = lines.filter { !$0.unicodeScalars.allSatisfy(CharacterSet.whitespaces.contains) }
        guard !sample.isEmpty else { return Detection(importer: nil, scores: []) }
        var scores: [(id: String, score: Double)] = []
        var best: (any Importer)?
        var bestScore = 0.0
        for importer in importers {
            let score = importer.recognize(sample, fileName: fileName)
            scores.append((importer.id, score))
            if score > bestScore {
                best = importer
                bestScore = score
            }
            if stopAtCertain && bestScore >= 1 { break }
        }
        guard bestScore >= Self.detectionThreshold else { return Detection(importer: nil, scores: scores) }
        return Detection(importer: best, scores: scores)
    }

    public struct Detection {
        public var importer: (any Importer)?
        public var scores: [(id: String, score: Double)]
        /// The best near-miss, for the "skipped" reason.
        public var closest: (id: String, score: Double)? {
            scores.filter { $0.score > 0 }.max { $0.score < $1.score }
        }
    }
}
