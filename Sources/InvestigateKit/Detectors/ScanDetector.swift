import Foundation

/// How a scheduled job would evaluate the scan alarm: every `every`, over the `lookback` that
/// ended `delay` ago (log delivery lag), e.g. every 5 minutes over the last minute, 90 s behind.
public struct ScanSchedule: Sendable, Equatable {
    public var every: Int64
    public var lookback: Int64
    public var delay: Int64

    public init(every: Int64 = 300_000_000, lookback: Int64 = 60_000_000, delay: Int64 = 90_000_000) {
        self.every = every
        self.lookback = lookback
        self.delay = delay
    }
}

public struct ScanConfig: Sendable, Equatable {
    /// Error responses (4xx/5xx) from one client within `window` that raise the alert.
    public var threshold: Int = 20
    public var window: Int64 = 60_000_000
    /// Also evaluate the way a scheduled job would, and compare what it caught and missed.
    public var schedule: ScanSchedule?

    public init(threshold: Int = 20, window: Int64 = 60_000_000, schedule: ScanSchedule? = nil) {
        self.threshold = threshold
        self.window = window
        self.schedule = schedule
    }
}

/// scan: per client IP and layer, at least N error responses within a sliding window. One alert
/// per key per window at most (it re-arms once a window has passed since it fired).
public final class ScanDetector: Detector {
    public let name = "scan"
    let config: ScanConfig

    struct State {
        var recent: RecentTimes
        var episodeFirst: Int64
        var last: Int64
        var errors = 0
        var samples = SampleSet()
        var rearmAt: Int64 = .min
    }

    private var states: [LayerKey: State] = [:]
    private var nextSweep: Int64 = .min
    private var sweepAt = 0
    private(set) var alertCount = 0
    /// Clients the sliding-window alarm flagged (key "ip@layer" → first alert time).
    private(set) var flagged: [String: Int64] = [:]

    // Scheduled evaluation: per job run time, per key, errors in that run's lookback.
    private struct Tally { var errors = 0; var first: Int64; var last: Int64; var samples = SampleSet() }
    private var runs: [Int64: [LayerKey: Tally]] = [:]
    private var nextRun: Int64 = .max
    private(set) var scheduledCaught: [String: Int64] = [:]
    private var firstTime: Int64?
    private var lastTime: Int64?

    public init(config: ScanConfig = ScanConfig()) { self.config = config }

    /// Keys held in memory (clients with errors within about two windows).
    public var activeKeys: Int { states.count }

    public func advance(to time: Int64, alerts: inout [Alert]) {
        if firstTime == nil { firstTime = time }
        lastTime = time
        if config.schedule != nil, time >= nextRun { fireRuns(upTo: time, alerts: &alerts) }
        // Idle keys go once a window has passed and the table has doubled since the last sweep:
        // memory stays within twice the active keys, and sweeping costs O(1) per new key.
        if time >= nextSweep, states.count >= sweepAt {
            states.removeEntries { !($0.last >= time - config.window || $0.rearmAt > time) }
            nextSweep = time + max(config.window, 1_000_000)
            sweepAt = max(1024, states.count * 2)
        }
    }

    public func observe(_ r: ReplayRequest, alerts: inout [Alert]) {
        guard r.isError, let ip = r.clientIP else { return }
        let key = LayerKey(layer: r.layer, ip: ip)
        let t = r.time
        // Taken out of the dictionary while mutated, so the ring is not copied (copy-on-write).
        var s = states.removeValue(forKey: key) ?? State(recent: RecentTimes(capacity: config.threshold), episodeFirst: t, last: t)
        if t - s.last > config.window { s.episodeFirst = t; s.samples = SampleSet() }
        s.recent.add(t)
        s.last = t
        s.errors += 1
        s.samples.add(r.path)
        if s.recent.isFull, let oldest = s.recent.oldest, t - oldest < config.window, t >= s.rearmAt {
            s.rearmAt = t + config.window
            alertCount += 1
            let id = "\(ip)@\(r.layer.rawValue)"
            if flagged[id] == nil { flagged[id] = t }
            alerts.append(Alert(time: t, detector: name, key: ip, value: Double(config.threshold), count: s.errors,
                                window: Int(config.window / 1_000_000), action: "alert", sample: s.samples.items,
                                layer: r.layer, detail: "\(config.threshold) error responses within \(config.window / 1_000_000)s",
                                first: s.episodeFirst, last: t))
        }
        states[key] = s
        if let schedule = config.schedule { tallyScheduled(key, r, schedule) }
    }

