import Foundation
import GRDB
import Testing
@testable import InvestigateKit

/// Stores hand-made events as if one file had been ingested.
func insert(_ events: [Event], into store: TimelineStore, path: String = "synthetic.log") throws {
    try store.write { db in
        try db.execute(sql: """
            INSERT INTO source (path, sha256, size, format, status, lines, events, ingested_at)
            VALUES (?, ?, 0, 'synthetic', 'complete', ?, ?, 0)
            """, arguments: [path, UUID().uuidString, events.count, events.count])
        let sourceID = db.lastInsertedRowID
        let writer = try EventWriter(db: db, sourceID: sourceID)
        for e in events { try writer.insert(e) }
        // The source's id range and coverage, as the ingest pipeline records them.
        try db.execute(sql: """
            UPDATE source SET first_event_id = (SELECT min(id) FROM event WHERE source_id = ?),
                              last_event_id = (SELECT max(id) FROM event WHERE source_id = ?) WHERE id = ?
            """, arguments: [sourceID, sourceID, sourceID])
        for (layer, group) in Dictionary(grouping: events, by: \.layer) {
            let times = group.compactMap(\.time)
            try db.execute(sql: "INSERT INTO source_layer (source_id, layer, events, first_time, last_time) VALUES (?,?,?,?,?)",
                           arguments: [sourceID, layer.rawValue, group.count, times.min(), times.max()])
        }
    }
}

/// A tiny builder for events of each layer, with the conventions the importers follow.
enum Make {
    static let base = CivilTime.micros(year: 2025, month: 2, day: 6, hour: 5, minute: 32, second: 0)
    static func s(_ seconds: Double) -> Int64 { base + Int64(seconds * 1e6) }

    static func waf(_ t: Double, ip: String, path: String, action: String = "ALLOW", trace: String? = nil, line: Int = 1) -> Event {
        var e = Event(time: s(t), layer: .waf, kind: .access, line: line, raw: Array("waf \(line)".utf8))
        e.clientIP = ip; e.method = "GET"; e.path = path; e.wafAction = action; e.traceID = trace
        e.status = action == "BLOCK" ? 403 : nil
        if action == "BLOCK" { e.wafRule = "AWS-AWSManagedRulesCommonRuleSet" }
        return e
    }

    static func alb(_ arrival: Double, _ done: Double, ip: String, path: String, elb: Int, target: Int?, trace: String? = nil, line: Int = 1) -> Event {
        var e = Event(time: s(done), layer: .alb, kind: .access, line: line, raw: Array("alb \(line)".utf8))
        e.clientIP = ip; e.method = "GET"; e.path = path; e.status = elb; e.elbStatus = elb; e.targetStatus = target
        e.traceID = trace
        e.extra["request_creation_us"] = String(s(arrival))
        return e
    }

    static func nginx(_ done: Double, rt: Double, ip: String, path: String, status: Int, peer: String = "10.1.1.210", line: Int = 1) -> Event {
        // nginx stamps whole seconds.
        let whole = (s(done) / 1_000_000) * 1_000_000
        var e = Event(time: whole, layer: .nginx, kind: .access, line: line, raw: Array("nginx \(line)".utf8))
        e.clientIP = ip; e.peerIP = peer; e.forwardedFor = ip; e.method = "GET"; e.path = path; e.status = status
        e.duration = Int64(rt * 1e6)
        return e
    }

    static func appResponse(_ t: Double, path: String, status: Int, line: Int = 1) -> Event {
        var e = Event(time: s(t), layer: .app, kind: .access, line: line, raw: Array("app \(line)".utf8))
        e.path = path; e.status = status; e.message = "Response: \(status) http://example.com:443\(path)"
        return e
    }
}

@Suite struct CorrelationTests {
    func chains(_ store: TimelineStore) throws -> [[String]] {
        try store.read { db in
            let rows = try Row.fetchAll(db, sql: """
                SELECT l.chain_id, e.layer || ':' || e.line AS tag FROM link l JOIN event e ON e.id = l.event_id ORDER BY l.chain_id, e.layer, e.line
                """)
            return Dictionary(grouping: rows, by: { $0["chain_id"] as Int64 }).sorted { $0.key < $1.key }
                .map { $0.value.map { $0["tag"] as String } }
        }
    }

