import Foundation

public struct SpikeConfig: Sendable, Equatable {
    /// Minutes of history (with traffic) that form the rolling baseline.
    public var baselineMinutes: Int = 30
    /// A minute spikes when its error share is at least `factor` × the baseline share …
    public var factor: Double = 2
    /// … and at least `minIncrease` above it (shares, 0…1) …
    public var minIncrease: Double = 0.2
    /// … and the layer answered at least this many requests in that minute.
    public var minRequests: Int = 20

    public init(baselineMinutes: Int = 30, factor: Double = 2, minIncrease: Double = 0.2, minRequests: Int = 20) {
        self.baselineMinutes = baselineMinutes
        self.factor = factor
        self.minIncrease = minIncrease
        self.minRequests = minRequests
    }
}

/// spike: per layer and per minute, the share of 4xx and of 5xx responses against the mean share
/// of the previous minutes with traffic. The alert fires when the minute closes and names the
/// clients and paths behind the errors. Spiking minutes stay out of the baseline, so a long
/// incident does not become the new normal.
public final class SpikeDetector: Detector {
    public let name = "spike"
    let config: SpikeConfig
    static let minute: Int64 = 60_000_000
    /// Distinct clients/paths tallied per minute and layer; more fall into "other".
    static let maxTallyKeys = 2000

    struct Minute {
        var start: Int64
        var total = 0
        var e4 = 0
        var e5 = 0
        var ips: [String: Int] = [:]
        var paths: [String: Int] = [:]

        mutating func count(_ r: ReplayRequest, status: Int) {
            total += 1
            guard status >= 400 else { return }
            if status >= 500 { e5 += 1 } else { e4 += 1 }
            let ip = r.clientIP ?? "-"
            if ips[ip] != nil || ips.count < SpikeDetector.maxTallyKeys { ips[ip, default: 0] += 1 } else { ips["other", default: 0] += 1 }
            let path = r.path ?? "-"
            if paths[path] != nil || paths.count < SpikeDetector.maxTallyKeys { paths[path, default: 0] += 1 } else { paths["other", default: 0] += 1 }
        }
    }

    struct LayerState {
        var current: Minute
        var history4: [Double] = []
        var history5: [Double] = []
    }

    /// Indexed by `Layer.depth` (an array: this is touched by every request).
    private var layers: [LayerState?] = Array(repeating: nil, count: Layer.allCases.count)
    private var nextClose: Int64 = .max
    private(set) var alertCount = 0
    private var spikeMinutes: [Layer: Int] = [:]

    public init(config: SpikeConfig = SpikeConfig()) { self.config = config }

    public func advance(to time: Int64, alerts: inout [Alert]) {
        guard time >= nextClose else { return }
        closeMinutes(before: time, alerts: &alerts)
    }

    private func closeMinutes(before time: Int64, alerts: inout [Alert]) {
        for layer in Layer.allCases.sorted() {
            guard let current = layers[layer.depth]?.current, current.start + Self.minute <= time,
                  var state = layers[layer.depth] else { continue }
            layers[layer.depth] = nil
            close(layer, &state, alerts: &alerts)
            state.current = Minute(start: ScanDetector.floorDiv(time, Self.minute) * Self.minute)
            layers[layer.depth] = state
        }
        nextClose = layers.compactMap { $0.map { $0.current.start + Self.minute } }.min() ?? .max
    }

    public func observe(_ r: ReplayRequest, alerts: inout [Alert]) {
        guard let status = r.status else { return }
        let start = ScanDetector.floorDiv(r.time, Self.minute) * Self.minute
        // Mutated in place through the dictionary (no copy of the minute's tallies).
        let i = r.layer.depth
        if layers[i] == nil { layers[i] = LayerState(current: Minute(start: start)) }
        layers[i]?.current.count(r, status: status)
        nextClose = min(nextClose, start + Self.minute)
    }

    private func close(_ layer: Layer, _ state: inout LayerState, alerts: inout [Alert]) {
        let m = state.current
        guard m.total > 0 else { return }
        let share4 = Double(m.e4) / Double(m.total), share5 = Double(m.e5) / Double(m.total)
        let spiked4 = check("4xx", share4, m.e4, history: state.history4, layer: layer, m, alerts: &alerts)
        let spiked5 = check("5xx", share5, m.e5, history: state.history5, layer: layer, m, alerts: &alerts)
        if !spiked4 && !spiked5 {
            state.history4.append(share4)
            state.history5.append(share5)
            if state.history4.count > config.baselineMinutes { state.history4.removeFirst() }
            if state.history5.count > config.baselineMinutes { state.history5.removeFirst() }
        } else {
            spikeMinutes[layer, default: 0] += 1
        }
    }

    private func check(_ cls: String, _ share: Double, _ errors: Int, history: [Double], layer: Layer, _ m: Minute,
                       alerts: inout [Alert]) -> Bool {
        let baseline = history.isEmpty ? 0 : history.reduce(0, +) / Double(history.count)
        guard m.total >= config.minRequests, share >= baseline * config.factor, share - baseline >= config.minIncrease else { return false }
        alertCount += 1
        let topIPs = m.ips.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }.prefix(5).map { "\($0.key) (\($0.value))" }
        let topPaths = m.paths.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }.prefix(5).map { "\($0.key) (\($0.value))" }
        alerts.append(Alert(time: m.start + Self.minute, detector: name, key: cls, value: (share * 1000).rounded() / 1000, count: errors,
                            window: 60, action: "alert", sample: topPaths, layer: layer,
                            detail: "\(cls) share \(String(format: "%.3f", share)) of \(m.total) responses vs baseline "
                                + "\(String(format: "%.3f", baseline)) over \(history.count) min; clients: " + topIPs.joined(separator: ", "),
                            first: m.start, last: m.start + Self.minute))
        return true
    }

    public func finish(at time: Int64, alerts: inout [Alert]) {
        closeMinutes(before: .max - Self.minute, alerts: &alerts)
    }

    public func summary() -> JSONValue {
        .object([("alerts", .int(alertCount)),
                 ("spikeMinutesByLayer", .object(spikeMinutes.sorted { $0.key < $1.key }.map { ($0.key.rawValue, .int($0.value)) }))])
    }
}
