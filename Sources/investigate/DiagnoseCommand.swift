import ArgumentParser
import Foundation
import InvestigateKit

/// The question's options, shared by `diagnose` and `report`.
struct DiagnosisQueryOptions: ParsableArguments {
    @Option(name: .long, help: "When the error happened, e.g. \"2025-02-06 14:32\" (in --tz).")
    var at: String

    @Option(name: .long, help: "How far either side of --at to look (e.g. 90s, 2m, 10m).")
    var window: String = "2m"

    @Option(name: .long, help: "Only this status or class (403, 4xx, 5xx).")
    var status: String?

    @Option(name: .long, help: "Only requests from this client address.")
    var ip: String?

    @Option(name: .long, help: "Only paths starting with this prefix.")
    var path: String?

    @Option(name: .long, help: "Show at most N findings in detail (a dense window starts with a summary of all; --json keeps every finding).")
    var limit: Int?

    func query(zone: ZoneSpec, zoneNote: String? = nil) throws -> DiagnosisQuery {
        guard let at = UserTime.parse(self.at, zone: zone) else {
            throw ValidationError("--at: cannot read '\(self.at)' (try \"2025-02-06 14:32\")")
        }
        guard let half = UserTime.duration(window) else { throw ValidationError("--window: cannot read '\(window)' (try 90s, 2m, 1h)") }
        var statusFilter: StatusFilter?
        if let status {
            guard let s = StatusFilter(status) else { throw ValidationError("--status: expected a code or a class like 4xx") }
            statusFilter = s
        }
        if let limit, limit < 0 { throw ValidationError("--limit: expected 0 or more") }
        var q = DiagnosisQuery(at: at, halfWindow: half, zone: zone, status: statusFilter, clientIP: ip, pathPrefix: path)
        q.zoneNote = zoneNote
        return q
    }
}

/// `investigate [diagnose] --at T PATH...`: the main job.
struct DiagnoseCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "diagnose",
        abstract: "Name which component answered each error around a moment, which caused it, and why logs are missing.",
        discussion: """
            With PATHs, ingests them first (cached by content hash) and answers from the files under them only \
            (the database may hold other investigations); the first line says which database and how many of its \
            sources. --json prints one JSON document. With --report, also writes the Markdown \
            incident report (to Reports/incident-<date>-<time>.md, or --report-file). \
            Without --tz, --at is read in the machine's local zone (TZ, else the system's), and the answer says so. \
            Exit codes: 0 answered; 1 some input could not be read; 2 nothing to answer (no input recognised, or no \
            error in the window that any layer could have sent: the answer says which and what the logs cover); \
            64 usage error (EX_USAGE); 3 database error.
            """)

    @OptionGroup var store: StoreOptions
    @OptionGroup var queryZone: QueryZoneOption
    @OptionGroup var importing: ImportArguments
    @OptionGroup var question: DiagnosisQueryOptions

    @Flag(name: .long, help: "Print the answer as one JSON document (every finding, whatever --limit says).")
    var json = false

    @Flag(name: .long, help: "Also write the Markdown incident report (default Reports/incident-<date>-<time>.md, the --at moment in --tz).")
    var report = false

    @Option(name: .customLong("report-file"), help: "Write the report to this file instead (implies --report; - for standard output).")
    var reportFile: String?

    @Argument(help: "Log files or directories to ingest first (optional when --db already holds them).")
    var paths: [String] = []

    func validate() throws {
        // Standard output holds one document: the JSON answer, or the report, not both.
        if json && reportFile == "-" { throw ValidationError("--json and --report-file - both write to standard output; give the report a file") }
    }

    func run() throws {
        let (zone, zoneNote) = try queryZone.zoneChoice()
        let asked = try question.query(zone: zone, zoneNote: zoneNote)
        let (timeline, database) = try store.timelineForQuestion(window: asked.from...asked.to, paths: paths)
        let ingested = try ingestReporting(paths, importing, into: timeline, window: asked.from...asked.to)
        var query = withInputs(asked, ingested)
        query.sources = try sourceScope(paths, ingested, timeline)
        let diagnosis = try Diagnoser(store: timeline).diagnose(query)
        let scopeLine = try answerScope(database: database, query.sources, timeline)
        if json { try writeJSON(diagnosis) } else if reportFile != "-" {
            print(scopeLine + "\n" + diagnosis.renderText(zone: zone, limit: question.limit), terminator: "")
        }
        if report || reportFile != nil {
            try writeReport(diagnosis, query: query, store: timeline, database: database, to: reportFile, scopeLine: scopeLine)
        }
        try exitStatus(for: diagnosis, ingested)
    }
}

