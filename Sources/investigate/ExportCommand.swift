import ArgumentParser
import Foundation
import InvestigateKit

extension ExportFormat: ExpressibleByArgument {}

/// `investigate export --format timesketch|ecs|csv`: the timeline's records for other tools.
struct ExportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Write the timeline's records in time order as Timesketch JSONL, ECS NDJSON or CSV (see docs/export.md).",
        discussion: """
            The output is JSON Lines (timesketch, ecs: one object per line) or CSV with a header row, never one \
            JSON document. With PATHs, ingests them first (cached by content hash). Records are written in time \
            order, then by id; without a window, records with no time come last (Timesketch cannot take them: they \
            are left out and counted on stderr). --rejected adds the lines no importer could take, dated by the \
            nearest parsed record of their file. A summary goes to stderr. \
            Exit codes: 0 written; 1 some input could not be read, or the output could not be written; \
            64 usage error (EX_USAGE); 3 database error.
            """)

    @OptionGroup var store: StoreOptions
    @OptionGroup var queryZone: QueryZoneOption
    @OptionGroup var importing: ExportInputArguments
    @OptionGroup var windowOptions: WindowOptions

    @Option(name: .long, help: "timesketch (JSONL), ecs (NDJSON) or csv.")
    var format: ExportFormat

    @Option(name: .long, help: "Only records of this layer (waf, alb, apigateway, nginx, gunicorn, app, lambda, system).")
    var layer: String?

    @Option(name: .long, help: "Only records from or via this client address (rejected lines name none and are left out).")
    var ip: String?

    @Flag(name: .long, help: "Also the lines no importer could take, with the reason.")
    var rejected = false

    @Flag(name: .long, help: "Attach the diagnosis's verdict (responder, cause, confidence, rule) to the records of each failed request (slower: diagnoses the whole range).")
    var diagnose = false

    @Flag(name: .long, help: "ecs: precede each document with a _bulk create action (with a stable _id), ready for POST <index>/_bulk.")
    var bulk = false

    @Option(name: [.short, .customLong("output")], help: "Output file (- for standard output, the default).")
    var output: String = "-"

    @Argument(help: "Log files or directories to ingest first (optional when --db already holds them).")
    var paths: [String] = []

    func validate() throws {
        if bulk && format != .ecs { throw ValidationError("--bulk applies to --format ecs only") }
    }

    func run() throws {
        let zone = try queryZone.zoneSpec()
        var query = ExportQuery()
        if let window = try windowOptions.resolve(zone: zone) {
            query.from = window.from
            query.to = window.to
        }
        if let layer {
            guard let l = Layer(rawValue: layer) else { throw ValidationError("--layer: unknown layer '\(layer)'") }
            query.layer = l
        }
        query.clientIP = ip
        query.includeRejected = rejected
        query.diagnose = diagnose
        query.zone = zone
        let timeline = try openStore(store.db)
        let ingested = try ingestReporting(paths, try importing.arguments(), into: timeline)
        query.sources = try sourceScope(paths, ingested, timeline)
        let scopeLine = try answerScope(database: store.db, query.sources, timeline)

        let toStdout = output == "-"
        let partial = output + ".partial"
        let handle: FileHandle
        if toStdout {
            handle = FileHandle.standardOutput
        } else {
            guard FileManager.default.createFile(atPath: partial, contents: nil), let h = FileHandle(forWritingAtPath: partial) else {
                FileHandle.standardError.write(Data("investigate: cannot write \(Escape.terminal(partial))\n".utf8))
                throw ExitStatus.inputProblem
            }
            handle = h
        }
        // The bar shares the terminal with the records only when both go to it: then it stays off.
        let bar = ProgressBar(enabled: isatty(2) == 1 && !(toStdout && isatty(1) == 1))
        let summary: ExportSummary
        do {
            defer { bar.clear() }
            summary = try Exporter.run(timeline, query, writer: format.writer(bulk: bulk),
                                       progress: { bar.update(done: $0, total: $1, label: "records") }) { bytes in
                try handle.write(contentsOf: bytes)
            }
            if !toStdout {
                try handle.close()
                if FileManager.default.fileExists(atPath: output) { try FileManager.default.removeItem(atPath: output) }
                try FileManager.default.moveItem(atPath: partial, toPath: output)
            }
        } catch where TimelineStore.isDatabaseError(error) {
            if !toStdout { try? FileManager.default.removeItem(atPath: partial) }
            FileHandle.standardError.write(Data("investigate: export failed reading the timeline: \(Escape.terminal(String(describing: error)))\n".utf8))
            throw ExitStatus.databaseError
        } catch {
            if !toStdout { try? FileManager.default.removeItem(atPath: partial) }
            FileHandle.standardError.write(Data("investigate: cannot write \(Escape.terminal(output)): \(Escape.terminal(error.localizedDescription))\n".utf8))
            throw ExitStatus.inputProblem
        }
        var lines = ["investigate: " + scopeLine, "investigate: exported \(summary.events - (format == .timesketch ? summary.leftOut : 0) + summary.rejected) records (\(summary.events) events, \(summary.rejected) rejected lines) from \(Escape.terminal(store.db)) as \(format.rawValue) to \(toStdout ? "standard output" : Escape.terminal(output))"]
        if summary.leftOut > 0 {
            lines.append("investigate: \(summary.leftOut) records have no time and were left out: Timesketch requires `datetime` (`--format csv` or `ecs` keeps them, last)")
        } else if summary.timeless > 0 {
            lines.append("investigate: \(summary.timeless) records have no time; they are written last, without one")
        }
        if summary.rejectedNotAttributable > 0 {
            lines.append("investigate: \(summary.rejectedNotAttributable) rejected lines left out: --ip selects by client, and a rejected line names none")
        }
        FileHandle.standardError.write(Data((lines.joined(separator: "\n") + "\n").utf8))
        if ingested.failed { throw ExitStatus.inputProblem }
    }
}

/// `ingest`'s options for the PATHs `export` reads first. Its `--format` names the output, so the
/// importer to force is `--input-format` here.
struct ExportInputArguments: ParsableArguments {
    @Option(name: .customLong("host-tz"), help: "Zone of zone-less host log stamps (syslog, nginx error log) when the logs do not tell it.")
    var hostTz: String?

    @Option(name: .customLong("app-tz"), help: "Zone of the application's own zone-less timestamps.")
    var appTz: String?

    @Option(name: .long, help: "Year of year-less syslog timestamps.")
    var year: Int?

    @Option(name: .customLong("input-format"), help: "Force this importer for every file read (see `investigate formats`).")
    var inputFormat: String?

    @Option(name: .customLong("nginx-log-format"), help: "An nginx log_format definition to read access logs with.")
    var nginxLogFormat: String?

    @Option(name: .customLong("app-log-format"), help: "A Python logging format string for application logs.")
    var appLogFormat: String?

    /// The same options as every other command takes them.
    func arguments() throws -> ImportArguments {
        var argv: [String] = []
        for (flag, value) in [("--host-tz", hostTz), ("--app-tz", appTz), ("--year", year.map(String.init)), ("--format", inputFormat),
                              ("--nginx-log-format", nginxLogFormat), ("--app-log-format", appLogFormat)] {
            if let value { argv += [flag, value] }
        }
        return try ImportArguments.parse(argv)
    }
}
