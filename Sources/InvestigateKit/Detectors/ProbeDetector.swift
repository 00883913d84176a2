import Foundation

public struct ProbeConfig: Sendable, Equatable {
    public var patterns: ProbePatterns = .standard
    /// Probe requests from one client within `window` that raise the alert (then at most one
    /// alert per key per window).
    public var threshold: Int = 1
    public var window: Int64 = 600_000_000
    public init(patterns: ProbePatterns = .standard, threshold: Int = 1, window: Int64 = 600_000_000) {
        self.patterns = patterns
        self.threshold = threshold
        self.window = window
    }
}

/// probe: requests for script paths the application does not serve (`.php`, `/.env`, `wp-*`, …),
/// with the responses each layer gave them.
public final class ProbeDetector: Detector {
    public let name = "probe"
    let config: ProbeConfig

    struct State { var recent: RecentTimes; var first: Int64; var last: Int64; var rearmAt: Int64 = .min; var samples = SampleSet(); var statuses: [String: Int] = [:] }
    private var states: [LayerKey: State] = [:]
    private var nextSweep: Int64 = .min
    private var sweepAt = 0
    private(set) var alertCount = 0
    private(set) var probeRequests = 0
    /// Per layer, per response status ("-" when the layer logged none), over the whole run.
    private var responses: [Layer: [String: Int]] = [:]
    /// Per client (bounded: the first `maxClients`), probes and responses per layer.
    private var clients: [String: [Layer: [String: Int]]] = [:]
    private var clientOrder: [String] = []
    static let maxClients = 1000
    private var patternHits: [String: Int] = [:]

    public init(config: ProbeConfig = ProbeConfig()) { self.config = config }

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
        guard let path = r.path, let pattern = config.patterns.match(path) else { return }
        probeRequests += 1
        patternHits[pattern, default: 0] += 1
        let status = r.status.map(String.init) ?? (r.wafAction ?? "-")
        responses[r.layer, default: [:]][status, default: 0] += 1
        let ip = r.clientIP ?? "-"
        if clients[ip] != nil || clients.count < Self.maxClients {
            if clients[ip] == nil { clientOrder.append(ip) }
            clients[ip, default: [:]][r.layer, default: [:]][status, default: 0] += 1
        }
        let key = LayerKey(layer: r.layer, ip: ip)
        let t = r.time
        var s = states.removeValue(forKey: key) ?? State(recent: RecentTimes(capacity: config.threshold), first: t, last: t)
        if t - s.last > config.window { s.first = t; s.samples = SampleSet(); s.statuses = [:] }
        s.recent.add(t)
        s.last = t
        s.samples.add(path)
        s.statuses[status, default: 0] += 1
        if s.recent.isFull, let oldest = s.recent.oldest, t - oldest < config.window, t >= s.rearmAt {
            s.rearmAt = t + config.window
            alertCount += 1
            let responses = s.statuses.sorted { $0.key < $1.key }.map { "\($0.key)×\($0.value)" }.joined(separator: " ")
            alerts.append(Alert(time: t, detector: name, key: ip, value: Double(s.recent.count(since: t - config.window)),
                                count: s.statuses.values.reduce(0, +), window: Int(config.window / 1_000_000), action: "alert",
                                sample: s.samples.items, layer: r.layer, detail: "matched \(pattern); responses \(responses)",
                                first: s.first, last: t))
        }
        states[key] = s
    }

    public func finish(at time: Int64, alerts: inout [Alert]) {}

    public func summary() -> JSONValue {
        func histogram(_ h: [String: Int]) -> JSONValue { .object(h.sorted { $0.key < $1.key }.map { ($0.key, .int($0.value)) }) }
        let top = clientOrder.sorted { (clients[$0]?.values.reduce(0) { $0 + $1.values.reduce(0, +) } ?? 0) > (clients[$1]?.values.reduce(0) { $0 + $1.values.reduce(0, +) } ?? 0) }.prefix(50)
        return .object([
            ("alerts", .int(alertCount)),
            ("requests", .int(probeRequests)),
            ("patterns", histogram(patternHits)),
            ("responsesByLayer", .object(responses.sorted { $0.key < $1.key }.map { ($0.key.rawValue, histogram($0.value)) })),
            ("clients", .array(top.map { ip in
                .object([("ip", .string(ip)),
                         ("responsesByLayer", .object((clients[ip] ?? [:]).sorted { $0.key < $1.key }.map { ($0.key.rawValue, histogram($0.value)) }))])
            })),
        ])
    }
}
