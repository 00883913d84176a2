import Foundation

/// Everything a replay run is told: the range, the detectors and their thresholds, the rules.
public struct ReplayOptions: Sendable {
    public var range = ReplayRange()
    /// Detector names to run (scan, probe, rate, spike, blocklist).
    public var detectors: Set<String> = ReplayOptions.allDetectors
    public var scan = ScanConfig()
    public var probe = ProbeConfig()
    public var rate = RateConfig()
    public var spike = SpikeConfig()
    public var blocklist = BlocklistConfig()
    /// The layer whose requests the what-if rules judge; nil: the outermost layer in the data.
    public var rulesLayer: Layer?
    /// Whether clients solve the CAPTCHA puzzles and challenges the what-if rules present.
    public var captchaSolved: PuzzleSolving = .all

    public static let allDetectors: Set<String> = ["scan", "probe", "rate", "spike", "blocklist"]

    public init() {}
}

/// The end-of-run summary (the last JSON line).
public struct ReplaySummary: Encodable {
    public var requests = 0
    public var first: Int64?
    public var last: Int64?
    public var alerts: [String: Int] = [:]
    public var detectors: [(String, JSONValue)] = []
    public var rules: JSONValue?
    public var rulesLayer: Layer?

    enum CodingKeys: String, CodingKey { case summary }
    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        var fields: [(String, JSONValue)] = [
            ("requests", .int(requests)),
            ("from", first.map { .string(TimeFormat.isoUTC($0)) } ?? .null),
            ("to", last.map { .string(TimeFormat.isoUTC($0)) } ?? .null),
            ("alerts", .object(alerts.sorted { $0.key < $1.key }.map { ($0.key, .int($0.value)) })),
            ("detectors", .object(detectors)),
        ]
        if let rules {
            fields.append(("rulesLayer", rulesLayer.map { .string($0.rawValue) } ?? .null))
            fields.append(("rules", rules))
        }
        try c.encode(JSONValue.object(fields), forKey: .summary)
    }
}

/// Streams the timeline's requests in time order through the detectors and the what-if rules,
/// handing each alert to `emit` at the event time it would have fired.
public final class ReplayEngine {
    public let options: ReplayOptions
    public let detectors: [Detector]
    public let blocklist: BlocklistSimulator?
    public let evaluator: WAFEvaluator?
    /// Called with each request's time before it is replayed (`--speed` sleeps here, so replay
    /// advances like a live tail from the first request on).
    public var pace: ((Int64) -> Void)?

    public init(options: ReplayOptions, acl: WebACL? = nil) {
        self.options = options
        var list: [Detector] = []
        // Order matters only for alerts raised by the same request: scan before probe before rate.
        if options.detectors.contains("scan") { list.append(ScanDetector(config: options.scan)) }
        if options.detectors.contains("probe") { list.append(ProbeDetector(config: options.probe)) }
        if options.detectors.contains("rate") { list.append(RateDetector(config: options.rate)) }
        if options.detectors.contains("spike") { list.append(SpikeDetector(config: options.spike)) }
        detectors = list
        blocklist = options.detectors.contains("blocklist") ? BlocklistSimulator(config: options.blocklist) : nil
        evaluator = acl.map { WAFEvaluator(acl: $0, probePatterns: options.probe.patterns, solving: options.captchaSolved) }
    }

    public func detector<T: Detector>(_ type: T.Type) -> T? { detectors.lazy.compactMap { $0 as? T }.first }

    /// Requests per hand-over between the reading thread and the detectors.
    static let batchSize = 4096

    /// Replays the store; `emit` receives alerts in time order, on the calling thread.
    ///
    /// SQLite reading and string decoding run on a second thread, a few batches ahead of the
    /// detectors (a bounded hand-over, so memory stays flat): the two halves cost about the same.
    @discardableResult
    public func run(_ store: TimelineStore, emit: (Alert) throws -> Void) throws -> ReplaySummary {
        var rulesLayer = options.rulesLayer
        if evaluator != nil, rulesLayer == nil {
            rulesLayer = try store.read { db in try RequestStream.outermostLayer(db, range: options.range) }
        }
        let channel = BatchChannel(capacity: 4)
        let range = options.range
        let withDetails = evaluator != nil
        let reader = Thread {
            do {
                try store.read { db in
                    var batch: [ReplayRequest] = []
                    batch.reserveCapacity(Self.batchSize)
                    try RequestStream.forEach(db, range: range, withDetails: withDetails) { request in
                        batch.append(request)
                        if batch.count == Self.batchSize {
                            guard channel.put(batch) else { throw CancellationError() }
                            batch.removeAll(keepingCapacity: true)
                        }
                    }
                    if !batch.isEmpty { _ = channel.put(batch) }
                }
                channel.finish(nil)
            } catch is CancellationError {
                channel.finish(nil)
            } catch {
                channel.finish(error)
            }
        }
        reader.stackSize = 1 << 20
        reader.start()
        var session = Session(engine: self, rulesLayer: rulesLayer)
        do {
            while let batch = try channel.take() {
                // By index: the element is borrowed, not copied.
                for i in batch.indices { try session.feed(batch[i], emit: emit) }
            }
        } catch {
            channel.cancel()
            channel.waitUntilFinished()
            throw error
        }
        channel.waitUntilFinished()
        return try session.finish(emit: emit)
    }

