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

    public init(config: BlocklistConfig = BlocklistConfig()) { self.config = config }

    /// An alert from another detector: block its client (or extend the block).
    public func react(to alert: Alert, alerts: inout [Alert]) {
        guard config.triggers.contains(alert.detector), alert.key != "-" else { return }
        let start = alert.time + config.delay
        let reason = "\(alert.detector)\(alert.layer.map { "@" + $0.rawValue } ?? "")"
        if var block = active[alert.key], start < block.until {
            block.until = max(block.until, start + config.ttl)
            if !block.reasons.contains(reason) { block.reasons.append(reason) }
            active[alert.key] = block
        } else {
            blocks += 1
            let block = Block(start: start, until: start + config.ttl, reasons: [reason])
            active[alert.key] = block
            alerts.append(Alert(time: start, detector: name, key: alert.key, value: Double(config.ttl / 1_000_000), count: 0,
                                window: Int(config.ttl / 1_000_000), action: "block",
                                sample: [], layer: alert.layer,
                                detail: "after \(reason) alert; until \(TimeFormat.isoUTC(start + config.ttl)) unless extended",
                                first: start, last: start + config.ttl))
        }
        nextExpiry = min(nextExpiry, active[alert.key]?.until ?? .max)
    }

    public func advance(to time: Int64, alerts: inout [Alert]) {
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
    }

    public func observe(_ r: ReplayRequest, alerts: inout [Alert]) {
        guard let ip = r.clientIP, var block = active[ip], r.time >= block.start, r.time < block.until else { return }
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
        // Blocks still running when the data ends are reported with their planned end.
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
