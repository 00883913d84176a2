import Foundation

public struct BlocklistConfig: Sendable, Equatable {
    /// How long an alerted client stays blocked; a new alert while blocked extends it.
    public var ttl: Int64 = 3_600_000_000
    /// The automation's reaction time between the alert and the block.
    public var delay: Int64 = 0
    /// Detectors whose alerts block the client they name.
    public var triggers: Set<String> = ["scan", "probe", "rate"]

    public init(ttl: Int64 = 3_600_000_000, delay: Int64 = 0, triggers: Set<String> = ["scan", "probe", "rate"]) {
        self.ttl = ttl
        self.delay = delay
        self.triggers = triggers
    }
}

/// One client's block, from the moment it took effect to the moment it lapsed (its TTL after the
/// last alert that extended it), with the alerts that caused it (`scan@nginx`, …).
public struct BlockPeriod: Sendable, Equatable {
    public var address: String
    public var start: Int64
    public var until: Int64
    public var reasons: [String]
    /// Requests the block stopped at the outermost layer that logged them.
    public var stopped: Int

    public init(address: String, start: Int64, until: Int64, reasons: [String], stopped: Int = 0) {
        self.address = address
        self.start = start
        self.until = until
        self.reasons = reasons
        self.stopped = stopped
    }
}

/// blocklist: what an automation that blocks every alerted client for a TTL would have blocked,
/// when, and until when. It counts the blocked client's requests per layer (each layer logs the
/// same request; the outermost layer's count is the number of requests blocked). Alerts:
/// `block` when a block starts, `unblock` when it ends, with the requests it stopped.
public final class BlocklistSimulator: Detector {
    public let name = "blocklist"
    let config: BlocklistConfig

    struct Block {
        var start: Int64
        var until: Int64
        var reasons: [String]
        var blocked: [Layer: Int] = [:]
        var samples = SampleSet()
    }

    private var active: [String: Block] = [:]
    private var nextExpiry: Int64 = .max
    private(set) var blocks = 0
    private var blockedByLayer: [Layer: Int] = [:]
    private var finished: [(ip: String, block: Block)] = []
    static let keptBlocks = 200
    /// Every block that ended, in the order they ended (what an IP set and its schedule are built
    /// from: `BlocklistIPSets`). One entry per block, not per request: memory follows the blocks.
    public private(set) var periods: [BlockPeriod] = []

    public init(config: BlocklistConfig = BlocklistConfig()) { self.config = config }

    /// Blocks decided but not yet in force (the reaction delay), in decision order.
    private var pending: [(ip: String, start: Int64, reason: String, layer: Layer?)] = []

    /// An alert from another detector: block its client (or extend the block) once the reaction
    /// delay has passed.
    public func react(to alert: Alert, alerts: inout [Alert]) {
        guard config.triggers.contains(alert.detector), alert.key != "-" else { return }
        let reason = "\(alert.detector)\(alert.layer.map { "@" + $0.rawValue } ?? "")"
        pending.append((alert.key, alert.time + config.delay, reason, alert.layer))
        activate(upTo: alert.time, alerts: &alerts)
    }

    /// Puts pending blocks whose start has come into force; the `block` alert carries that start.
    private func activate(upTo time: Int64, alerts: inout [Alert]) {
        guard pending.contains(where: { $0.start <= time }) else { return }
        let due = pending.filter { $0.start <= time }.sorted { $0.start < $1.start }
        pending.removeAll { $0.start <= time }
        for item in due {
            if var block = active[item.ip], item.start < block.until {
                block.until = max(block.until, item.start + config.ttl)
                if !block.reasons.contains(item.reason) { block.reasons.append(item.reason) }
                active[item.ip] = block
            } else {
                if let old = active.removeValue(forKey: item.ip) { end(item.ip, old, at: old.until, alerts: &alerts) }
                blocks += 1
                active[item.ip] = Block(start: item.start, until: item.start + config.ttl, reasons: [item.reason])
                alerts.append(Alert(time: item.start, detector: name, key: item.ip, value: Double(config.ttl / 1_000_000), count: 0,
                                    window: Int(config.ttl / 1_000_000), action: "block", sample: [], layer: item.layer,
                                    detail: "after \(item.reason) alert; until \(TimeFormat.isoUTC(item.start + config.ttl)) unless extended",
                                    first: item.start, last: item.start + config.ttl))
            }
            nextExpiry = min(nextExpiry, active[item.ip]?.until ?? .max)
        }
    }

