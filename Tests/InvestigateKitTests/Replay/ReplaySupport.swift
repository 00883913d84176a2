import Foundation
@testable import InvestigateKit

/// Synthetic requests for replay tests, times in seconds after 2025-02-06 00:00:00 UTC.
enum Synthetic {
    static let base = CivilTime.micros(year: 2025, month: 2, day: 6, hour: 0, minute: 0, second: 0)

    static func at(_ seconds: Double) -> Int64 { base + Int64(seconds * 1_000_000) }

    static func request(_ seconds: Double, _ ip: String, _ path: String, status: Int? = 200, layer: Layer = .nginx,
                        method: String = "GET", query: String? = nil, userAgent: String? = "Mozilla/5.0",
                        extra: [String: String] = [:], wafAction: String? = nil, wafRule: String? = nil) -> ReplayRequest {
        ReplayRequest(time: at(seconds), layer: layer, clientIP: ip, method: method, path: path, query: query, status: status,
                      userAgent: userAgent, wafAction: wafAction, wafRule: wafRule, extra: extra)
    }

    static func event(_ r: ReplayRequest, line: Int, kind: EventKind = .access) -> Event {
        var e = Event(time: r.time, layer: r.layer, kind: kind, line: line, raw: Array("synthetic \(line)".utf8))
        e.clientIP = r.clientIP
        e.method = r.method
        e.path = r.path
        e.query = r.query
        e.status = r.status
        e.userAgent = r.userAgent
        e.wafAction = r.wafAction
        e.wafRule = r.wafRule
        e.extra = r.extra()
        return e
    }

    /// An in-memory timeline holding these requests (inserted through the ingest writer).
    static func store(_ requests: [ReplayRequest], extraEvents: [Event] = []) throws -> TimelineStore {
        let store = try TimelineStore()
        try store.write { db in
            try db.execute(sql: "INSERT INTO source (id, path, sha256, size, status, ingested_at) VALUES (1, 'synthetic', 'x', 0, 'ingested', 0)")
            let writer = try EventWriter(db: db, sourceID: 1)
            for (i, r) in requests.enumerated() { try writer.insert(event(r, line: i + 1)) }
            for e in extraEvents { try writer.insert(e) }
        }
        return store
    }

    /// Runs the detectors over the requests and returns the alerts and the engine.
    static func replay(_ requests: [ReplayRequest], options: ReplayOptions = ReplayOptions(), acl: WebACL? = nil,
                       rulesLayer: Layer? = nil) throws -> (alerts: [Alert], engine: ReplayEngine, summary: ReplaySummary) {
        let engine = ReplayEngine(options: options, acl: acl)
        var alerts: [Alert] = []
        let summary = try engine.run(requests, rulesLayer: rulesLayer) { alerts.append($0) }
        return (alerts, engine, summary)
    }

    static func options(_ detectors: Set<String>) -> ReplayOptions {
        var o = ReplayOptions()
        o.detectors = detectors
        return o
    }
}
