import ArgumentParser
import Foundation
import InvestigateKit

/// `investigate`: offline forensic investigator for web stacks. This file only parses arguments,
/// does I/O and maps outcomes to exit codes; everything else lives in InvestigateKit.
struct Investigate: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "investigate",
        abstract: "Find which layer of a web stack answered an error, which caused it, and why logs are missing.",
        discussion: """
            --json prints one JSON document on standard output, except for `timeline` and `replay`, \
            whose --json is JSON Lines (one object per line), and `export`, whose output is JSON Lines or CSV. \
            Exit codes: 0 success; 1 some input could not be read (the rest was processed); \
            2 nothing to answer (no input recognised, or no error in the window); 64 usage error (EX_USAGE); 3 database error.
            """,
        version: InvestigateKit.version,
        subcommands: [DiagnoseCommand.self, Ingest.self, TimelineCommand.self, ReportCommand.self, Replay.self, ExportCommand.self, SourcesCommand.self, Formats.self, Rules.self, ScoreCommand.self],
        defaultSubcommand: DiagnoseCommand.self
    )
}

/// The question's and the display's zone (`--tz`), for commands that answer questions.
struct QueryZoneOption: ParsableArguments {
    @Option(name: .long, help: "Zone of --at/--from/--to and of the display (e.g. UTC, +0900, Asia/Tokyo). Log stamps keep their own zones.")
    var tz: String?

    func zoneSpec() throws -> ZoneSpec { try zoneChoice().zone }

    /// The zone of the question and, when the user gave none, why this one: the machine's local
    /// zone (`TZ`, else the system's), as a person typing "14:32" means their own clock.
    func zoneChoice(environment: [String: String] = ProcessInfo.processInfo.environment) throws -> (zone: ZoneSpec, note: String?) {
        if let given = try zone(tz, "--tz") { return (given, nil) }
        if let tzVariable = environment["TZ"]?.trimmingCharacters(in: CharacterSet(charactersIn: ": ")), !tzVariable.isEmpty,
           let fromEnvironment = ZoneSpec(tzVariable) {
            return (fromEnvironment, "\(fromEnvironment), the machine's local zone (TZ=\(tzVariable)); --tz ZONE reads the question in another")
        }
        let system = ZoneSpec.system
        return (system, "\(system), the machine's local zone; --tz ZONE reads the question in another")
    }
}

/// Options shared by commands that read and write the timeline.
struct StoreOptions: ParsableArguments {
    @Option(name: .long, help: "Timeline database file.")
    var db: String = "investigate.db"

    @Option(name: .long, help: ArgumentHelp("""
        A shared timeline on ClickHouse, clickhouse://[USER@]HOST:PORT/DATABASE (HTTP port; the password from \
        CLICKHOUSE_PASSWORD, the user from the URL or CLICKHOUSE_USER). `ingest` stores into it; questions fetch \
        their window into a local working set and answer from it, kept for the same window while ClickHouse holds \
        the same files for it (INVESTIGATE_CACHE_DIR=off: never kept; docs/clickhouse.md).
        """, valueName: "url"))
    var store: String?

    /// The ClickHouse store named by --store, if any.
    func clickHouse() throws -> ClickHouseURL? {
        guard let store else { return nil }
        do { return try ClickHouseURL(store) } catch { throw ValidationError(String(describing: error)) }
    }