    @Test func traceIDsAndFuzzyKeysBuildOneChainPerRequest() throws {
        let store = try TimelineStore()
        try insert([
            Make.waf(0.00, ip: "203.0.113.7", path: "/api/ping", trace: "1-67a44c10-aaaaaaaaaaaaaaaaaaaaaaaa", line: 1),
            Make.waf(1.00, ip: "203.0.113.8", path: "/app/admin", action: "BLOCK", trace: "1-67a44c11-bbbbbbbbbbbbbbbbbbbbbbbb", line: 2),
        ], into: store, path: "waf.log")
        try insert([
            Make.alb(0.01, 0.30, ip: "203.0.113.7", path: "/api/ping", elb: 400, target: 400, trace: "1-67a44c10-aaaaaaaaaaaaaaaaaaaaaaaa", line: 1),
            Make.alb(1.01, 1.02, ip: "203.0.113.8", path: "/app/admin", elb: 403, target: nil, trace: "1-67a44c11-bbbbbbbbbbbbbbbbbbbbbbbb", line: 2),
        ], into: store, path: "alb.log")
        try insert([Make.nginx(0.28, rt: 0.25, ip: "203.0.113.7", path: "/api/ping", status: 400)], into: store, path: "access.log")
        try insert([Make.appResponse(0.27, path: "/api/ping", status: 400)], into: store, path: "app.log")

        let stats = try Correlator(store: store).run()
        #expect(stats.ambiguous == 0)
        // Linking turns foreign-key checks off for its bulk writes; they must be back on after.
        #expect(try store.read { db in try Int.fetchOne(db, sql: "PRAGMA foreign_keys") } == 1)
        let found = try chains(store)
        #expect(found == [["waf:1", "alb:1", "nginx:1", "app:1"].sorted(), ["alb:2", "waf:2"]], "\(found)")
        let summary = try store.read { try Row.fetchOne($0, sql: "SELECT client_ip, path, status, layers FROM chain WHERE path = '/app/admin'") }
        #expect(summary?["status"] as Int? == 403)
        #expect(summary?["layers"] as String? == "waf,alb")
    }

    @Test func identicalRequestsInsideTheToleranceAreLeftAmbiguous() throws {
        let store = try TimelineStore()
        // Two identical requests from one client 0.1 s apart: nginx's whole-second stamps cannot tell them apart.
        try insert([
            Make.alb(0.00, 0.20, ip: "198.51.100.9", path: "/api/items", elb: 200, target: 200, line: 1),
            Make.alb(0.10, 0.30, ip: "198.51.100.9", path: "/api/items", elb: 200, target: 200, line: 2),
        ], into: store, path: "alb.log")
        try insert([
            Make.nginx(0.19, rt: 0.18, ip: "198.51.100.9", path: "/api/items", status: 200, line: 1),
            Make.nginx(0.29, rt: 0.18, ip: "198.51.100.9", path: "/api/items", status: 200, line: 2),
        ], into: store, path: "access.log")
        let stats = try Correlator(store: store).run()
        #expect(stats.ambiguous == 2)
        // No nginx record was linked to an ALB record at random.
        #expect(try chains(store).isEmpty)
    }

    /// The nginx host runs fast: with a 2 s tolerance nothing would match without the offset. A
    /// clock 90 s off (NTP stopped for a week) is found as surely as one 3 s off: the estimating
    /// pass looks as far as a slab's margin.
    @Test(arguments: [3.0, 90.0]) func clockOffsetsAreEstimatedAndApplied(skew: Double) throws {
        let store = try TimelineStore()
        var albs: [Event] = [], nginxs: [Event] = []
        for i in 0..<20 {
            let t = Double(i) * 7
            let ip = "192.0.2.\(i + 1)"
            albs.append(Make.alb(t, t + 0.5, ip: ip, path: "/p\(i % 3)", elb: 200, target: 200, line: i + 1))
            nginxs.append(Make.nginx(t + 0.49 + skew, rt: 0.45, ip: ip, path: "/p\(i % 3)", status: 200, line: i + 1))
        }
        try insert(albs, into: store, path: "alb.log")
        try insert(nginxs, into: store, path: "access.log")
        let stats = try Correlator(store: store).run()
        let offset = try #require(stats.offsets.first { $0.outer == "alb" && $0.inner == "nginx" })
        #expect(abs(offset.offset - Int64(skew * 1e6)) < 1_000_000)
        #expect(try chains(store).filter { $0.count == 2 }.count == 20)
    }