    private func tallyScheduled(_ key: LayerKey, _ r: ReplayRequest, _ schedule: ScanSchedule) {
        let every = max(schedule.every, 1)
        // Runs at multiples of `every` whose lookback [run-delay-lookback, run-delay) holds t.
        let low = r.time + schedule.delay
        var run = Self.floorDiv(low, every) * every + every
        if run - schedule.delay <= r.time { run += every }
        while run - schedule.delay - schedule.lookback <= r.time {
            var tally = runs[run, default: [:]][key] ?? Tally(first: r.time, last: r.time)
            tally.errors += 1
            tally.last = r.time
            tally.samples.add(r.path)
            runs[run, default: [:]][key] = tally
            nextRun = min(nextRun, run)
            run += every
        }
    }

    static func floorDiv(_ a: Int64, _ b: Int64) -> Int64 { a >= 0 ? a / b : -((-a + b - 1) / b) }

    private func fireRuns(upTo time: Int64, alerts: inout [Alert]) {
        guard let schedule = config.schedule else { return }
        for run in runs.keys.sorted() where run <= time {
            let tallies = runs.removeValue(forKey: run) ?? [:]
            for (key, tally) in tallies.sorted(by: { ($0.key.ip, $0.key.layer) < ($1.key.ip, $1.key.layer) }) where tally.errors >= config.threshold {
                let id = "\(key.ip)@\(key.layer.rawValue)"
                if scheduledCaught[id] == nil { scheduledCaught[id] = run }
                alerts.append(Alert(time: run, detector: "scan-scheduled", key: key.ip, value: Double(tally.errors), count: tally.errors,
                                    window: Int(schedule.lookback / 1_000_000), action: "alert", sample: tally.samples.items,
                                    layer: key.layer,
                                    detail: "job every \(schedule.every / 1_000_000)s over \(schedule.lookback / 1_000_000)s, \(schedule.delay / 1_000_000)s behind",
                                    first: tally.first, last: tally.last))
            }
        }
        nextRun = runs.keys.min() ?? .max
    }

    public func finish(at time: Int64, alerts: inout [Alert]) {
        // The job would still run after the data ends: every pending lookback is complete.
        fireRuns(upTo: .max, alerts: &alerts)
    }

    public func summary() -> JSONValue {
        var fields: [(String, JSONValue)] = [
            ("alerts", .int(alertCount)),
            ("flagged", .int(flagged.count)),
            ("threshold", .int(config.threshold)),
            ("windowSeconds", .int(Int(config.window / 1_000_000))),
        ]
        if let schedule = config.schedule {
            let every = max(schedule.every, 1)
            // Job runs whose lookback overlaps the replayed data.
            var runCount = 0
            if let first = firstTime, let last = lastTime {
                runCount = Int(Self.floorDiv(last + schedule.delay + schedule.lookback, every) - Self.floorDiv(first + schedule.delay, every))
            }
            let missed = flagged.keys.filter { scheduledCaught[$0] == nil }.sorted()
            let onlyScheduled = scheduledCaught.keys.filter { flagged[$0] == nil }.sorted()
            fields.append(("scheduled", .object([
                ("runs", .int(runCount)),
                ("caught", .array(scheduledCaught.keys.sorted().map(JSONValue.string))),
                ("missed", .array(missed.map(JSONValue.string))),
                ("caughtOnlyByScheduled", .array(onlyScheduled.map(JSONValue.string))),
            ])))
        }
        return .object(fields)
    }