    public func advance(to time: Int64, alerts: inout [Alert]) {
        if !pending.isEmpty { activate(upTo: time, alerts: &alerts) }
        guard time >= nextExpiry else { return }
        expire(upTo: time, alerts: &alerts)
    }

    private func expire(upTo time: Int64, alerts: inout [Alert]) {
        let due = active.filter { $0.value.until <= time }.sorted { ($0.value.until, $0.key) < ($1.value.until, $1.key) }
        for (ip, block) in due {
            active[ip] = nil
            end(ip, block, at: block.until, alerts: &alerts)
        }
        nextExpiry = active.values.map(\.until).min() ?? .max
    }

    private func end(_ ip: String, _ block: Block, at time: Int64, alerts: inout [Alert]) {
        let outermost = block.blocked.keys.min()
        let stopped = outermost.flatMap { block.blocked[$0] } ?? 0
        let perLayer = block.blocked.sorted { $0.key < $1.key }.map { "\($0.key.rawValue) \($0.value)" }.joined(separator: ", ")
        alerts.append(Alert(time: time, detector: name, key: ip, value: Double(stopped), count: stopped,
                            window: Int((block.until - block.start) / 1_000_000), action: "unblock", sample: block.samples.items,
                            layer: outermost, detail: "blocked \(stopped) requests (\(perLayer.isEmpty ? "none logged" : perLayer)); reasons: \(block.reasons.joined(separator: ", "))",
                            first: block.start, last: block.until))
        if finished.count < Self.keptBlocks { finished.append((ip, block)) }
        periods.append(BlockPeriod(address: ip, start: block.start, until: block.until, reasons: block.reasons, stopped: stopped))
    }

    public func observe(_ r: ReplayRequest, alerts: inout [Alert]) {
        guard !active.isEmpty, let ip = r.clientIP, var block = active[ip], r.time >= block.start, r.time < block.until else { return }
        block.blocked[r.layer, default: 0] += 1
        blockedByLayer[r.layer, default: 0] += 1
        block.samples.add(r.path)
        active[ip] = block
    }

    /// Whether `ip` is blocked at `time` (tests).
    public func isBlocked(_ ip: String, at time: Int64) -> Bool {
        guard let block = active[ip] else { return false }
        return time >= block.start && time < block.until
    }

    public func finish(at time: Int64, alerts: inout [Alert]) {
        // Blocks still pending or running when the data ends are reported with their planned end.
        activate(upTo: .max, alerts: &alerts)
        expire(upTo: .max, alerts: &alerts)
    }

    public func summary() -> JSONValue {
        .object([
            ("blocks", .int(blocks)),
            ("ttlSeconds", .int(Int(config.ttl / 1_000_000))),
            ("blockedRequestsByLayer", .object(blockedByLayer.sorted { $0.key < $1.key }.map { ($0.key.rawValue, .int($0.value)) })),
            ("list", .array(finished.map { item in
                .object([("ip", .string(item.ip)), ("start", .string(TimeFormat.isoUTC(item.block.start))),
                         ("until", .string(TimeFormat.isoUTC(item.block.until))),
                         ("blocked", .object(item.block.blocked.sorted { $0.key < $1.key }.map { ($0.key.rawValue, .int($0.value)) })),
                         ("reasons", .array(item.block.reasons.map(JSONValue.string)))])
            })),
        ])
    }
}
