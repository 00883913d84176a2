import Foundation

/// One request as the detectors see it: what the client got, from the outermost layer that logged it.
public struct RequestSample: Sendable, Equatable {
    public var time: Int64
    public var layer: Layer
    public var clientIP: String?
    public var method: String?
    public var path: String?
    public var status: Int?
    public var userAgent: String?

    public init(time: Int64, layer: Layer, clientIP: String?, method: String?, path: String?, status: Int?, userAgent: String?) {
        self.time = time
        self.layer = layer
        self.clientIP = clientIP
        self.method = method
        self.path = path
        self.status = status
        self.userAgent = userAgent
    }

    public var isError: Bool { (status ?? 0) >= 400 }
}

/// What every detector is given: the window and its requests, one per correlated chain, in time order.
public struct DetectionInput: Sendable {
    public var from: Int64
    public var to: Int64
    public var requests: [RequestSample]
}

/// Something unusual in the window, worth naming next to the findings.
public struct Detection: Sendable, Equatable, Encodable {
    /// `scanner`, `flood`, `spike`, or what a plugged-in detector names.
    public var kind: String
    public var detector: String
    /// The client address or the minute it is about.
    public var subject: String
    public var summary: String
    public var count: Int
    public var first: Int64
    public var last: Int64

    public init(kind: String, detector: String, subject: String, summary: String, count: Int, first: Int64, last: Int64) {
        self.kind = kind
        self.detector = detector
        self.subject = subject
        self.summary = summary
        self.count = count
        self.first = first
        self.last = last
    }
}

/// The seam for detectors: the report runs every detector it is given over the window's requests.
/// The replay detectors (built elsewhere) plug in by conforming and being passed to `ReportBuilder`.
public protocol IncidentDetector: Sendable {
    var id: String { get }
    func detect(_ input: DetectionInput) -> [Detection]
}

/// Simple, explainable detectors computed from the window's requests alone.
public enum SimpleDetectors {
    public static let standard: [any IncidentDetector] = [ScannerDetector(), FloodDetector(), ErrorSpikeDetector()]
}

/// A client collecting errors across many paths: a scanner or a broken crawler.
public struct ScannerDetector: IncidentDetector {
    public let id = "scanner"
    public var minErrors = 10
    public var minPaths = 5
    public init() {}

    public func detect(_ input: DetectionInput) -> [Detection] {
        var byIP: [String: [RequestSample]] = [:]
        for r in input.requests where r.isError { if let ip = r.clientIP { byIP[ip, default: []].append(r) } }
        return byIP.compactMap { ip, errors -> Detection? in
            let paths = Set(errors.compactMap(\.path))
            guard errors.count >= minErrors, paths.count >= minPaths else { return nil }
            var perStatus: [Int: Int] = [:]
            for e in errors { if let s = e.status { perStatus[s, default: 0] += 1 } }
            let ranked: [(code: Int, n: Int)] = perStatus.map { (code: $0.key, n: $0.value) }
                .sorted { a, b in a.n != b.n ? a.n > b.n : a.code < b.code }
            let statuses = ranked.prefix(3).map { "\($0.code) ×\($0.n)" }.joined(separator: ", ")
            return Detection(kind: "scanner", detector: id, subject: ip,
                             summary: "\(ip) got \(errors.count) error responses across \(paths.count) distinct paths (\(statuses))",
                             count: errors.count, first: errors.map(\.time).min() ?? input.from, last: errors.map(\.time).max() ?? input.to)
        }
    }
}

/// A client sending many requests in one minute.
public struct FloodDetector: IncidentDetector {
    public let id = "flood"
    public var minPerMinute = 60
    public init() {}

    public func detect(_ input: DetectionInput) -> [Detection] {
        var perIP: [String: [Int64: [Int64]]] = [:]
        for r in input.requests {
            guard let ip = r.clientIP else { continue }
            perIP[ip, default: [:]][floorMinute(r.time), default: []].append(r.time)
        }
        return perIP.compactMap { ip, minutes -> Detection? in
            guard let busiest = minutes.max(by: { $0.value.count != $1.value.count ? $0.value.count < $1.value.count : $0.key > $1.key }),
                  busiest.value.count >= minPerMinute else { return nil }
            let all = minutes.values.flatMap { $0 }
            return Detection(kind: "flood", detector: id, subject: ip,
                             summary: "\(ip) sent \(busiest.value.count) requests in its busiest minute (\(all.count) in the window)",
                             count: all.count, first: all.min() ?? input.from, last: all.max() ?? input.to)
        }
    }
}

/// A minute whose error share stands out: at least half the responses, or three times the usual count.
public struct ErrorSpikeDetector: IncidentDetector {
    public let id = "spike"
    public var minResponses = 10
    public init() {}

    public func detect(_ input: DetectionInput) -> [Detection] {
        var minutes: [Int64: (total: Int, errors: Int)] = [:]
        for r in input.requests {
            let m = floorMinute(r.time)
            minutes[m, default: (0, 0)].total += 1
            if r.isError { minutes[m, default: (0, 0)].errors += 1 }
        }
        let errorCounts = minutes.values.map(\.errors).sorted()
        let median = errorCounts.isEmpty ? 0 : errorCounts[errorCounts.count / 2]
        return minutes.compactMap { minute, c -> Detection? in
            guard c.total >= minResponses, c.errors > 0 else { return nil }
            let share = Double(c.errors) / Double(c.total)
            let spike = c.errors >= max(5, 3 * max(median, 1)) && minutes.count > 2
            guard share >= 0.5 || spike else { return nil }
            let percent = Int((share * 100).rounded())
            return Detection(kind: "spike", detector: id, subject: TimeFormat.isoUTC(minute),
                             summary: "\(c.errors) of \(c.total) responses (\(percent)%) were errors in this minute (median \(median) errors per minute in the window)",
                             count: c.errors, first: minute, last: minute + 59_999_999)
        }
    }
}

@inline(__always) func floorMinute(_ t: Int64) -> Int64 {
    let m: Int64 = 60_000_000
    return t >= 0 ? t / m * m : ((t - m + 1) / m) * m
}