    /// What a question reads: the --db file, or with --store the window fetched from ClickHouse
    /// into a working set: temporary (deleted when the command ends), or kept for the same window
    /// and reused while ClickHouse holds the same files for it (`WorkingSetCache`). Returns the timeline and the
    /// name the answer shows for it (never a password).
    func timelineForQuestion(window: ClosedRange<Int64>?, paths: [String]) throws -> (TimelineStore, String) {
        guard let url = try clickHouse() else { return (try openStore(db), db) }
        if !paths.isEmpty {
            throw ValidationError("--store answers from what ClickHouse holds: store the files first with `investigate ingest --store URL PATH…`")
        }
        let client = ClickHouseClient(url)
        do {
            let plan = try ClickHouseWindow.plan(client, range: window)
            // A window asked before, with the same files committed in ClickHouse: answer from the
            // working set fetched then (`WorkingSetCache`). Not for `replay` of everything.
            if window != nil, let cache = WorkingSetCache.standard(), cache.prepare() {
                let path = cache.path(for: plan, client: client)
                if FileManager.default.fileExists(atPath: path) {
                    cache.touch(path)
                    let timeline = try openStore(path)
                    let events = try timeline.read { try Int.fetchOne($0, sql: "SELECT count(*) FROM event") ?? 0 }
                    FileHandle.standardError.write(Data("investigate: \(events) events of \(plan.files) files from \(url.redacted), unchanged there since this window was fetched: answering from the working set kept then (INVESTIGATE_CACHE_DIR=off fetches every time)\n".utf8))
                    return (timeline, url.redacted)
                }
                let partial = cache.temporaryPath()
                WorkingSet.register(partial)
                let fetched = try fetch(client, plan, into: partial)
                try cache.publish(partial, as: path)
                cache.prune()
                FileHandle.standardError.write(Data("investigate: fetched \(fetched.events) events of \(fetched.sources) files from \(url.redacted) into a working set (kept for the same window: \(Escape.terminal(cache.directory)))\n".utf8))
                return (try openStore(path), url.redacted)
            }
            let file = WorkingSet.newPath()
            let timeline = try openStore(file)
            let fetched = try ClickHouseWindow.fetch(client, plan, into: timeline)
            FileHandle.standardError.write(Data("investigate: fetched \(fetched.events) events of \(fetched.sources) files from \(url.redacted) into a working set\n".utf8))
            return (timeline, url.redacted)
        } catch let error as ClickHouseError {
            FileHandle.standardError.write(Data("investigate: \(Escape.terminal(error.message))\n".utf8))
            throw ExitStatus.databaseError
        }
    }

    /// Fetches into a new file and closes it (to be renamed into the cache).
    private func fetch(_ client: ClickHouseClient, _ plan: ClickHouseWindow.Plan, into path: String) throws -> ClickHouseWindow.Fetched {
        let timeline = try openStore(path)
        return try ClickHouseWindow.fetch(client, plan, into: timeline)
    }
}

/// The temporary SQLite files questions on a ClickHouse store answer from, removed at exit.
enum WorkingSet {
    nonisolated(unsafe) private static var paths: [String] = []

    static func newPath() -> String {
        let path = (NSTemporaryDirectory() as NSString).appendingPathComponent("investigate-working-set-\(getpid())-\(paths.count)-\(UUID().uuidString).db")
        paths.append(path)
        return path
    }

    /// A file to remove at exit if it is still there (a partial cache entry of a failed fetch).
    static func register(_ path: String) { paths.append(path) }

    static func removeAll() {
        for p in paths { for suffix in ["", "-journal", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: p + suffix) } }
        paths = []
    }
}

/// Options of commands that read logs. The zone of zone-less log stamps is `--host-tz`; `ingest`
/// also takes it as `--tz`, while the query commands keep `--tz` for the question and the display
/// (the logs' zone and the asker's zone are different things).
struct ImportArguments: ParsableArguments {
    @Option(name: .customLong("host-tz"), help: "Zone of zone-less host log stamps (syslog, nginx error log) when the logs do not tell it.")
    var hostTz: String?

    @Option(name: .customLong("app-tz"), help: "Zone of the application's own zone-less timestamps.")
    var appTz: String?

    @Option(name: .long, help: "Year of year-less syslog timestamps.")
    var year: Int?

    @Option(name: .long, help: "Force this importer for every file (see `investigate formats`).")
    var format: String?

    @Option(name: .customLong("nginx-log-format"), help: "An nginx log_format definition to read access logs with.")
    var nginxLogFormat: String?

    @Option(name: .customLong("app-log-format"), help: "A Python logging format string for application logs.")
    var appLogFormat: String?

    func importOptions() throws -> ImportOptions {
        // A bad log_format is the user's typo: say so before any file is read.
        if let definition = nginxLogFormat {
            do { _ = try NginxLogFormat(definition: definition) } catch { throw ValidationError("\(error)") }
        }
        if let year, !(EventTime.firstYear...EventTime.lastYear).contains(year) {
            throw ValidationError("--year: \(year) is outside the accepted years \(EventTime.firstYear) to \(EventTime.lastYear)")
        }
        return ImportOptions(timeZone: try zone(hostZoneOverride ?? hostTz, hostZoneOverride != nil ? "--tz" : "--host-tz"),
                             appTimeZone: try zone(appTz, "--app-tz"), year: year,
                             nginxLogFormat: nginxLogFormat, appLogFormat: appLogFormat)
    }

    /// Set by `ingest`, whose `--tz` is the host zone too.
    var hostZoneOverride: String?

