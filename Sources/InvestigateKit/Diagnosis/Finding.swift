import Foundation

/// The question: an error around a moment, optionally narrowed.
public struct DiagnosisQuery: Sendable {
    public var at: Int64
    /// Half-width of the window around `at`.
    public var halfWindow: Int64
    public var zone: ZoneSpec
    public var status: StatusFilter?
    public var clientIP: String?
    public var pathPrefix: String?
    /// How the zone was chosen when the user did not give one ("the machine's local zone"), said
    /// with the answer.
    public var zoneNote: String?
    /// What the run was given to read, when it read files: an answer from no recognised input
    /// names them instead of reasoning over an empty timeline.
    public var inputs: Inputs?
    /// Answer from these sources only (the files under the PATHs given); nil: the whole database.
    public var sources: SourceScope?

    public struct Inputs: Sendable {
        public var files: Int
        /// "path: reason" for each file not read.
        public var skipped: [String]
        /// Files not read because their names' time stamps lie outside the window (`WindowPlan`).
        public var outsideWindow: Int
        /// Those files, with the reason; and the files of which only the window's records are
        /// stored (`FileResult.covered`).
        public var unread: [Diagnosis.UnreadFile] = []
        public var readInPart: [Diagnosis.PartlyReadFile] = []
        public init(files: Int, skipped: [String], outsideWindow: Int = 0) {
            self.files = files
            self.skipped = skipped
            self.outsideWindow = outsideWindow
        }
    }

    public static let defaultHalfWindow: Int64 = 120 * 1_000_000

    public init(at: Int64, halfWindow: Int64 = DiagnosisQuery.defaultHalfWindow, zone: ZoneSpec = .utc,
                status: StatusFilter? = nil, clientIP: String? = nil, pathPrefix: String? = nil) {
        self.at = at
        self.halfWindow = halfWindow
        self.zone = zone
        self.status = status
        self.clientIP = clientIP
        self.pathPrefix = pathPrefix
    }

    public var from: Int64 { at - halfWindow }
    public var to: Int64 { at + halfWindow }
}

public enum Confidence: String, Sendable, Encodable, Comparable {
    case low, medium, high

    private var rank: Int { self == .low ? 0 : self == .medium ? 1 : 2 }
    public static func < (a: Confidence, b: Confidence) -> Bool { a.rank < b.rank }
}

/// A log line offered as proof, with where it came from.
public struct EvidenceLine: Sendable, Encodable, Equatable {
    public var layer: String
    public var source: String
    public var line: Int
    public var time: String?
    public var text: String
    /// µs UTC, for rendering in the user's zone (not encoded).
    public var micros: Int64?

    enum CodingKeys: String, CodingKey { case layer, source, line, time, text }
}

/// A layer with no record of the request, and why that is expected or suspicious.
public struct Absence: Sendable, Encodable, Equatable {
    public var layer: String
    public var why: String
    /// True when the absence is what this failure leaves behind; false when it is suspicious or unknown.
    public var expected: Bool
}

/// One answer: who sent the error, who caused it, why, and the proof.
public struct Finding: Sendable, Encodable {
    public var status: Int?
    public var time: String?
    public var client_ip: String?
    public var method: String?
    public var path: String?
    public var responder: String
    public var cause: String
    public var confidence: Confidence
    public var explanation: String
    public var evidence: [EvidenceLine]
    public var absent: [Absence]
    public var next_steps: [String]
    /// The rule that decided (docs/diagnosis.md).
    public var rule: String
    /// How many requests this finding groups (same client, status and reason), their span and paths.
    public var count: Int
    public var first: String?
    public var last: String?
    public var paths: [String]
    /// µs UTC of the representative request, for ordering and display (not encoded).
    public var micros: Int64?
    /// The rule's short tag for the reason (the WAF rule id, `apigw-missing-token`, …): findings
    /// with the same responder, cause and reason are one line of a dense window's summary.
    public var reason: String = ""
    /// What the cause layer depended on that failed ("database"): the app raised the error, its
    /// database made it.
    public var dependency: String?

    /// `cause` when the evidence cannot tell which layer caused the response.
    public static let unknownCause = "unknown"