    /// Keys ("ip@layer") of the sliding alarm and of the scheduled job (tests, summaries).
    public var flaggedKeys: Set<String> { Set(flagged.keys) }
    public var scheduledKeys: Set<String> { Set(scheduledCaught.keys) }
}

public struct RateConfig: Sendable, Equatable {
    /// Requests from one client within `window` that raise the alert.
    public var limit: Int = 100
    public var window: Int64 = 300_000_000
    public init(limit: Int = 100, window: Int64 = 300_000_000) { self.limit = limit; self.window = window }
}

/// rate: per client IP and layer, more than `limit` requests within a sliding window.
public final class RateDetector: Detector {
    public let name = "rate"
    let config: RateConfig

    struct State {
        var recent: RecentTimes
        var first: Int64
        var last: Int64
        var total = 0
        var rearmAt: Int64 = .min
        /// The episode's first path (one string, not a sample list: most keys see a handful of
        /// requests and are dropped again, so per-key allocations dominate).
        var firstPath: String?

        /// Counts a request; true when it takes the client over the limit (and the alarm is armed).
        mutating func record(_ t: Int64, path: String?, window: Int64) -> Bool {
            if t - last > window || total == 0 { first = t; firstPath = path }
            recent.add(t)
            last = t
            total += 1
            guard recent.isFull, let oldest = recent.oldest, t - oldest < window, t >= rearmAt else { return false }
            rearmAt = t + window
            return true
        }
    }
    private var states: [LayerKey: State] = [:]
    private var nextSweep: Int64 = .min
    private var sweepAt = 0
    private(set) var alertCount = 0
    private var flagged: Set<String> = []

    public init(config: RateConfig = RateConfig()) { self.config = config }

    /// Keys held in memory (clients seen within about two windows).
    public var activeKeys: Int { states.count }

    public func advance(to time: Int64, alerts: inout [Alert]) {
        // Idle keys go once a window has passed and the table has doubled since the last sweep:
        // memory stays within twice the active keys, and sweeping costs O(1) per new key.
        if time >= nextSweep, states.count >= sweepAt {
            states.removeEntries { !($0.last >= time - config.window || $0.rearmAt > time) }
            nextSweep = time + max(config.window, 1_000_000)
            sweepAt = max(1024, states.count * 2)
        }
    }

    public func observe(_ r: ReplayRequest, alerts: inout [Alert]) {
        guard let ip = r.clientIP else { return }
        let key = LayerKey(layer: r.layer, ip: ip)
        let t = r.time
        let window = config.window
        // Every request passes here: mutate the state in place (one hash lookup, no copy).
        let fired = states[key, default: State(recent: RecentTimes(capacity: config.limit + 1), first: t, last: t)]
            .record(t, path: r.path, window: window)
        guard fired, let s = states[key] else { return }
        alertCount += 1
        flagged.insert("\(ip)@\(r.layer.rawValue)")
        let sample = [s.firstPath, r.path].compactMap { $0 }
        alerts.append(Alert(time: t, detector: name, key: ip, value: Double(config.limit + 1), count: s.total,
                            window: Int(window / 1_000_000), action: "alert", sample: sample.count == 2 && sample[0] == sample[1] ? [sample[0]] : sample,
                            layer: r.layer,
                            detail: "more than \(config.limit) requests within \(window / 1_000_000)s",
                            first: s.first, last: t))
    }

    public func finish(at time: Int64, alerts: inout [Alert]) {}

    public func summary() -> JSONValue {
        .object([("alerts", .int(alertCount)), ("flagged", .int(flagged.count)), ("limit", .int(config.limit)),
                 ("windowSeconds", .int(Int(config.window / 1_000_000)))])
    }
}