    /// Replays requests given directly (tests, or callers with their own source).
    @discardableResult
    public func run(_ requests: [ReplayRequest], rulesLayer: Layer? = nil, emit: (Alert) throws -> Void) throws -> ReplaySummary {
        var session = Session(engine: self, rulesLayer: rulesLayer ?? requests.map(\.layer).min())
        for r in requests.sorted(by: { ($0.time, $0.id) < ($1.time, $1.id) }) { try session.feed(r, emit: emit) }
        return try session.finish(emit: emit)
    }

    struct Session {
        let engine: ReplayEngine
        let rulesLayer: Layer?
        var summary = ReplaySummary()
        var buffer: [Alert] = []
        var blockBuffer: [Alert] = []
        var lastTime: Int64 = .min

        init(engine: ReplayEngine, rulesLayer: Layer?) {
            self.engine = engine
            self.rulesLayer = rulesLayer
            summary.rulesLayer = rulesLayer
        }

        mutating func feed(_ r: ReplayRequest, emit: (Alert) throws -> Void) throws {
            engine.pace?(r.time)
            summary.requests += 1
            if summary.first == nil { summary.first = r.time }
            summary.last = r.time
            lastTime = r.time
            for d in engine.detectors { d.advance(to: r.time, alerts: &buffer) }
            engine.blocklist?.advance(to: r.time, alerts: &buffer)
            engine.evaluator?.advance(to: r.time, alerts: &buffer)
            engine.blocklist?.observe(r, alerts: &buffer)
            let before = buffer.count
            for d in engine.detectors { d.observe(r, alerts: &buffer) }
            if let evaluator = engine.evaluator {
                // The detectors see the request first: a scanner flagged by this very request is
                // a suspect, not collateral, when the rules judge it.
                for alert in buffer[before...] { evaluator.noteAlert(alert) }
                if r.layer == rulesLayer { evaluator.evaluate(r, alerts: &buffer) }
                evaluator.noteHistory(r)
            }
            if !buffer.isEmpty { try flush(emit: emit) }
        }

        /// Hands the buffered alerts on in time order; alerts that trigger blocks reach the blocklist first.
        mutating func flush(emit: (Alert) throws -> Void) throws {
            var i = 0
            while i < buffer.count {
                let alert = buffer[i]
                engine.evaluator?.noteAlert(alert)
                engine.blocklist?.react(to: alert, alerts: &blockBuffer)
                i += 1
            }
            var all = buffer + blockBuffer
            buffer.removeAll(keepingCapacity: true)
            blockBuffer.removeAll(keepingCapacity: true)
            // Stable: alerts at the same time keep the order they were raised in.
            all = all.enumerated().sorted { ($0.element.time, $0.offset) < ($1.element.time, $1.offset) }.map(\.element)
            for alert in all {
                summary.alerts[alert.detector, default: 0] += 1
                try emit(alert)
            }
        }

        mutating func finish(emit: (Alert) throws -> Void) throws -> ReplaySummary {
            for d in engine.detectors { d.finish(at: lastTime, alerts: &buffer) }
            engine.evaluator?.finish(alerts: &buffer)
            try flush(emit: emit)
            engine.blocklist?.finish(at: lastTime, alerts: &buffer)
            try flush(emit: emit)
            summary.detectors = engine.detectors.map { ($0.name, $0.summary()) }
            if let b = engine.blocklist { summary.detectors.append((b.name, b.summary())) }
            summary.rules = engine.evaluator?.report()
            return summary
        }
    }
}

extension WAFEvaluator {
    /// Per rule: what it matched and blocked, from how many clients, its rate-based blocks, its
    /// collateral, and what it could not evaluate.
    public func report() -> JSONValue {
        func counts(_ d: [String: Int]) -> JSONValue { .object(d.sorted { $0.key < $1.key }.map { ($0.key, .int($0.value)) }) }
        return .object([
            ("webACL", acl.name.map(JSONValue.string) ?? .null),
            ("requests", .int(requests)),
            ("decisions", counts(decisions)),
            ("defaultAction", .string(acl.defaultAction.rawValue)),
            ("decidedByDefault", .int(defaultDecisions)),
            ("actualVersusWhatIf", counts(comparison)),
            ("captchaSolved", .string(solving.rawValue)),
            ("immunityTime", .object([("captcha", .int(acl.captchaImmunity)), ("challenge", .int(acl.challengeImmunity))])),
            ("rules", .array(stats.enumerated().map { i, s in
                .object([
                    ("name", .string(s.name)),
                    ("priority", .int(s.priority)),
                    ("action", .string(s.action)),
                    ("evaluated", .int(s.evaluated)),
                    ("matched", .int(s.matched)),
                    ("terminated", .int(s.terminated)),
                    ("blocked", .int(s.blocked)),
                    ("challenged", .int(s.challenged)),
                    ("passedWithToken", .int(s.passedWithToken)),
                    ("immunityTime", acl.rules[i].action.flatMap { acl.immunity(of: acl.rules[i], for: $0) }.map(JSONValue.int) ?? .null),
                    ("counted", .int(s.counted)),
                    ("matchedIPs", .int(s.matchedIPs.count)),
                    ("blockedIPs", .int(s.blockedIPs.count)),
                    ("undecided", .int(s.undecided)),
                    ("undecidedReasons", counts(s.undecidedReasons)),
                    ("unsupported", .array(s.unsupported.map(JSONValue.string))),
                    ("rateBlocks", .int(s.rateBlockCount)),
                    ("rateBlockList", .array(s.rateBlocks.map { b in
                        .object([("key", .string(b.key)), ("start", .string(TimeFormat.isoUTC(b.start))),
                                 ("end", .string(TimeFormat.isoUTC(b.end))), ("requests", .int(b.requests))])
                    })),
                    ("collateral", .object([
                        ("requests", .int(s.collateral)),
                        ("clients", .int(s.collateralIPs.count)),
                        ("sample", .array(s.collateralSamples.map(JSONValue.string))),
                    ])),
                ])
            })),
        ])
    }