/// What ingest found, for the answer's honesty: how many files were given and why any were skipped.
struct IngestedInputs {
    var failed = false
    var files = 0
    /// Files not read: their names' time stamps lie outside the question's window.
    var outsideWindow = 0
    var skipped: [(path: String, reason: String)] = []
    var unread: [Diagnosis.UnreadFile] = []
    var readInPart: [Diagnosis.PartlyReadFile] = []
    /// The files read (or already stored) under the PATHs, with their content hash.
    var found: [SourceScope.Found] = []
}

/// With PATHs, the answer rests on the sources under them only (the database may hold other
/// investigations); without, on the whole database.
func sourceScope(_ paths: [String], _ inputs: IngestedInputs, _ timeline: TimelineStore) throws -> SourceScope? {
    guard !paths.isEmpty else { return nil }
    return try SourceScope.resolve(timeline, paths: paths, found: inputs.found)
}

/// The first line of a human answer: which database, and how many of its sources the answer rests on.
func answerScope(database: String, _ scope: SourceScope?, _ timeline: TimelineStore) throws -> String {
    let db = Escape.terminal(database)
    if let scope {
        return "Database \(db): answering from \(scope.counted), the files under the PATHs given (`investigate sources` lists them all)."
    }
    let total = try timeline.sourceCount()
    return "Database \(db): answering from all \(total) source\(total == 1 ? "" : "s") it holds (give PATHs to answer from those files only)."
}

/// The question, told what ingest recognised (the answer names it when nothing was).
func withInputs(_ q: DiagnosisQuery, _ inputs: IngestedInputs) -> DiagnosisQuery {
    var q = q
    if inputs.files > 0 || inputs.outsideWindow > 0 {
        q.inputs = DiagnosisQuery.Inputs(files: inputs.files, skipped: inputs.skipped.map { "\($0.path): \($0.reason)" },
                                         outsideWindow: inputs.outsideWindow)
        q.inputs?.unread = inputs.unread
        q.inputs?.readInPart = inputs.readInPart
    }
    return q
}

/// 2 when there was nothing to answer, else 1 when some input could not be read, else 0.
func exitStatus(for diagnosis: Diagnosis, _ inputs: IngestedInputs) throws {
    if diagnosis.outcome == .nothingToExplain || diagnosis.outcome == .noEvidence { throw ExitStatus.nothingToAnswer }
    if inputs.failed { throw ExitStatus.inputProblem }
}

/// Ingests PATHs (if any) and reports unreadable inputs on stderr.
func ingestReporting(_ paths: [String], _ importing: ImportArguments, into timeline: TimelineStore,
                     window: ClosedRange<Int64>? = nil) throws -> IngestedInputs {
    guard !paths.isEmpty else { return IngestedInputs() }
    let outcome = try importing.ingest(paths, into: timeline, window: window)
    let problems = reportInputProblems(outcome.ingest)
    let outside = outcome.ingest.files.filter { WindowPlan.isOutsideWindow($0) }
    // The database kept in the folder of logs is not one of the inputs.
    let own = outcome.ingest.files.filter { $0.skipped == Ingester.ownDatabase }.count
    return IngestedInputs(failed: !problems.isEmpty, files: outcome.ingest.files.count - outside.count - own, outsideWindow: outside.count,
                          skipped: outcome.ingest.files.filter { ($0.status == .skipped || $0.status == .failed) && !WindowPlan.isOutsideWindow($0)
                                                                 && $0.skipped != Ingester.ownDatabase }
                              .map { ($0.path, $0.skipped ?? "not read") },
                          unread: outside.map { Diagnosis.UnreadFile(path: $0.path, reason: $0.skipped ?? "outside the window") },
                          readInPart: outcome.ingest.files.compactMap { f in
                              f.covered.map { Diagnosis.PartlyReadFile(path: f.path, from: TimeFormat.isoUTC($0.lowerBound),
                                                                       to: TimeFormat.isoUTC($0.upperBound), lines_not_stored: f.outsideLines) }
                          },
                          found: outcome.ingest.files.filter { $0.status != .skipped && $0.status != .failed }
                              .map { SourceScope.Found(path: $0.path, sha256: $0.sha256) })
}

/// Writes each input problem (failed, unrecognised, refused, read in part) to stderr, escaped; returns them.
@discardableResult
func reportInputProblems(_ summary: IngestSummary) -> [(path: String, reason: String)] {
    let problems = InputProblems.of(summary)
    for p in problems + InputProblems.staleReadings(summary) {
        FileHandle.standardError.write(Data("investigate: \(Escape.terminal(p.path)): \(Escape.terminal(p.reason))\n".utf8))
    }
    return problems
}