    /// Ingests and correlates, with a progress bar on a terminal; usage problems become exit 2.
    /// `window`: the span a question needs; files whose names' stamps lie outside it are not read.
    func ingest(_ paths: [String], into store: TimelineStore, window: ClosedRange<Int64>? = nil) throws -> TimelineUpdate.Outcome {
        let bar = ProgressBar()
        defer { bar.clear() }
        do {
            var options = try importOptions()
            options.window = window
            return try TimelineUpdate.run(store: store, paths: paths, options: options, format: format, progress: bar.update)
        } catch let error as ImporterError {
            throw ValidationError(error.description)
        } catch where TimelineStore.isDatabaseError(error) && !TimelineStore.isLockedError(error) {
            // A full disk or an I/O error while storing: not an input problem (exit 1), and the
            // open group of files was rolled back whole.
            FileHandle.standardError.write(Data("investigate: database error: \(Escape.terminal(String(describing: error)))\n".utf8))
            throw ExitStatus.databaseError
        }
    }
}

extension ImportArguments {
    /// `ingest --store clickhouse://…`: the same importers, into ClickHouse. A ClickHouse failure
    /// that stops the whole run (unreachable before any file, a wrong password) is the database
    /// status (3); a file that could not be stored is reported with the others (status 1).
    func ingest(_ paths: [String], into url: ClickHouseURL) throws -> IngestSummary {
        let bar = ProgressBar()
        defer { bar.clear() }
        do {
            let options = try importOptions()
            let registry = try ImporterRegistry.standard.withNginxLogFormat(options.nginxLogFormat)
            let ingester = ClickHouseIngester(client: ClickHouseClient(url), registry: registry, options: options)
            ingester.formatOverride = format
            ingester.progress = bar.update
            return try ingester.ingest(paths: paths)
        } catch let error as ImporterError {
            throw ValidationError(error.description)
        } catch let error as ClickHouseError {
            bar.clear()
            FileHandle.standardError.write(Data("investigate: \(Escape.terminal(error.message))\n".utf8))
            throw ExitStatus.databaseError
        }
    }
}

func zone(_ text: String?, _ flag: String) throws -> ZoneSpec? {
    guard let text else { return nil }
    guard let zone = ZoneSpec(text) else { throw ValidationError("\(flag): unknown time zone '\(text)'") }
    return zone
}

enum ExitStatus {
    static let inputProblem = ExitCode(1)
    /// Nothing to answer: no input was recognised, or the window holds no error the question asks
    /// about and no layer could have answered it unseen.
    static let nothingToAnswer = ExitCode(2)
    static let databaseError = ExitCode(3)
}

func openStore(_ path: String) throws -> TimelineStore {
    let shown = Escape.terminal(path)
    do {
        let once = OnceFlag()
        return try TimelineStore(path: path, onUpgrade: {
            FileHandle.standardError.write(Data("investigate: converting \(shown) to this version's schema (once; about 7 s a million events)…\n".utf8))
        }) {
            guard once.first() else { return }
            FileHandle.standardError.write(Data("investigate: \(shown) is locked by another investigate process (an ingest?); waiting up to \(Int(TimelineStore.defaultLockWait)) s for it…\n".utf8))
        }
    } catch {
        FileHandle.standardError.write(Data("investigate: cannot open database \(shown): \(Escape.terminal(String(describing: error)))\n".utf8))
        throw ExitStatus.databaseError
    }
}

func writeJSON<T: Encodable>(_ value: T) throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    FileHandle.standardOutput.write(try encoder.encode(value))
    FileHandle.standardOutput.write(Data("\n".utf8))
}

struct Ingest: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Read log files and directories (plain, rotated, gzip) into the timeline database.")

    @OptionGroup var store: StoreOptions

    @Option(name: .long, help: "Zone of zone-less host timestamps (syslog, nginx error log) and of the display (e.g. UTC, +0900, Asia/Tokyo).")
    var tz: String?

    @OptionGroup var importing: ImportArguments

    @Flag(name: .long, help: "Print the result as one JSON document.")
    var json = false

    @Argument(help: "Files or directories to read (directories are walked recursively).")
    var paths: [String]

    func run() throws {
        var importing = self.importing
        importing.hostZoneOverride = tz
        let summary: IngestSummary
        if let url = try store.clickHouse() {
            summary = try importing.ingest(paths, into: url)
        } else {
            let timeline = try openStore(store.db)
            summary = try importing.ingest(paths, into: timeline).ingest
        }
        if json { try writeJSON(summary) } else {
            print(summary.renderTable(zone: try zone(tz, "--tz") ?? .utc), terminator: "")
        }
        if !reportInputProblems(summary).isEmpty { throw ExitStatus.inputProblem }
    }
}

