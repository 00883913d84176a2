import Foundation

/// A detector sees every request in time order, as a live system would, and raises alerts.
///
/// The engine calls `advance(to:)` before each request (so timers due before it fire first, e.g.
/// a minute closing or a scheduled job running), then `observe`, and `finish` after the last one.
/// Alerts are appended to the buffer in time order. State is kept per layer and per key, and keys
/// idle for longer than a window are dropped, so memory follows the active keys, not the events.
public protocol Detector: AnyObject {
    var name: String { get }
    func advance(to time: Int64, alerts: inout [Alert])
    func observe(_ request: ReplayRequest, alerts: inout [Alert])
    func finish(at time: Int64, alerts: inout [Alert])
    /// What the run found, for the summary line.
    func summary() -> JSONValue
}

/// A small JSON value for summaries whose shape differs per detector.
public indirect enum JSONValue: Sendable, Equatable, Encodable {
    case string(String)
    case number(Double)
    case int(Int)
    case bool(Bool)
    case array([JSONValue])
    case object([(String, JSONValue)])
    case null

    public static func == (a: JSONValue, b: JSONValue) -> Bool {
        switch (a, b) {
        case let (.string(x), .string(y)): return x == y
        case let (.number(x), .number(y)): return x == y
        case let (.int(x), .int(y)): return x == y
        case let (.bool(x), .bool(y)): return x == y
        case let (.array(x), .array(y)): return x == y
        case let (.object(x), .object(y)): return x.map(\.0) == y.map(\.0) && x.map(\.1) == y.map(\.1)
        case (.null, .null): return true
        default: return false
        }
    }

    struct Key: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(_ s: String) { stringValue = s }
        init?(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    public func encode(to encoder: Encoder) throws {
        switch self {
        case .string(let s): var c = encoder.singleValueContainer(); try c.encode(s)
        case .number(let d): var c = encoder.singleValueContainer(); try c.encode(d.isFinite ? d : 0)
        case .int(let i): var c = encoder.singleValueContainer(); try c.encode(i)
        case .bool(let b): var c = encoder.singleValueContainer(); try c.encode(b)
        case .null: var c = encoder.singleValueContainer(); try c.encodeNil()
        case .array(let a): var c = encoder.unkeyedContainer(); for v in a { try c.encode(v) }
        case .object(let o): var c = encoder.container(keyedBy: Key.self); for (k, v) in o { try c.encode(v, forKey: Key(k)) }
        }
    }

    public subscript(key: String) -> JSONValue? {
        if case .object(let o) = self { return o.first { $0.0 == key }?.1 }
        return nil
    }

    public var intValue: Int? { if case .int(let i) = self { return i } else { return nil } }
    public var stringValue: String? { if case .string(let s) = self { return s } else { return nil } }
    public var arrayValue: [JSONValue]? { if case .array(let a) = self { return a } else { return nil } }
}

/// A detector's state key: one client at one layer.
public struct LayerKey: Hashable, Sendable {
    public var layer: Layer
    public var ip: String
}

/// The last `capacity` timestamps of a key, in a ring that grows only as far as needed: "N events
/// within W" holds when the oldest of the last N is within W of the newest.
struct RecentTimes {
    private var ring: [Int64] = []
    private var head = 0
    let capacity: Int

    init(capacity: Int) { self.capacity = max(1, capacity) }

    mutating func add(_ t: Int64) {
        if ring.count < capacity { ring.append(t); return }
        ring[head] = t
        head = (head + 1) % capacity
    }

    var isFull: Bool { ring.count == capacity }

    /// The oldest of the last `capacity` times (meaningful when full).
    var oldest: Int64? { ring.isEmpty ? nil : (ring.count < capacity ? ring[0] : ring[head]) }

    /// How many of the kept times are at or after `t`.
    func count(since t: Int64) -> Int { ring.reduce(0) { $0 + ($1 >= t ? 1 : 0) } }
}

/// Path patterns of script probes: `.php` (an extension: a path segment ends with it), `wp-*`
/// (a segment starts with it), `/.git/` (anything else: the path contains it). ASCII
/// case-insensitive, matched on the path's bytes without allocating.
public struct ProbePatterns: Sendable, Equatable {
    enum Kind: Sendable, Equatable { case suffix, segmentPrefix, contains }
    struct Pattern: Sendable, Equatable {
        var kind: Kind
        var bytes: [UInt8]
        var text: String
        /// `/.git/` without its last slash: it also matches a path that ends there.
        var directory: [UInt8]?
        init(kind: Kind, bytes: [UInt8], text: String) {
            self.kind = kind
            self.bytes = bytes
            self.text = text
            directory = kind == .contains && bytes.count > 1 && bytes.last == UInt8(ascii: "/") ? Array(bytes.dropLast()) : nil
        }
    }
    let patterns: [Pattern]
    // The same, split by kind and flattened, for the per-request match.
    private let suffixes: [(bytes: [UInt8], text: String)]
    private let prefixes: [(bytes: [UInt8], text: String)]
    private let fragments: [(bytes: [UInt8], directory: [UInt8]?, text: String)]
    /// Suffixes and prefixes in list order, so the first listed pattern wins as before.
    private let segmentOrder: [(isSuffix: Bool, index: Int)]

    public static let defaultList = [".php", ".asp", ".aspx", ".jsp", ".cgi", ".exe", ".dll", ".sh", ".bat", "/.env", "/.git/", "wp-*"]
    public static let standard = ProbePatterns(defaultList)

    public init(_ list: [String]) {
        patterns = list.compactMap { raw in
            let text = raw.trimmingCharacters(in: .whitespaces)
            guard !text.isEmpty else { return nil }
            if text.hasPrefix("."), !text.contains("/") { return Pattern(kind: .suffix, bytes: Array(text.lowercased().utf8), text: text) }
            if text.hasSuffix("*") { return Pattern(kind: .segmentPrefix, bytes: Array(text.dropLast().lowercased().utf8), text: text) }
            return Pattern(kind: .contains, bytes: Array(text.lowercased().utf8), text: text)
        }
        var suffixes: [(bytes: [UInt8], text: String)] = []
        var prefixes: [(bytes: [UInt8], text: String)] = []
        var order: [(isSuffix: Bool, index: Int)] = []
        for p in patterns {
            switch p.kind {
            case .suffix: order.append((true, suffixes.count)); suffixes.append((p.bytes, p.text))
            case .segmentPrefix: order.append((false, prefixes.count)); prefixes.append((p.bytes, p.text))
            case .contains: break
            }
        }
        self.suffixes = suffixes
        self.prefixes = prefixes
        segmentOrder = order
        fragments = patterns.filter { $0.kind == .contains }.map { ($0.bytes, $0.directory, $0.text) }
    }

    public static func == (a: ProbePatterns, b: ProbePatterns) -> Bool { a.patterns == b.patterns }

    /// The first pattern the path matches.
    public func match(_ path: String) -> String? {
        var path = path
        return path.withUTF8 { match(bytes: $0) }
    }

    /// One pass over the path: suffix patterns are tried at the end of each segment that holds a
    /// dot, prefix patterns at each segment start, contains patterns by a first-byte scan.
    func match(bytes p: UnsafeBufferPointer<UInt8>) -> String? {
        var start = 0
        var sawDot = false
        var i = 0
        let n = p.count
        while i <= n {
            let b: UInt8 = i < n ? p[i] : UInt8(ascii: "/")
            if b == UInt8(ascii: "/") || b == UInt8(ascii: ";") {
                if i > start {
                    for k in segmentOrder.indices {
                        let entry = segmentOrder[k]
                        if entry.isSuffix {
                            if sawDot, ProbePatterns.hasSuffix(suffixes[entry.index].bytes, p, end: i) { return suffixes[entry.index].text }
                        } else if ProbePatterns.hasPrefix(prefixes[entry.index].bytes, p, start: start, end: i) {
                            return prefixes[entry.index].text
                        }
                    }
                }
                start = i + 1
                sawDot = false
            } else if b == UInt8(ascii: ".") {
                sawDot = true
            }
            i += 1
        }
        for k in fragments.indices {
            if ProbePatterns.find(fragments[k].bytes, in: p) { return fragments[k].text }
            // `/.git/` also matches a path ending in `/.git`.
            if let directory = fragments[k].directory, ProbePatterns.hasSuffix(directory, p, end: p.count) { return fragments[k].text }
        }
        return nil
    }

    @inline(__always) static func lower(_ b: UInt8) -> UInt8 { b >= 65 && b <= 90 ? b + 32 : b }

    static func hasSuffix(_ s: [UInt8], _ p: UnsafeBufferPointer<UInt8>, end: Int) -> Bool {
        guard !s.isEmpty, end >= s.count else { return false }
        let base = end - s.count
        for k in 0..<s.count where lower(p[base + k]) != s[k] { return false }
        return true
    }

    static func hasPrefix(_ s: [UInt8], _ p: UnsafeBufferPointer<UInt8>, start: Int, end: Int) -> Bool {
        guard !s.isEmpty, end - start >= s.count else { return false }
        for k in 0..<s.count where lower(p[start + k]) != s[k] { return false }
        return true
    }

    static func find(_ s: [UInt8], in p: UnsafeBufferPointer<UInt8>) -> Bool {
        guard !s.isEmpty, p.count >= s.count else { return false }
        var i = 0
        while i + s.count <= p.count {
            if lower(p[i]) == s[0] {
                var k = 1
                while k < s.count, lower(p[i + k]) == s[k] { k += 1 }
                if k == s.count { return true }
            }
            i += 1
        }
        return false
    }
}

extension Dictionary {
    /// Removes entries in place. `filter` would build a new dictionary sized to the survivors,
    /// which then rehashes as it grows back: costly when sweeping idle keys every window.
    mutating func removeEntries(where shouldRemove: (Value) -> Bool) {
        var stale: [Key] = []
        // Through indices the values are borrowed, not copied (a copy retains every array inside).
        var i = values.startIndex
        while i != values.endIndex {
            if shouldRemove(values[i]) { stale.append(keys[i]) }
            values.formIndex(after: &i)
        }
        for key in stale { removeValue(forKey: key) }
    }
}
