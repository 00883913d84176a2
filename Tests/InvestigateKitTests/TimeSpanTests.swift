import Foundation
import GRDB
import Testing
@testable import InvestigateKit

/// Stamps far from the rest (a clockless device writing 1970, a typo'd 2225): ingest never traps,
/// every line ends up an event or a rejected line, and correlation costs what the records cost,
/// not what the time span between them would.
@Suite struct TimeSpanTests {
    static func nginx(_ stamp: String, path: String = "/api/ping", ip: String = "203.0.113.7") -> String {
        #"10.1.1.210 - - [\#(stamp) +0000] "GET \#(path) HTTP/1.1" 200 12 "-" "curl/8.5.0" "\#(ip)""#
    }

    static func count(_ store: TimelineStore, _ sql: String) throws -> Int {
        try store.read { try Int.fetchOne($0, sql: sql) ?? -1 }
    }

    /// Ingests the files and correlates, returning the outcome and the seconds it took.
    static func run(_ store: TimelineStore, _ paths: [String]) throws -> (TimelineUpdate.Outcome, Double) {
        let start = Date()
        let outcome = try TimelineUpdate.run(store: store, paths: paths, options: ImportOptions(appTimeZone: .utc))
        return (outcome, Date().timeIntervalSince(start))
    }

    @Test func accessLinesDecadesApartAreCorrelatedQuickly() throws {
        let dir = try TemporaryDirectory()
        let access = try dir.write("access.log", [
            Self.nginx("01/Jan/1970:00:00:07"),
            Self.nginx("06/Feb/2015:14:32:45"),
            Self.nginx("06/Feb/2025:14:32:45"),
            Self.nginx("06/Feb/2025:14:32:46", path: "/api/items"),
        ].joined(separator: "\n") + "\n")
        let app = try dir.write("app/2025-02-06.log", [
            "INFO 1970-01-01 00:00:07,001 [app] Request: GET http://example.com:443/api/ping",
            "INFO 2015-02-06 14:32:45,001 [app] Request: GET http://example.com:443/api/ping",
            "INFO 2025-02-06 14:32:45,001 [app] Request: GET http://example.com:443/api/ping",
            "INFO 2025-02-06 14:32:46,001 [app] Request: GET http://example.com:443/api/items",
        ].joined(separator: "\n") + "\n")
        let store = try TimelineStore()
        let (outcome, seconds) = try Self.run(store, [access, app])
        #expect(outcome.ingest.events == 8 && outcome.ingest.rejected == 0)
        // Each request's nginx line and app line are one chain, decades apart or not.
        #expect(try Self.count(store, "SELECT count(*) FROM chain") == 4)
        #expect(try Self.count(store, "SELECT count(*) FROM link") == 8)
        #expect(seconds < 5, "ingest and correlation took \(seconds) s")
    }

    @Test func clampedArithmeticHoldsAtTheEnds() {
        #expect(Int64.max.addingClamped(1) == .max && Int64.min.addingClamped(-1) == .min)
        #expect(Int64.min.subtractingClamped(1) == .min && Int64.max.subtractingClamped(-1) == .max)
        #expect(Int64(5).addingClamped(-7) == -2 && Int64(5).subtractingClamped(7) == -2)
    }

    // MARK: - Correlation follows the records, not the span

    /// Seconds from `Make.base` to noon of a date, for `Make`'s builders.
    static func at(_ year: Int, _ month: Int = 6, _ day: Int = 1) -> Double {
        Double(CivilTime.micros(year: year, month: month, day: day, hour: 12, minute: 0, second: 0) - Make.base) / 1e6
    }

    /// `count` requests seen by the ALB and nginx from `start` (seconds from `Make.base`), lines from `line`.
    static func requests(from start: Double, count: Int, every: Double = 7, line: Int = 1) -> (alb: [Event], nginx: [Event]) {
        var albs: [Event] = [], nginxs: [Event] = []
        for i in 0..<count {
            let t = start + Double(i) * every
            let ip = "192.0.2.\(i % 250 + 1)"
            albs.append(Make.alb(t, t + 0.5, ip: ip, path: "/p\(i % 3)", elb: 200, target: 200, line: line + i))
            nginxs.append(Make.nginx(t + 0.49, rt: 0.45, ip: ip, path: "/p\(i % 3)", status: 200, line: line + i))
        }
        return (albs, nginxs)
    }

    static func chainTags(_ store: TimelineStore) throws -> Set<[String]> {
        try store.read { db in
            let rows = try Row.fetchAll(db, sql: """
                SELECT l.chain_id, e.layer || ':' || e.line AS tag FROM link l JOIN event e ON e.id = l.event_id ORDER BY e.layer, e.line
                """)
            return Set(Dictionary(grouping: rows, by: { $0["chain_id"] as Int64 }).values.map { $0.map { $0["tag"] as String } })
        }
    }

    static let clusters: [Double] = [at(1970, 1, 1), 0, 86_400 + 3_000, at(2100, 12, 31)]