    /// "caused by app", or "cause unknown": for sentences.
    public var causePhrase: String {
        cause == Self.unknownCause ? "cause unknown" : "caused by \(cause)" + (dependency.map { " (its \($0))" } ?? "")
    }

    enum CodingKeys: String, CodingKey {
        case status, time, client_ip, method, path, responder, cause, confidence, explanation, evidence, absent, next_steps
        case rule, reason, count, first, last, paths, dependency
    }
}

/// What each layer's logs cover.
public struct LayerCoverage: Sendable, Encodable, Equatable {
    public var layer: String
    public var first: String?
    public var last: String?
    public var events: Int
    /// Events inside the query window.
    public var in_window: Int
    public var rejected: Int
    public var firstMicros: Int64?
    public var lastMicros: Int64?

    enum CodingKeys: String, CodingKey { case layer, first, last, events, in_window, rejected }

    /// Whether the logs of this layer span the given moment at all.
    /// Whether the logs span the moment, give or take a minute: a log whose last line is a few
    /// milliseconds before the request (sparse logs: warnings only) is no gap at that moment.
    public func covers(_ t: Int64) -> Bool {
        guard let a = firstMicros, let b = lastMicros else { return false }
        return a - Self.margin <= t && t <= b + Self.margin
    }

    public static let margin: Int64 = 60_000_000
}

/// The whole answer of `investigate --at`.
public struct Diagnosis: Sendable, Encodable {
    public struct QueryEcho: Sendable, Encodable {
        public var at: String
        public var from: String
        public var to: String
        public var tz: String
        public var status: String?
        public var ip: String?
        public var path: String?
        /// Set when --tz was not given: which zone the question was read in, and why.
        public var tz_source: String?
    }

    public var query: QueryEcho
    public var coverage: [LayerCoverage]
    public var findings: [Finding]
    /// Facts about the stack that frame every finding (what sits in front, clock offsets).
    public var notes: [String]
    /// What kind of answer this is: from error records, inferred from absence, or none.
    public var outcome: Outcome = .answered
    /// The one-line answer when there is no finding ("no 4xx/5xx between … and …").
    public var headline: String?

    public enum Outcome: String, Sendable, Encodable {
        /// Error records in the window, each judged by a rule.
        case answered
        /// No error record; the layer that answered is inferred from what the logs cannot show.
        case inferred
        /// The logs cover the question but hold no error it asks about, and no layer could have
        /// answered without a trace: nothing to explain (exit 2).
        case nothingToExplain = "nothing-to-explain"
        /// No event at all is stored (no input recognised): no evidence to answer from (exit 2).
        case noEvidence = "no-evidence"
    }

    /// Metrics and findings beside the logs (docs/diagnosis.md, "Signals beside the logs").
    public var signals: [ContextSignal] = []

    /// A file the question did not read: its name's time stamp (or its rotation order) puts it
    /// outside the window.
    public struct UnreadFile: Sendable, Encodable, Equatable {
        public var path: String
        public var reason: String
        public init(path: String, reason: String) { self.path = path; self.reason = reason }
    }

    /// A file read for the window only: its records from `from` to `to` are stored.
    public struct PartlyReadFile: Sendable, Encodable, Equatable {
        public var path: String
        public var from: String
        public var to: String
        public var lines_not_stored: Int
        public init(path: String, from: String, to: String, lines_not_stored: Int) {
            self.path = path; self.from = from; self.to = to; self.lines_not_stored = lines_not_stored
        }
    }
    public var unread: [UnreadFile] = []
    public var readInPart: [PartlyReadFile] = []

    enum CodingKeys: String, CodingKey { case outcome, headline, query, coverage, findings, notes, signals, unread, read_in_part }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(outcome, forKey: .outcome)
        try c.encode(headline, forKey: .headline)
        try c.encode(query, forKey: .query)
        try c.encode(coverage, forKey: .coverage)
        try c.encode(findings, forKey: .findings)
        try c.encode(notes, forKey: .notes)
        if !signals.isEmpty { try c.encode(signals, forKey: .signals) }
        if !unread.isEmpty { try c.encode(unread, forKey: .unread) }
        if !readInPart.isEmpty { try c.encode(readInPart, forKey: .read_in_part) }
    }
}
