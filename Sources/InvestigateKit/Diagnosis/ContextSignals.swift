import Foundation
import GRDB

/// Signals beside the logs that the diagnosis cites but never answers from alone: CloudWatch
/// metric datapoints that count a layer's errors (kind `metric`), GuardDuty and Inspector
/// findings (kind `finding`).
public struct ContextSignal: Sendable, Encodable, Equatable {
    /// `metric`, `guardduty` or `inspector`.
    public var kind: String
    public var layer: String
    /// One line for a person; log-derived text, escaped by whoever renders it.
    public var text: String
    /// For a metric that counted more errors than the layer's logs show: what that layer leaves unlogged.
    public var unlogged: String?
    public var evidence: [EvidenceLine]
    /// The client address a finding names (not encoded).
    public var clientIP: String?
    /// The metric's total in the window and what the logs show (not encoded).
    public var counted: Double?
    public var logged: Int?
    /// The status family a metric counts (4 or 5), nil for blocks and rejected connections (not encoded).
    public var statusFamily: Int?

    enum CodingKeys: String, CodingKey { case kind, layer, text, unlogged, evidence }
}

enum ContextSignals {
    /// The HTTP status family an error metric counts, and which status column of the layer's
    /// records shows the same responses.
    static func family(_ metric: String) -> Int? {
        if metric.contains("4XX") { return 4 }
        if metric.contains("5XX") || metric.hasSuffix("502_Count") || metric.hasSuffix("503_Count") || metric.hasSuffix("504_Count") { return 5 }
        return nil
    }

    /// Error-counting metrics of known layers in the window, each compared with what that
    /// layer's logs show in the same minutes.
    static func metrics(_ db: Database, _ q: DiagnosisQuery, sources: SourceIndex, zone: ZoneSpec) throws -> [ContextSignal] {
        let rows = try StoredEvent.fetchAll(db, sql: """
            SELECT \(StoredEvent.columns) FROM event WHERE kind = 'metric' AND copy_of IS NULL AND layer <> 'system' AND time >= ? AND time <= ?
            ORDER BY time, id
            """, arguments: [q.from - 86_400_000_000, q.to])
        struct Key: Hashable { var layer: Layer; var namespace: String; var metric: String; var dimensions: String }
        var groups: [Key: [(e: StoredEvent, value: Double, period: Int64)]] = [:]
        var order: [Key] = []
        for r in rows {
            let x = r.event.extra
            guard let metric = x["metric"], MetricCatalog.countsErrors(metric), x["stat"] == "Sum",
                  let value = x["value"].flatMap(Double.init), let t = r.event.time else { continue }
            let period = (x["period"].flatMap { Int64($0) } ?? 60) * 1_000_000
            guard t <= q.to, t + period > q.from else { continue }
            let key = Key(layer: r.event.layer, namespace: x["namespace"] ?? "", metric: metric, dimensions: x["dimensions"] ?? "")
            if groups[key] == nil { order.append(key) }
            groups[key, default: []].append((r, value, period))
        }
        var out: [ContextSignal] = []
        for key in order {
            let points = groups[key]!
            let counted = points.reduce(0) { $0 + $1.value }
            let nonzero = points.filter { $0.value > 0 }
            guard counted > 0, let lo = nonzero.map({ $0.e.event.time! }).min(),
                  let hi = nonzero.map({ $0.e.event.time! + $0.period }).max() else { continue }
            let logged = try loggedCount(db, layer: key.layer, metric: key.metric, from: lo, to: hi)
            let name = [key.namespace.isEmpty ? nil : key.namespace, key.metric].compactMap { $0 }.joined(separator: " ")
            let dims = key.dimensions.isEmpty ? "" : " (\(key.dimensions))"
            let minutes = nonzero.prefix(8).map { "\(TimeFormat.display($0.e.event.time!, zone: zone, millis: false).split(separator: " ").dropFirst().first.map(String.init) ?? "?") \(number($0.value))" }
            let span = "\(TimeFormat.display(lo, zone: zone, millis: false)) to \(TimeFormat.display(hi, zone: zone, millis: false))"
            var text = "CloudWatch \(name)\(dims) counted \(number(counted)) from \(span) (\(minutes.joined(separator: ", "))\(nonzero.count > 8 ? ", …" : ""))"
            let gap = Double(logged) < counted
            let hasLogs = try Bool.fetchOne(db, sql: "SELECT EXISTS (SELECT 1 FROM source_layer WHERE layer = ?)", arguments: [key.layer.rawValue]) ?? false
            if !hasLogs {
                text += "; no \(key.layer.rawValue) logs were given to show them"
            } else {
                text += "; the \(key.layer.rawValue) logs given show \(logged) such response\(logged == 1 ? "" : "s") in those minutes"
                text += gap ? "" : ": they agree"
            }
            text += "."
            out.append(ContextSignal(kind: "metric", layer: key.layer.rawValue, text: text,
                                     unlogged: gap ? MetricCatalog.unlogged(key.layer) : nil,
                                     evidence: nonzero.prefix(5).map { evidence($0.e, sources) }, counted: counted, logged: logged,
                                     statusFamily: family(key.metric)))
        }
        return out
    }