    /// Slabs with nothing in reach are left out, and that changes no link: the clusters decades
    /// apart link exactly as each does alone, with wide slabs and with narrow ones.
    @Test(arguments: [nil, 100.0])
    func recordsDecadesApartLinkAsEachClusterDoesAlone(narrowSlab: Double?) throws {
        var settings = CorrelationSettings()
        if let narrowSlab { settings.slab = Int64(narrowSlab * 1e6); settings.targetSlabRecords = 1 }
        let together = try TimelineStore()
        var alone = Set<[String]>()
        for (k, start) in Self.clusters.enumerated() {
            let (albs, nginxs) = Self.requests(from: start, count: 20, line: 1 + 100 * k)
            try insert(albs, into: together, path: "alb-\(k).log")
            try insert(nginxs, into: together, path: "access-\(k).log")
            let single = try TimelineStore()
            try insert(albs, into: single, path: "alb.log")
            try insert(nginxs, into: single, path: "access.log")
            try Correlator(store: single, settings: settings).run()
            alone.formUnion(try Self.chainTags(single))
        }
        let start = Date()
        let stats = try Correlator(store: together, settings: settings).run()
        let seconds = Date().timeIntervalSince(start)
        #expect(alone.count == 80)
        #expect(try Self.chainTags(together) == alone)
        #expect(stats.chainsAdded == 80 && stats.eventsConsidered == 160)
        #expect(seconds < 5, "correlation took \(seconds) s")
    }

    @Test func slabsWithNothingInReachAreNotRead() throws {
        let store = try TimelineStore()
        var times: [Int64] = []
        for (k, start) in Self.clusters.enumerated() {
            let (albs, nginxs) = Self.requests(from: start, count: 20, line: 1 + 100 * k)
            try insert(albs, into: store, path: "alb-\(k).log")
            try insert(nginxs, into: store, path: "access-\(k).log")
            times += (albs + nginxs).compactMap(\.time)
        }
        let correlator = Correlator(store: store)
        let slab: Int64 = 300_000_000
        let lo = try #require(times.min()), hi = try #require(times.max())
        let starts = try correlator.slabStarts(from: lo, to: hi, slab: slab)
        // Each cluster spans under three minutes: one or two slabs, and one more reaching it from
        // behind at most; not one slab per five minutes of 131 years (13.7 million).
        #expect(starts.count <= 12, "\(starts.count) slabs")
        #expect(starts.first == lo)
        // Each slab follows the one before on the grid, or starts at the first record after a gap
        // where a slab would have read nothing.
        for (a, b) in zip(starts, starts.dropFirst()) {
            #expect(b == a + slab || (times.contains(b) && b >= a + 2 * slab + correlator.settings.margin && !times.contains { $0 > a + slab && $0 < b }))
        }
        // Every record lies in the core of exactly one slab that is read.
        for t in times { #expect(starts.filter { $0 <= t && t < $0 + slab }.count == 1) }
        // The widest span Int64 holds costs no more.
        #expect(try correlator.slabStarts(from: Int64.min, to: Int64.max, slab: slab).count <= starts.count + 1)
    }

    /// One record decades away no longer makes the traffic look thin (and the slabs as long as
    /// allowed): the slab stays near what the cluster alone gets.
    @Test func anOutlierDoesNotStretchTheSlabs() throws {
        var settings = CorrelationSettings()
        settings.targetSlabRecords = 10
        let store = try TimelineStore()
        try insert((0..<400).map { Make.alb(Double($0) * 36, Double($0) * 36 + 0.2, ip: "192.0.2.1", path: "/p", elb: 200, target: 200, line: $0 + 1) },
                   into: store, path: "alb.log")
        let lo = Make.s(0.2), hi = Make.s(399 * 36 + 0.2)
        let alone = try Correlator(store: store, settings: settings).adaptiveSlab(from: lo, to: hi)
        #expect(abs(alone - 359_100_000) < 1_000_000, "\(alone)")
        try insert([Make.alb(Self.at(1970, 1, 1), Self.at(1970, 1, 1) + 0.2, ip: "192.0.2.2", path: "/p", elb: 200, target: 200),
                    Make.alb(Self.at(2100, 12, 31), Self.at(2100, 12, 31) + 0.2, ip: "192.0.2.2", path: "/p", elb: 200, target: 200)],
                   into: store, path: "alb-outliers.log")
        let outlierLo = Make.s(Self.at(1970, 1, 1) + 0.2), outlierHi = Make.s(Self.at(2100, 12, 31) + 0.2)
        let withOutliers = try Correlator(store: store, settings: settings).adaptiveSlab(from: outlierLo, to: outlierHi)
        // The decades without records do not count: 4 h × 10 / 402 records, where the span gave six hours.
        #expect(abs(withOutliers - alone) < 2_000_000, "\(withOutliers) against \(alone)")
    }

    /// Stamps as wide as four-digit years allow (a database written before the accepted range
    /// existed): correlation neither traps nor walks the ten thousand years between them.
    @Test func theWidestFourDigitYearSpanCorrelatesWithoutTrapping() throws {
        let store = try TimelineStore()
        let first = Double(CivilTime.micros(year: 1, month: 1, day: 1, hour: 0, minute: 0, second: 0) - Make.base) / 1e6
        let last = Double(CivilTime.micros(year: 9999, month: 12, day: 31, hour: 23, minute: 0, second: 0) - Make.base) / 1e6
        var (albs, nginxs) = Self.requests(from: 0, count: 20)
        albs.append(Make.alb(first, first + 0.5, ip: "198.51.100.1", path: "/old", elb: 200, target: 200, line: 100))
        nginxs.append(Make.nginx(last, rt: 0.1, ip: "198.51.100.1", path: "/new", status: 200, line: 100))
        try insert(albs, into: store, path: "alb.log")
        try insert(nginxs, into: store, path: "access.log")
        let start = Date()
        let stats = try Correlator(store: store).run()
        let seconds = Date().timeIntervalSince(start)
        #expect(stats.chainsAdded == 20)
        #expect(try Self.chainTags(store).count == 20)
        #expect(seconds < 5, "correlation took \(seconds) s")
    }
}