    @Test func laterFilesJoinExistingChains() throws {
        let store = try TimelineStore()
        try insert([Make.nginx(0.28, rt: 0.25, ip: "203.0.113.7", path: "/api/ping", status: 400)], into: store, path: "access.log")
        try Correlator(store: store).run()
        // A record linked to nothing is its own request, with no chain row.
        #expect(try chains(store).isEmpty)
        try insert([Make.alb(0.01, 0.30, ip: "203.0.113.7", path: "/api/ping", elb: 400, target: 400)], into: store, path: "alb.log")
        try Correlator(store: store).run()
        #expect(try chains(store) == [["alb:1", "nginx:1"]])
        // Running again changes nothing.
        let again = try Correlator(store: store).run()
        #expect(again.linksAdded == 0)
    }

    /// Slab 1 is read while slab 0 is matched, before slab 0's links are stored: a record of the
    /// overlap that slab 0 linked must reach slab 1 already in its chain (patched in memory when
    /// slabs are at least twice the margin, looked up in the table when they are narrower).
    @Test(arguments: [300.0, 100.0])
    func aChainMadeInOneSlabIsExtendedInTheNext(slabSeconds: Double) throws {
        let store = try TimelineStore()
        var settings = CorrelationSettings()
        settings.slab = Int64(slabSeconds * 1e6)
        settings.targetSlabRecords = 1
        // WAF in slab 0's core; ALB in its forward margin (same trace: linked by slab 0); nginx
        // beyond slab 0's reach, carrying the same trace id: slab 1 links it.
        var nginx = Make.nginx(430.3, rt: 0.2, ip: "203.0.113.9", path: "/late", status: 200)
        nginx.traceID = "1-67a4-late"
        try insert([Make.waf(299.0, ip: "203.0.113.9", path: "/late", trace: "1-67a4-late")], into: store, path: "waf.log")
        try insert([Make.alb(301.0, 301.2, ip: "203.0.113.9", path: "/late", elb: 200, target: 200, trace: "1-67a4-late")],
                   into: store, path: "alb.log")
        try insert([nginx], into: store, path: "access.log")
        // Busy neighbours in every slab, so each slab has work on both threads.
        var busy: [Event] = []
        for i in 0..<40 { busy.append(Make.waf(Double(i) * 20, ip: "198.51.100.\(i % 7)", path: "/n\(i)", trace: "1-busy-\(i)", line: i + 2)) }
        try insert(busy, into: store, path: "waf-busy.log")
        var busyALB: [Event] = []
        for i in 0..<40 { busyALB.append(Make.alb(Double(i) * 20 + 0.1, Double(i) * 20 + 0.2, ip: "198.51.100.\(i % 7)", path: "/n\(i)",
                                                    elb: 200, target: 200, trace: "1-busy-\(i)", line: i + 2)) }
        try insert(busyALB, into: store, path: "alb-busy.log")
        let stats = try Correlator(store: store, settings: settings).run()
        #expect(try chains(store).contains(["alb:1", "nginx:1", "waf:1"]))
        #expect(try chains(store).count == 41)
        #expect(stats.chainsAdded == 41)
        // No link names a chain that is gone.
        #expect(try store.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM link WHERE chain_id NOT IN (SELECT id FROM chain)") } == 0)
    }

    @Test func aBlockedRequestNeverMatchesAnInnerRecordOfAnotherStatus() throws {
        let store = try TimelineStore()
        try insert([Make.alb(0.0, 0.01, ip: "203.0.113.8", path: "/app/admin", elb: 403, target: nil)], into: store, path: "alb.log")
        // The app's own 403 for another client at the same moment.
        try insert([Make.nginx(0.05, rt: 0.02, ip: "198.51.100.1", path: "/app/admin", status: 403)], into: store, path: "access.log")
        try Correlator(store: store).run()
        #expect(try chains(store).isEmpty)
    }
}
