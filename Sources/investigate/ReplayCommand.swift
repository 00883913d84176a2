import ArgumentParser
import Foundation
import InvestigateKit

/// `investigate replay`: archived logs through detectors and what-if WAF rules, as if live.
struct Replay: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Replay the timeline through detectors and what-if AWS WAF rules, printing alerts when they would have fired.",
        discussion: "Defaults and semantics: docs/replay.md. --json is JSON Lines (one object per line: the alerts, then the summary), not one JSON document.")

    @OptionGroup var store: StoreOptions
    @OptionGroup var queryZone: QueryZoneOption
    @OptionGroup var importing: ImportArguments

    @Option(name: .long, help: "Start of the replay (e.g. 2025-02-06 14:00, in --tz unless zoned).")
    var from: String?
    @Option(name: .long, help: "End of the replay (exclusive).")
    var to: String?
    @Option(name: .long, help: "Detectors, comma-separated: scan, probe, rate, spike, blocklist (default: all).")
    var detect: String?
    @Option(name: .long, help: "Only these layers, comma-separated (e.g. waf,nginx).")
    var layer: String?
    @Option(name: .long, help: "A web ACL or rule list in AWS WAF JSON (console, CLI or CloudFormation).")
    var rules: String?
    @Option(name: .long, help: "IP sets / regex pattern sets the rules reference (JSON; repeatable).")
    var sets: [String] = []
    @Option(name: .customLong("rules-layer"), help: "Layer whose requests the rules judge (default: the outermost in the data).")
    var rulesLayer: String?
    @Option(name: .customLong("captcha-solved"), help: """
        What-if rules: whether clients solve the CAPTCHA puzzles and challenges they are presented (logs cannot show it). \
        all: every client solves at once, so its token (per client IP) exempts it for the immunity time; none: every match is challenged.
        """)
    var captchaSolved: String = "all"
    @Option(name: .long, help: "Pace output by event time: Nx (e.g. 60x) or max.")
    var speed: String = "max"
    @Flag(name: .long, help: "JSON Lines, not one document: one JSON alert per line, then one summary line {\"summary\":{…}}.")
    var json = false

    @Option(name: .customLong("scan-threshold"), help: "scan: error responses per client within the window.")
    var scanThreshold: Int = 20
    @Option(name: .customLong("scan-window"), help: "scan: sliding window.")
    var scanWindow: String = "1m"
    @Flag(name: .customLong("scan-schedule"), help: "scan: also evaluate as a scheduled job and report what it caught and missed.")
    var scanSchedule = false
    @Option(name: .customLong("scan-every"), help: "scan schedule: run interval.")
    var scanEvery: String = "5m"
    @Option(name: .customLong("scan-lookback"), help: "scan schedule: period each run looks at.")
    var scanLookback: String = "1m"
    @Option(name: .customLong("scan-delay"), help: "scan schedule: how far behind each run looks.")
    var scanDelay: String = "90s"
    @Option(name: .customLong("probe-patterns"), help: "probe: comma-separated patterns (.ext, prefix*, /fragment).")
    var probePatterns: String?
    @Option(name: .customLong("probe-threshold"), help: "probe: probes per client within the window.")
    var probeThreshold: Int = 1
    @Option(name: .customLong("probe-window"), help: "probe: window (also the re-alert interval).")
    var probeWindow: String = "10m"
    @Option(name: .customLong("rate-limit"), help: "rate: requests per client allowed within the window.")
    var rateLimit: Int = 100
    @Option(name: .customLong("rate-window"), help: "rate: sliding window.")
    var rateWindow: String = "5m"
    @Option(name: .customLong("spike-baseline"), help: "spike: minutes in the rolling baseline.")
    var spikeBaseline: Int = 30
    @Option(name: .customLong("spike-factor"), help: "spike: minimum ratio of a minute's error share to the baseline.")
    var spikeFactor: Double = 2
    @Option(name: .customLong("spike-min-increase"), help: "spike: minimum rise of the error share over the baseline (0-1).")
    var spikeMinIncrease: Double = 0.2
    @Option(name: .customLong("spike-min-requests"), help: "spike: minimum responses in the minute.")
    var spikeMinRequests: Int = 20
    @Option(name: .customLong("block-ttl"), help: "blocklist: how long an alerted client stays blocked.")
    var blockTTL: String = "1h"
    @Option(name: .customLong("block-delay"), help: "blocklist: reaction time between alert and block.")
    var blockDelay: String = "0s"
    @Option(name: .customLong("block-on"), help: "blocklist: detectors whose alerts block (comma-separated: scan, scan-scheduled, probe, rate, spike, waf-rule).")
    var blockOn: String = "scan,probe,rate"
    @Option(name: .customLong("ip-set-out"), help: """
        blocklist: write every address it blocked as AWS WAF IP sets, PREFIX-ipv4.json and PREFIX-ipv6.json (input of \
        `aws wafv2 update-ip-set --cli-input-json file://…`; replace the LockToken placeholder with get-ip-set's), and \
        the add/remove schedule its TTL implies, PREFIX-schedule.jsonl.
        """)
    var ipSetOut: String?
    @Option(name: .customLong("ip-set-name"), help: "blocklist IP sets: NAME (sets NAME-ipv4 and NAME-ipv6) or IPV4NAME,IPV6NAME.")
    var ipSetName: String = "investigate-blocklist"
    @Option(name: .customLong("ip-set-id"), help: "blocklist IP sets: IPV4ID,IPV6ID of the existing sets (default: placeholders to replace).")
    var ipSetID: String?
    @Option(name: .customLong("ip-set-scope"), help: "blocklist IP sets: REGIONAL (ALB, API Gateway, …) or CLOUDFRONT.")
    var ipSetScope: String = "REGIONAL"

    @Argument(help: "Log files or directories to ingest first (skipped when already in the database).")
    var paths: [String] = []

    /// Alert names the blocklist can react to.
    static let blockTriggers: Set<String> = ["scan", "scan-scheduled", "probe", "rate", "spike", "waf-rule"]

    /// The IP sets' names, ids and scope, checked against AWS WAF's constraints.
    func ipSetOptions() throws -> BlocklistIPSets.Options {
        let names = ipSetName.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        guard names.count <= 2 else { throw ValidationError("--ip-set-name: NAME or IPV4NAME,IPV6NAME") }
        let (v4, v6) = names.count == 2 ? (names[0], names[1]) : (names[0] + "-ipv4", names[0] + "-ipv6")
        for n in [v4, v6] where !BlocklistIPSets.isValidName(n) {
            throw ValidationError("--ip-set-name: '\(n)' is not an IP set name (1-128 letters, digits, _ and -)")
        }
        var o = BlocklistIPSets.Options(ipv4Name: v4, ipv6Name: v6)
        if let ipSetID {
            let ids = ipSetID.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
            guard ids.count == 2, ids.allSatisfy(BlocklistIPSets.isValidID) else {
                throw ValidationError("--ip-set-id: expected IPV4ID,IPV6ID (each 1-36 of 0-9, a-f and -, as get-ip-set shows them)")
            }
            o.ipv4ID = ids[0]
            o.ipv6ID = ids[1]
        }
        guard let scope = BlocklistIPSets.Scope(rawValue: ipSetScope.uppercased()) else {
            throw ValidationError("--ip-set-scope: REGIONAL or CLOUDFRONT, got '\(ipSetScope)'")
        }
        o.scope = scope
        return o
    }

    func validate() throws {
        let triggers = blockOn.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        if let bad = triggers.first(where: { !Self.blockTriggers.contains($0) }) {
            throw ValidationError("--block-on: unknown alert '\(bad)' (known: \(Self.blockTriggers.sorted().joined(separator: ", ")))")
        }
        if ipSetOut != nil {
            _ = try ipSetOptions()
            if let detect, !detect.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) }).contains("blocklist") {
                throw ValidationError("--ip-set-out writes the blocklist's result: add blocklist to --detect")
            }
        }
        if PuzzleSolving(rawValue: captchaSolved) == nil {
            throw ValidationError("--captcha-solved: expected all or none, got '\(captchaSolved)'")
        }
        if Pacer(speed) == nil { throw ValidationError("--speed: expected Nx (e.g. 60x) or max, got '\(speed)'") }
        for (n, flag) in [(scanThreshold, "--scan-threshold"), (probeThreshold, "--probe-threshold"), (rateLimit, "--rate-limit"),
                          (spikeBaseline, "--spike-baseline")] where n < 1 {
            throw ValidationError("\(flag) must be at least 1")
        }
    }

    func options() throws -> ReplayOptions {
        let zone = try queryZone.zoneSpec()
        var o = ReplayOptions()
        func time(_ text: String?, _ flag: String) throws -> Int64? {
            guard let text else { return nil }
            guard let t = UserTime.parse(text, zone: zone) else { throw ValidationError("\(flag): cannot read time '\(text)'") }
            return t
        }
        func duration(_ text: String, _ flag: String) throws -> Int64 {
            guard let d = UserTime.duration(text), d >= 0 else { throw ValidationError("\(flag): cannot read duration '\(text)' (e.g. 90s, 5m, 1h)") }
            return d
        }
        func positive(_ text: String, _ flag: String) throws -> Int64 {
            let d = try duration(text, flag)
            guard d > 0 else { throw ValidationError("\(flag) must be longer than zero") }
            return d
        }
        func list(_ text: String) -> [String] { text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty } }
        o.range = ReplayRange(from: try time(from, "--from"), to: try time(to, "--to"))
        if let layer {
            var layers = Set<Layer>()
            for name in list(layer) {
                guard let l = Layer(rawValue: name) else { throw ValidationError("--layer: unknown layer '\(name)'") }
                layers.insert(l)
            }
            o.range.layers = layers
        }
        if let detect {
            let names = Set(list(detect))
            if let bad = names.subtracting(ReplayOptions.allDetectors).sorted().first {
                throw ValidationError("--detect: unknown detector '\(bad)' (known: \(ReplayOptions.allDetectors.sorted().joined(separator: ", ")))")
            }
            o.detectors = names
        }
        if let rulesLayer {
            guard let l = Layer(rawValue: rulesLayer) else { throw ValidationError("--rules-layer: unknown layer '\(rulesLayer)'") }
            o.rulesLayer = l
        }
        o.captchaSolved = PuzzleSolving(rawValue: captchaSolved) ?? .all
        o.scan = ScanConfig(threshold: scanThreshold, window: try positive(scanWindow, "--scan-window"),
                            schedule: scanSchedule ? ScanSchedule(every: try positive(scanEvery, "--scan-every"),
                                                                  lookback: try positive(scanLookback, "--scan-lookback"),
                                                                  delay: try duration(scanDelay, "--scan-delay")) : nil)
        o.probe = ProbeConfig(patterns: probePatterns.map { ProbePatterns(list($0)) } ?? .standard, threshold: probeThreshold,
                              window: try positive(probeWindow, "--probe-window"))
        o.rate = RateConfig(limit: rateLimit, window: try positive(rateWindow, "--rate-window"))
        o.spike = SpikeConfig(baselineMinutes: spikeBaseline, factor: spikeFactor, minIncrease: spikeMinIncrease, minRequests: spikeMinRequests)
        o.blocklist = BlocklistConfig(ttl: try positive(blockTTL, "--block-ttl"), delay: try duration(blockDelay, "--block-delay"),
                                      triggers: Set(list(blockOn)))
        return o
    }

    /// Reads the rule file and its sets before anything is replayed, so a bad file stops here.
    func loadACL() throws -> WebACL? {
        guard let rules else { return nil }
        var setsLoaded = WAFSets()
        for path in sets {
            guard let data = FileManager.default.contents(atPath: path) else { throw ValidationError("--sets: cannot read \(path)") }
            do { try setsLoaded.load(json: data, source: path) } catch let error as WebACLError { throw ValidationError(error.description) }
        }
        guard let data = FileManager.default.contents(atPath: rules) else { throw ValidationError("--rules: cannot read \(rules)") }
        do { return try WebACLParser.parse(data, sets: setsLoaded) } catch let error as WebACLError {
            throw ValidationError("--rules \(rules): \(error.description)")
        }
    }

    func run() throws {
        let options = try options()
        let acl = try loadACL()
        // From ClickHouse: the replayed range (all of it without --from/--to) is fetched in time
        // order into a working set, with the margin correlation needs either side.
        let range = options.range
        let window: ClosedRange<Int64>? = (range.from != nil || range.to != nil)
            ? (range.from ?? Int64.min / 4)...(range.to ?? Int64.max / 4) : nil
        let (timeline, _) = try store.timelineForQuestion(window: window, paths: paths)
        var inputProblem = false
        if !paths.isEmpty {
            let summary = try importing.ingest(paths, into: timeline).ingest
            inputProblem = !reportInputProblems(summary).isEmpty
        }
        let engine = ReplayEngine(options: options, acl: acl)
        var pacer = Pacer(speed) ?? Pacer("max")!
        if pacer.speed != nil { engine.pace = { pacer.wait(until: $0) } }
        let zone = try queryZone.zoneSpec()
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let out = FileHandle.standardOutput
        let summary: ReplaySummary
        do {
            summary = try engine.run(timeline) { alert in
                if json {
                    out.write(try encoder.encode(alert))
                    out.write(Data("\n".utf8))
                } else {
                    out.write(Data((alert.render(zone: zone) + "\n").utf8))
                }
            }
        } catch {
            FileHandle.standardError.write(Data("investigate: replay failed reading the timeline: \(error)\n".utf8))
            throw ExitStatus.databaseError
        }
        if json { try writeJSON(summary) } else { print(render(summary, engine: engine, zone: zone), terminator: "") }
        if let prefix = ipSetOut, let blocklist = engine.blocklist {
            try writeIPSets(BlocklistIPSets(periods: blocklist.periods), prefix: prefix, options: try ipSetOptions())
        }
        if inputProblem { throw ExitStatus.inputProblem }
    }

    /// PREFIX-ipv4.json, PREFIX-ipv6.json and PREFIX-schedule.jsonl, each written whole; what was
    /// written, and what the user must still do, on stderr.
    func writeIPSets(_ sets: BlocklistIPSets, prefix: String, options: BlocklistIPSets.Options) throws {
        let files: [(String, [UInt8])] = [
            (prefix + "-ipv4.json", sets.requestJSON(ipv6: false, options)),
            (prefix + "-ipv6.json", sets.requestJSON(ipv6: true, options)),
            (prefix + "-schedule.jsonl", sets.scheduleJSONL()),
        ]
        for (path, bytes) in files {
            let url = URL(fileURLWithPath: path)
            do {
                try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
                try Data(bytes).write(to: url, options: .atomic)
            } catch {
                FileHandle.standardError.write(Data("investigate: cannot write \(Escape.terminal(path)): \(Escape.terminal(error.localizedDescription))\n".utf8))
                throw ExitStatus.inputProblem
            }
        }
        var lines = ["investigate: blocklist as AWS WAF IP sets: \(Escape.terminal(files[0].0)) (\(sets.ipv4.count) address\(sets.ipv4.count == 1 ? "" : "es")), \(Escape.terminal(files[1].0)) (\(sets.ipv6.count)), schedule \(Escape.terminal(files[2].0)) (\(sets.schedule.count) changes)",
                     "investigate: before `aws wafv2 update-ip-set --cli-input-json file://…`, replace LockToken\(options.ipv4ID == nil ? " and Id" : "") with the values `aws wafv2 get-ip-set` returns; the update replaces the set's whole address list"]
        for (family, count) in [("IPv4", sets.ipv4.count), ("IPv6", sets.ipv6.count)] where count > BlocklistIPSets.maxAddresses {
            lines.append("investigate: warning: \(count) \(family) addresses: AWS WAF takes at most \(BlocklistIPSets.maxAddresses) per IP set, so update-ip-set will refuse this one")
        }
        if !sets.notAddresses.isEmpty {
            lines.append("investigate: \(sets.notAddresses.count) blocked client(s) are not IP addresses and are in no IP set: " +
                         sets.notAddresses.prefix(5).map { Escape.terminal($0, limit: 60) }.joined(separator: ", ") + (sets.notAddresses.count > 5 ? ", …" : ""))
        }
        FileHandle.standardError.write(Data((lines.joined(separator: "\n") + "\n").utf8))
    }

    func render(_ s: ReplaySummary, engine: ReplayEngine, zone: ZoneSpec) -> String {
        var out = "\nReplayed \(s.requests) requests"
        if let first = s.first, let last = s.last {
            out += " from \(TimeFormat.display(first, zone: zone)) to \(TimeFormat.display(last, zone: zone))"
        }
        out += "\nAlerts: " + (s.alerts.isEmpty ? "none" : s.alerts.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")) + "\n"
        if let scan = engine.detector(ScanDetector.self), let scheduled = scan.summary()["scheduled"] {
            let caught = scheduled["caught"]?.arrayValue?.compactMap(\.stringValue) ?? []
            let missed = scheduled["missed"]?.arrayValue?.compactMap(\.stringValue) ?? []
            out += "Scheduled scan job (\(scheduled["runs"]?.intValue ?? 0) runs): caught \(caught.count) of \(scan.flaggedKeys.count) sliding-window alerts' clients"
            out += missed.isEmpty ? "\n" : "; missed: " + missed.prefix(20).map { Escape.terminal($0) }.joined(separator: ", ") + "\n"
        }
        if let probe = engine.detector(ProbeDetector.self) {
            let summary = probe.summary()
            var line = "Probes: \(summary["requests"]?.intValue ?? 0) requests"
            if case .object(let layers)? = summary["responsesByLayer"] {
                line += "; responses: " + layers.map { layer, statuses -> String in
                    guard case .object(let counts) = statuses else { return layer }
                    return "\(layer) " + counts.map { "\(Escape.terminal($0.0))×\($0.1.intValue ?? 0)" }.joined(separator: " ")
                }.joined(separator: "; ")
            }
            out += line + "\n"
        }
        if let block = engine.blocklist {
            let summary = block.summary()
            let perLayer = summary["blockedRequestsByLayer"].map { v -> String in
                if case .object(let o) = v { return o.map { "\($0.0) \($0.1.intValue ?? 0)" }.joined(separator: ", ") }
                return ""
            } ?? ""
            out += "Blocklist: \(summary["blocks"]?.intValue ?? 0) blocks; requests blocked per layer: \(perLayer.isEmpty ? "none" : perLayer)\n"
        }
        if let evaluator = engine.evaluator {
            out += "Rules judged at layer \(s.rulesLayer?.rawValue ?? "none")\n" + evaluator.renderReport(zone: zone)
        }
        return out
    }
}