struct Formats: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List every log format the tool reads.")

    @Flag(name: .long, help: "Print the list as one JSON document.")
    var json = false

    @Flag(name: .long, help: "Print docs/formats.md (the format reference) instead.")
    var markdown = false

    func validate() throws {
        if json && markdown { throw ValidationError("--json or --markdown, not both") }
    }

    func run() throws {
        let registry = ImporterRegistry.standard
        if markdown { print(FormatCatalog.markdown(registry), terminator: "") }
        else if json { try writeJSON(FormatCatalog.entries(registry)) }
        else { print(FormatCatalog.text(registry), terminator: "") }
    }
}

/// `investigate rules --markdown`: docs/diagnosis.md, from the rules' own documentation.
struct Rules: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print the diagnosis rules reference (docs/diagnosis.md).", shouldDisplay: false)

    @Flag(name: .long, help: "Markdown (the only output for now; kept explicit like `formats --markdown`).")
    var markdown = false

    func run() throws { print(RuleCatalog.markdown(), terminator: "") }
}

/// A one-line progress bar on stderr, shown only on a terminal and only once work lasts a while.
final class ProgressBar {
    private let enabled: Bool
    init(enabled: Bool = isatty(2) == 1) { self.enabled = enabled }
    private let started = Date()
    private var lastDraw = Date.distantPast
    private var drawn = false

    func update(_ p: IngestProgress) {
        guard enabled, Date().timeIntervalSince(started) > 1, Date().timeIntervalSince(lastDraw) > 0.2 else { return }
        lastDraw = Date()
        let fraction = p.bytesTotal > 0 ? Double(p.bytesDone) / Double(p.bytesTotal) : 0
        let width = 30
        let filled = Int(fraction * Double(width))
        let name = Escape.terminal((p.path as NSString).lastPathComponent, limit: 40)
        let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled)
        FileHandle.standardError.write(Data("\r[\(bar)] \(Int(fraction * 100))% file \(p.fileIndex + 1)/\(p.fileCount) \(name)\u{1b}[K".utf8))
        drawn = true
    }

    /// Records done out of a total (exports).
    func update(done: Int, total: Int, label: String) {
        guard enabled, done % 512 == 0 || done == total, Date().timeIntervalSince(started) > 1, Date().timeIntervalSince(lastDraw) > 0.2 else { return }
        lastDraw = Date()
        let fraction = total > 0 ? min(1, Double(done) / Double(total)) : 0
        let width = 30
        let filled = Int(fraction * Double(width))
        let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled)
        FileHandle.standardError.write(Data("\r[\(bar)] \(Int(fraction * 100))% \(done)/\(total) \(label)\u{1b}[K".utf8))
        drawn = true
    }

    func clear() {
        if drawn { FileHandle.standardError.write(Data("\r\u{1b}[K".utf8)) }
        drawn = false
    }
}

// Runs the command; a database still locked by another process after the wait is the database
// status (3) with a sentence saying what to do, not a bare SQLite error.
/// The arguments as the bytes they are: `CommandLine.arguments` replaces bytes that are not UTF-8
/// (a file name from another system) with U+FFFD, after which the file cannot be opened.
func rawArguments() -> [String] {
    (1..<Int(CommandLine.argc)).compactMap { i in
        CommandLine.unsafeArgv[i].map { PathBytes.string(UnsafeBufferPointer(start: UnsafeRawPointer($0).assumingMemoryBound(to: UInt8.self), count: strlen($0))) }
    }
}

do {
    var command = try Investigate.parseAsRoot(rawArguments())
    defer { WorkingSet.removeAll() }
    try command.run()
} catch where TimelineStore.isLockedError(error) {
    FileHandle.standardError.write(Data("investigate: the database is still locked by another investigate process after \(Int(TimelineStore.defaultLockWait)) s; run again when it has finished, or give this one its own --db.\n".utf8))
    Investigate.exit(withError: ExitStatus.databaseError)
} catch {
    Investigate.exit(withError: error)
}

/// True the first time only: a message said once however often SQLite reports the lock.
final class OnceFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var done = false
    func first() -> Bool {
        lock.lock()
        defer { lock.unlock() }
        if done { return false }
        done = true
        return true
    }
}
