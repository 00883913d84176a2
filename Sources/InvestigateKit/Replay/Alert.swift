import Foundation

/// One alert, stamped with the event time at which a live system would have raised it.
///
/// JSON (one per line): `{"time","detector","key","value","count","window","action","sample"}`
/// plus `layer` and `detail` when known. `value` is the measured quantity (errors in the window,
/// an error share, requests in the window), `count` the requests it covers, `window` the
/// detector's window in seconds.
public struct Alert: Sendable, Equatable, Encodable {
    public var time: Int64
    public var detector: String
    public var key: String
    public var value: Double
    public var count: Int
    /// Seconds.
    public var window: Int
    public var action: String
    public var sample: [String]
    public var layer: Layer?
    public var detail: String?
    /// First and last request behind the alert, µs UTC.
    public var first: Int64?
    public var last: Int64?

    public init(time: Int64, detector: String, key: String, value: Double, count: Int, window: Int, action: String,
                sample: [String], layer: Layer? = nil, detail: String? = nil, first: Int64? = nil, last: Int64? = nil) {
        self.time = time
        self.detector = detector
        self.key = key
        self.value = value
        self.count = count
        self.window = window
        self.action = action
        self.sample = sample
        self.layer = layer
        self.detail = detail
        self.first = first
        self.last = last
    }

    enum CodingKeys: String, CodingKey { case time, detector, key, value, count, window, action, sample, layer, detail, first, last }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(TimeFormat.isoUTC(time), forKey: .time)
        try c.encode(detector, forKey: .detector)
        try c.encode(key, forKey: .key)
        try c.encode(value, forKey: .value)
        try c.encode(count, forKey: .count)
        try c.encode(window, forKey: .window)
        try c.encode(action, forKey: .action)
        try c.encode(sample, forKey: .sample)
        try c.encodeIfPresent(layer, forKey: .layer)
        try c.encodeIfPresent(detail, forKey: .detail)
        try c.encodeIfPresent(first.map(TimeFormat.isoUTC), forKey: .first)
        try c.encodeIfPresent(last.map(TimeFormat.isoUTC), forKey: .last)
    }

    /// One line for people; every log-derived text is escaped for the terminal.
    public func render(zone: ZoneSpec) -> String {
        var line = "\(TimeFormat.display(time, zone: zone)) \(detector) \(action) \(Escape.terminal(key, limit: 80))"
        if let layer { line += " [\(layer.rawValue)]" }
        line += " value=\(Alert.format(value)) count=\(count) window=\(window)s"
        if let first, let last {
            line += " first=\(TimeFormat.clock(first, zone: zone)) last=\(TimeFormat.clock(last, zone: zone))"
        }
        if let detail { line += " " + Escape.terminal(detail, limit: 200) }
        if !sample.isEmpty { line += " sample: " + sample.map { Escape.terminal($0, limit: 80) }.joined(separator: ", ") }
        return line
    }

    static func format(_ v: Double) -> String {
        v == v.rounded() && abs(v) < 1e15 ? String(Int64(v)) : String(format: "%.3f", v)
    }
}

/// Up to `limit` distinct strings, in first-seen order (sample paths of an alert).
struct SampleSet: Sendable {
    private(set) var items: [String] = []
    let limit: Int

    init(limit: Int = 5) { self.limit = limit }

    mutating func add(_ s: String?) {
        guard let s, items.count < limit, !items.contains(s) else { return }
        items.append(s)
    }
}