    /// The same for people (log-derived text escaped).
    public func renderReport(zone: ZoneSpec) -> String {
        var out = "What-if web ACL\(acl.name.map { " " + Escape.terminal($0) } ?? ""): \(requests) requests judged; "
        out += decisions.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
        out += " (default action \(acl.defaultAction.rawValue) decided \(defaultDecisions))\n"
        if acl.rules.contains(where: { $0.action?.isPuzzle == true }) {
            out += "  CAPTCHA/CHALLENGE: " + (solving == .all
                ? "assumed solved at once by every client presented one (--captcha-solved all): its token exempts it for the immunity time"
                : "assumed never solved (--captcha-solved none): every matching request is challenged")
            out += " (web ACL immunity: CAPTCHA \(acl.captchaImmunity) s, challenge \(acl.challengeImmunity) s)\n"
        }
        if !comparison.isEmpty {
            out += "  actual → what-if: " + comparison.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ") + "\n"
        }
        for (i, s) in stats.enumerated() {
            out += "  [\(s.priority)] \(Escape.terminal(s.name)) (\(s.action)): matched \(s.matched) from \(s.matchedIPs.count) IPs, "
            out += "blocked \(s.blocked) from \(s.blockedIPs.count) IPs, counted \(s.counted), undecided \(s.undecided)\n"
            if let action = acl.rules[i].action, action.isPuzzle, let seconds = acl.immunity(of: acl.rules[i], for: action) {
                out += "      \(action.rawValue): challenged \(s.challenged), passed with a valid token \(s.passedWithToken) (immunity \(seconds) s)\n"
            }
            for u in s.unsupported { out += "      not evaluable: \(Escape.terminal(u))\n" }
            for (reason, n) in s.undecidedReasons.sorted(by: { $0.key < $1.key }) { out += "      undecided \(n)×: \(Escape.terminal(reason))\n" }
            if s.rateBlockCount > 0 {
                out += "      rate-based blocks: \(s.rateBlockCount)\n"
                for b in s.rateBlocks.prefix(10) {
                    out += "        \(Escape.terminal(b.key)) \(TimeFormat.display(b.start, zone: zone)) → \(TimeFormat.display(b.end, zone: zone)), \(b.requests) requests\n"
                }
            }
            if s.collateral > 0 {
                out += "      collateral: \(s.collateral) blocked requests from \(s.collateralIPs.count) clients with earlier successful sessions\n"
                for sample in s.collateralSamples.prefix(5) { out += "        \(Escape.terminal(sample))\n" }
            }
        }
        return out
    }
}

/// A bounded queue of request batches from the reading thread to the detectors.
final class BatchChannel: @unchecked Sendable {
    private let condition = NSCondition()
    private var batches: [[ReplayRequest]] = []
    private var finished = false
    private var cancelled = false
    private var failure: Error?
    let capacity: Int

    init(capacity: Int) { self.capacity = capacity }

    /// False once the reader should stop (the consumer gave up).
    func put(_ batch: [ReplayRequest]) -> Bool {
        condition.lock()
        defer { condition.unlock() }
        while batches.count >= capacity && !cancelled { condition.wait() }
        if cancelled { return false }
        batches.append(batch)
        condition.broadcast()
        return true
    }

    func finish(_ error: Error?) {
        condition.lock()
        finished = true
        failure = error
        condition.broadcast()
        condition.unlock()
    }

    /// The next batch; nil at the end; the reader's error if it failed.
    func take() throws -> [ReplayRequest]? {
        condition.lock()
        defer { condition.unlock() }
        while batches.isEmpty && !finished { condition.wait() }
        if !batches.isEmpty {
            let batch = batches.removeFirst()
            condition.broadcast()
            return batch
        }
        if let failure { throw failure }
        return nil
    }

    func cancel() {
        condition.lock()
        cancelled = true
        batches.removeAll()
        condition.broadcast()
        condition.unlock()
    }

    func waitUntilFinished() {
        condition.lock()
        while !finished { condition.wait() }
        condition.unlock()
    }
}