    /// The layer's own records of the responses a metric counts, in `from..<to`.
    static func loggedCount(_ db: Database, layer: Layer, metric: String, from: Int64, to: Int64) throws -> Int {
        var condition: String
        switch metric {
        case "BlockedRequests": condition = "upper(waf_action) = 'BLOCK'"
        case "RejectedConnectionCount": return 0
        case let m where m.hasPrefix("HTTPCode_ELB_"): condition = "elb_status / 100 = \(family(m) ?? 5) AND target_status IS NULL"
        case let m where m.hasPrefix("HTTPCode_Target_"): condition = "target_status / 100 = \(family(m) ?? 5)"
        case "Errors": condition = "status >= 500"
        default: condition = "status / 100 = \(family(metric) ?? 5)"
        }
        // The family is a digit from a fixed table and the layer a fixed name: nothing from the logs is inlined.
        let access = try Int.fetchOne(db, sql: """
            SELECT count(*) FROM event WHERE layer = ? AND kind = 'access' AND copy_of IS NULL AND time >= ? AND time < ? AND \(condition)
            """, arguments: [layer.rawValue, from, to]) ?? 0
        if access > 0 { return access }
        return try Int.fetchOne(db, sql: """
            SELECT count(*) FROM event WHERE layer = ? AND kind = 'log' AND copy_of IS NULL AND time >= ? AND time < ? AND \(condition)
            """, arguments: [layer.rawValue, from, to]) ?? 0
    }

    /// GuardDuty findings active in the window (first seen before its end, last seen after its start).
    static func guardDuty(_ db: Database, _ q: DiagnosisQuery, sources: SourceIndex) throws -> [ContextSignal] {
        let rows = try StoredEvent.fetchAll(db, sql: """
            SELECT e.*, \(StoredEvent.raw("e")) FROM event e JOIN source s ON s.id = e.source_id
            WHERE e.kind = 'finding' AND s.format = 'guardduty-findings' AND e.copy_of IS NULL
              AND e.time >= ? AND coalesce(e.alt_time, e.time) <= ?
            ORDER BY e.time, e.id LIMIT 50
            """, arguments: [q.from, q.to])
        return rows.map { r in
            ContextSignal(kind: "guardduty", layer: r.event.layer.rawValue, text: r.event.message ?? r.text, unlogged: nil,
                          evidence: [evidence(r, sources)], clientIP: r.event.clientIP)
        }
    }

    /// Inspector findings about the layers named in the answer.
    static func inspector(_ db: Database, layers: Set<String>, sources: SourceIndex) throws -> [ContextSignal] {
        guard !layers.isEmpty else { return [] }
        let marks = layers.map { _ in "?" }.joined(separator: ",")
        let rows = try StoredEvent.fetchAll(db, sql: """
            SELECT e.*, \(StoredEvent.raw("e")) FROM event e JOIN source s ON s.id = e.source_id
            WHERE e.kind = 'finding' AND s.format = 'inspector-findings' AND e.copy_of IS NULL AND e.layer IN (\(marks))
            ORDER BY e.layer, e.time DESC, e.id LIMIT 50
            """, arguments: StatementArguments(Array(layers).sorted()))
        return rows.map { r in
            ContextSignal(kind: "inspector", layer: r.event.layer.rawValue, text: r.event.message ?? r.text, unlogged: nil,
                          evidence: [evidence(r, sources)])
        }
    }

    static func evidence(_ e: StoredEvent, _ sources: SourceIndex) -> EvidenceLine {
        EvidenceLine(layer: e.event.layer.rawValue, source: sources.path(e.sourceID), line: e.event.line,
                     time: e.event.time.map(TimeFormat.isoUTCMillis), text: e.event.message ?? e.text, micros: e.event.time)
    }

    static func number(_ v: Double) -> String {
        v == v.rounded() && abs(v) < 1e15 ? String(Int64(v)) : String(format: "%.2f", v)
    }
}
