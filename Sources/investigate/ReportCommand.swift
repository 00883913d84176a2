import ArgumentParser
import Foundation
import InvestigateKit

/// `investigate report --at T PATH...`: the Markdown incident report on its own.
struct ReportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Write the Markdown incident report for the errors around a moment (see docs/reports.md).",
        discussion: """
            Takes the same question as `investigate diagnose`; with PATHs, answers from the files under them only. Writes Reports/incident-<date>-<time>.md \
            (the --at moment in --tz), creating the folder, unless --output says otherwise (- for standard \
            output). Exit codes: 0 written; 1 some input could not be read; 2 written, but nothing to answer (no input \
            recognised, or no error in the window); 64 usage error (EX_USAGE); 3 database error.
            """)

    @OptionGroup var store: StoreOptions
    @OptionGroup var queryZone: QueryZoneOption
    @OptionGroup var importing: ImportArguments
    @OptionGroup var question: DiagnosisQueryOptions

    @Option(name: [.short, .long], help: "Report file (- for standard output).")
    var output: String?

    @Option(name: .customLong("generated-at"), help: .hidden)
    var generatedAt: String?

    @Argument(help: "Log files or directories to ingest first (optional when --db already holds them).")
    var paths: [String] = []

    func run() throws {
        let (zone, zoneNote) = try queryZone.zoneChoice()
        _ = zone
        let query = try question.query(zone: zone, zoneNote: zoneNote)
        var fixedTime: Int64?
        if let generatedAt {
            guard let t = UserTime.parse(generatedAt, zone: .utc) else { throw ValidationError("--generated-at: cannot read '\(generatedAt)'") }
            fixedTime = t
        }
        let (timeline, database) = try store.timelineForQuestion(window: query.from...query.to, paths: paths)
        let ingested = try ingestReporting(paths, importing, into: timeline, window: query.from...query.to)
        var scoped = withInputs(query, ingested)
        scoped.sources = try sourceScope(paths, ingested, timeline)
        let diagnosis = try Diagnoser(store: timeline).diagnose(scoped)
        try writeReport(diagnosis, query: scoped, store: timeline, database: database, to: output, generatedAt: fixedTime,
                        scopeLine: try answerScope(database: database, scoped.sources, timeline))
        try exitStatus(for: diagnosis, ingested)
    }
}

/// Renders the report and writes it to `file` (nil: the default path; `-`: standard output).
func writeReport(_ diagnosis: Diagnosis, query: DiagnosisQuery, store: TimelineStore, database: String, to file: String?,
                 generatedAt: Int64? = nil, scopeLine: String? = nil) throws {
    let now = generatedAt ?? Int64(Date().timeIntervalSince1970 * 1_000_000)
    let cwd = FileManager.default.currentDirectoryPath
    // The report's Database row says how many of its sources the answer rests on.
    let label = query.sources.map { "\(database) (\($0.counted): the files under the PATHs given)" } ?? database
    var options = ReportOptions(generatedAt: now, commandLine: shellCommandLine(CommandLine.arguments), pathBase: cwd, databaseLabel: label)
    options.pathBase = cwd
    let text = try ReportBuilder(store: store).build(diagnosis, query: query, options: options)
    if file == "-" {
        FileHandle.standardOutput.write(Data(text.utf8))
        return
    }
    let path = file ?? defaultReportPath(query)
    let url = URL(fileURLWithPath: path)
    do {
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try Data(text.utf8).write(to: url, options: .atomic)
    } catch {
        FileHandle.standardError.write(Data("investigate: cannot write report \(path): \(error.localizedDescription)\n".utf8))
        throw ExitStatus.inputProblem
    }
    let scope = scopeLine.map { "investigate: " + $0 + "\n" } ?? ""
    FileHandle.standardError.write(Data("\(scope)investigate: report written to \(Escape.terminal(path))\n".utf8))
}

/// `Reports/incident-2025-02-06-1432.md`: the question's moment in its zone, so the name says which incident.
func defaultReportPath(_ q: DiagnosisQuery) -> String {
    let shown = TimeFormat.display(q.at, zone: q.zone, millis: false) // 2025-02-06 14:32:00 +0900
    let parts = shown.split(separator: " ")
    let date = parts.first.map(String.init) ?? "unknown"
    let time = parts.count > 1 ? parts[1].split(separator: ":").prefix(2).joined() : "0000"
    return "Reports/incident-\(date)-\(time).md"
}

/// The command line as a shell would need it typed: arguments with spaces or specials single-quoted.
func shellCommandLine(_ arguments: [String]) -> String {
    // A ClickHouse URL's password never reaches a report.
    var args = arguments.map { a -> String in
        if ClickHouseURL.isClickHouse(a), let url = try? ClickHouseURL(a, environment: [:]) { return url.redacted }
        if let eq = a.firstIndex(of: "="), ClickHouseURL.isClickHouse(String(a[a.index(after: eq)...])),
           let url = try? ClickHouseURL(String(a[a.index(after: eq)...]), environment: [:]) {
            return String(a[...eq]) + url.redacted
        }
        return a
    }
    if !args.isEmpty { args[0] = "investigate" }
    return args.map { a -> String in
        let plain = !a.isEmpty && a.unicodeScalars.allSatisfy { CharacterSet.alphanumerics.contains($0) || "-_./:=@+,".unicodeScalars.contains($0) }
        return plain ? a : "'" + a.replacingOccurrences(of: "'", with: "'\\''") + "'"
    }.joined(separator: " ")
}
