import ArgumentParser
import Foundation
import InvestigateKit

/// Options that pick a time window: `--from/--to`, or `--at` with `--window` either side.
struct WindowOptions: ParsableArguments {
    @Option(name: .long, help: "Centre of the window, e.g. \"2025-02-06 14:32\" (in --tz).")
    var at: String?

    @Option(name: .long, help: "Half-width of the window around --at (e.g. 90s, 2m, 1h).")
    var window: String = "2m"

    @Option(name: .long, help: "Start of the window (in --tz).")
    var from: String?

    @Option(name: .long, help: "End of the window (in --tz).")
    var to: String?

    func resolve(zone: ZoneSpec, defaultHalfWidth: Int64? = nil) throws -> (from: Int64, to: Int64)? {
        guard let half = UserTime.duration(window) else { throw ValidationError("--window: cannot read '\(window)' (try 90s, 2m, 1h)") }
        if let at {
            guard let t = UserTime.parse(at, zone: zone) else { throw ValidationError("--at: cannot read '\(at)' (try \"2025-02-06 14:32\")") }
            return (t - half, t + half)
        }
        var lo: Int64?, hi: Int64?
        if let from {
            guard let t = UserTime.parse(from, zone: zone) else { throw ValidationError("--from: cannot read '\(from)'") }
            lo = t
        }
        if let to {
            guard let t = UserTime.parse(to, zone: zone) else { throw ValidationError("--to: cannot read '\(to)'") }
            hi = t
        }
        if lo == nil && hi == nil { return nil }
        return (lo ?? Int64.min / 2, hi ?? Int64.max / 2)
    }
}

struct TimelineCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "timeline",
        abstract: "The merged, time-ordered view of all layers, grouped by request chain.",
        discussion: """
            With PATHs, ingests them first and shows only the records of the files under them (the database may hold \
            other investigations); the first line says which database and how many of its sources. \
            --json is JSON Lines (one object per chain), not one JSON document.
            """)

    @OptionGroup var store: StoreOptions
    @OptionGroup var queryZone: QueryZoneOption
    @OptionGroup var importing: ImportArguments
    @OptionGroup var windowOptions: WindowOptions

    @Option(name: .long, help: "Only chains with a record from or via this client address.")
    var ip: String?

    @Option(name: .long, help: "Only the chain with this request or trace id.")
    var request: String?

    @Option(name: .long, help: "Only chains with a record of this layer (waf, alb, apigateway, nginx, gunicorn, app, lambda).")
    var layer: String?

    @Option(name: .long, help: "Only chains with this status (403, 4xx, 5xx).")
    var status: String?

    @Flag(name: .long, help: "JSON Lines, not one document: one JSON object per chain, one per line.")
    var json = false

    @Argument(help: "Files or directories to ingest first (optional).")
    var paths: [String] = []

    func run() throws {
        let zone = try queryZone.zoneSpec()
        let asked = try windowOptions.resolve(zone: zone)
        let (timeline, database) = try store.timelineForQuestion(window: asked.map { $0.from...$0.to }, paths: paths)
        let ingested = try ingestReporting(paths, importing, into: timeline, window: asked.map { $0.from...$0.to })
        let window = asked ?? (Int64.min / 2, Int64.max / 2)
        var query = TimelineQuery(from: window.from, to: window.to)
        query.sources = try sourceScope(paths, ingested, timeline)
        query.clientIP = ip
        query.requestID = request
        if let layer {
            guard let l = Layer(rawValue: layer) else { throw ValidationError("--layer: unknown layer '\(layer)'") }
            query.layer = l
        }
        if let status {
            guard let s = StatusFilter(status) else { throw ValidationError("--status: expected a code or a class like 4xx") }
            query.status = s
        }
        let result = try TimelineView.build(timeline, query)
        if json {
            for chain in result.chains { try writeJSONLine(TimelineView.json(chain)) }
        } else {
            print(try answerScope(database: database, query.sources, timeline))
            print(TimelineView.render(result.chains, zone: zone, truncated: result.truncated), terminator: "")
        }
        if ingested.failed { throw ExitStatus.inputProblem }
    }
}

func writeJSONLine<T: Encodable>(_ value: T) throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    var data = try encoder.encode(value)
    data.append(0x0A)
    FileHandle.standardOutput.write(data)
}
