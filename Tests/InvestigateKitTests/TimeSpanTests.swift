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

    // MARK: - The accepted range and the importers that enforce it

    @Test func aStampBeyondTheAcceptedRangeIsRejectedWithItsReason() throws {
        let dir = try TemporaryDirectory()
        var lines: [String] = []
        for i in 0..<300 { lines.append(Self.nginx("06/Feb/2025:14:\(10 + i / 60):\(String(format: "%02d", i % 60))", path: "/n\(i)")) }
        lines.insert(Self.nginx("06/Feb/2225:14:32:45"), at: 150)
        let access = try dir.write("access.log", lines.joined(separator: "\n") + "\n")
        let app = try dir.write("app/2025-02-06.log", [
            "INFO 2025-02-06 14:10:00,001 [app] Request: GET http://example.com:443/n0",
            "INFO 2225-02-06 14:32:45,136 [app] Request: GET http://example.com:443/api/ping",
            "INFO 2025-02-06 14:10:01,001 [app] Request: GET http://example.com:443/n1",
        ].joined(separator: "\n") + "\n")
        let store = try TimelineStore()
        let (outcome, seconds) = try Self.run(store, [access, app])
        #expect(outcome.ingest.events == 302)
        #expect(outcome.ingest.rejected == 2)
        let reasons = try store.read { try String.fetchAll($0, sql: "SELECT reason FROM rejected ORDER BY source_id, line") }
        #expect(reasons.count == 2)
        #expect(reasons.allSatisfy { $0.contains("timestamp out of range (year 2225)") }, "\(reasons)")
        // The rejected lines keep their line numbers and bytes.
        let rows = try store.read { try Row.fetchAll($0, sql: "SELECT line, raw FROM rejected_lines ORDER BY source_id, line") }
        #expect(rows.map { $0["line"] as Int } == [151, 2])
        #expect(String(decoding: rows[0]["raw"] as Data, as: UTF8.self) == Self.nginx("06/Feb/2225:14:32:45"))
        #expect(try Self.count(store, "SELECT count(*) FROM event WHERE time >= \(EventTime.accepted.upperBound)") == 0)
        #expect(try Self.count(store, "SELECT count(*) FROM chain") == 2)
        #expect(seconds < 5, "ingest and correlation took \(seconds) s")
    }

    @Test func theAcceptedRangeIsTheYears1970To2100UTC() {
        let first = CivilTime.micros(year: 1970, month: 1, day: 1, hour: 0, minute: 0, second: 0)
        let end = CivilTime.micros(year: 2101, month: 1, day: 1, hour: 0, minute: 0, second: 0)
        #expect(EventTime.accepted == first..<end)
        #expect(EventTime.rejection(first) == nil && EventTime.rejection(end - 1) == nil)
        #expect(EventTime.rejection(first - 1)?.hasPrefix("timestamp out of range (year 1969): 1969-12-31T23:59:59.999999Z") == true)
        #expect(EventTime.rejection(end) == "timestamp out of range (year 2101): 2101-01-01T00:00:00Z is outside the accepted years 1970 to 2100 UTC")
        // Any Int64 gets an answer, none traps.
        for t in [Int64.min, Int64.min + 1, -1, Int64.max - 1, Int64.max] { #expect(EventTime.rejection(t) != nil) }
        #expect(EventTime.year(Int64.min) < 0 && EventTime.year(Int64.max) > 290_000)
    }

    @Test func theSinkRejectsARecordOutOfRangeAndDropsWildSecondStampsAndDurations() throws {
        let ok = CivilTime.micros(year: 2025, month: 2, day: 6, hour: 5, minute: 32, second: 45)
        var sink = RecordSink()
        sink.emit(Event(time: CivilTime.micros(year: 2225, month: 2, day: 6, hour: 5, minute: 32, second: 45), layer: .app, kind: .log,
                        line: 3, raw: Array("far".utf8)))
        sink.emit(Event(time: -1, layer: .nginx, kind: .access, line: 4, raw: Array("before".utf8)))
        var wrapped = Event(time: ok, layer: .gunicorn, kind: .log, line: 5, raw: Array("wrapped".utf8))
        wrapped.altTime = Int64.max
        wrapped.duration = Int64.min
        sink.emit(wrapped)
        var fine = Event(time: ok, layer: .nginx, kind: .access, line: 6, raw: Array("fine".utf8))
        fine.altTime = ok - 1_000_000
        fine.duration = 250_000
        sink.emit(fine)
        sink.emit(Event(time: nil, layer: .system, kind: .log, line: 7, raw: Array("no stamp".utf8)))
        #expect(sink.rejected.map(\.line) == [3, 4])
        #expect(sink.rejected.map { String(decoding: $0.raw, as: UTF8.self) } == ["far", "before"])
        #expect(sink.rejected[0].reason.hasPrefix("timestamp out of range (year 2225)"))
        #expect(sink.rejected[1].reason.hasPrefix("timestamp out of range (year 1969)"))
        let events = sink.events
        try #require(events.count == 3)
        #expect(events[0].line == 5 && events[0].time == ok && events[0].altTime == nil && events[0].duration == nil)
        #expect(events[1].altTime == ok - 1_000_000 && events[1].duration == 250_000)
        #expect(events[2].time == nil)
        #expect(sink.notes.count == 2)
    }

    @Test(arguments: [
        ("INFO 2225-02-06 14:32:45,136 [app] Request: GET http://example.com:443/api/ping", "flask"),
        ("[2225-02-06 14:32:45,123] ERROR in app: Exception on /api/orders [POST]", "flask"),
        (#"10.1.1.210 - - [06/Feb/2225:14:32:45 +0000] "GET /a HTTP/1.1" 200 12 "-" "curl/8.5.0""#, "nginx-access"),
        (#"10.1.1.210 - - [06/Feb/1969:14:32:45 +0000] "GET /a HTTP/1.1" 200 12 "-" "curl/8.5.0" "x" extra"#, "nginx-access"),
        ("2225/02/06 14:32:45 [error] 12#12: *3 connect() failed (111: Connection refused) while connecting to upstream, client: 10.0.0.1, server: _, request: \"GET /a HTTP/1.1\", upstream: \"http://127.0.0.1:8000/a\", host: \"example.com\"", "nginx-error"),
        ("<34>1 2225-02-06T14:32:45.003Z host app - - - message", "syslog"),
    ])
    func importersRejectAStampOutOfRangeWithTheReason(_ line: String, _ id: String) throws {
        let importer = try #require(ImporterRegistry.standard.importer(id: id))
        let sink = try parse(importer, [line, line], options: ImportOptions(timeZone: .utc, appTimeZone: .utc))
        #expect(sink.eventCount == 0)
        try #require(sink.rejected.count == 2, "\(sink.rejected.map(\.reason)) \(sink.events.map(\.time))")
        #expect(sink.rejected.map(\.line) == [1, 2])
        #expect(sink.rejected.allSatisfy { $0.reason.contains("timestamp out of range (year") }, "\(sink.rejected.map(\.reason))")
        #expect(sink.rejected.allSatisfy { String(decoding: $0.raw, as: UTF8.self) == line })
    }

    // MARK: - What users type

    @Test func userTimesAndDurationsThatWouldOverflowAreUnreadable() {
        for text in ["inf", "nan", "1e300", "-1e300", "1e15", "99999999999999999999d", "1e20s"] { #expect(UserTime.duration(text) == nil, "\(text)") }
        let hundredYears: Int64 = 36_500 * 86_400 * 1_000_000
        #expect(UserTime.duration("36500d") == hundredYears)
        #expect(UserTime.parse("99999999999-01-01", zone: .utc) == nil)
        #expect(UserTime.parse("9223372036854775807-01-01 00:00", zone: .utc) == nil)
        #expect(UserTime.parse("9999-12-31 23:59", zone: .utc) != nil)
    }

    @Test func aSyslogYearOutOfRangeIsRefusedBeforeParsing() throws {
        #expect(throws: ImporterError.self) {
            _ = try parse(SyslogImporter(), ["Feb  6 14:32:45 host app: hello"], options: ImportOptions(year: Int.max))
        }
        let sink = try parse(SyslogImporter(), ["Feb  6 14:32:45 host app: hello"], options: ImportOptions(timeZone: .utc, year: 2100))
        #expect(sink.eventCount == 1 && sink.rejected.isEmpty)
    }

    // MARK: - Numbers that overflowed once in microseconds

    @Test func secondsBeyondInt64MicrosecondsAreRefusedNotTrapped() {
        Line.with("9999999999999", number: 1) { #expect(ByteScanner.secondsToMicros($0.bytes) == nil) }
        Line.with("9223372036855", number: 1) { #expect(ByteScanner.secondsToMicros($0.bytes) == nil) }
        Line.with("9223372036854.775808", number: 1) { #expect(ByteScanner.secondsToMicros($0.bytes) == nil) }
        Line.with("9223372036854.775807", number: 1) { #expect(ByteScanner.secondsToMicros($0.bytes) == Int64.max) }
        Line.with("-999999999999.5", number: 1) { #expect(ByteScanner.secondsToMicros($0.bytes) == -999_999_999_999_500_000) }
    }

    @Test func msecAndRequestTimeBeyondTheRangeAreRejectedOrLeftOut() throws {
        let format = #"'$remote_addr [$msec] "$request" $status $request_time'"#
        let sink = try parse(NginxAccessImporter(), [
            #"10.0.0.1 [9999999999999.000] "GET /a HTTP/1.1" 200 0.010"#,
            #"10.0.0.1 [8000000000.000] "GET /b HTTP/1.1" 200 0.010"#,
            #"10.0.0.1 [1738819965.136] "GET /c HTTP/1.1" 200 999999999999.000"#,
            #"10.0.0.1 [1738819965.136] "GET /d HTTP/1.1" 200 0.010"#,
        ], options: ImportOptions(nginxLogFormat: format))
        #expect(sink.rejected.map(\.line) == [1, 2])
        #expect(sink.rejected.last?.reason.hasPrefix("timestamp out of range (year 2223)") == true, "\(sink.rejected.map(\.reason))")
        try #require(sink.events.count == 2)
        #expect(sink.events[0].path == "/c" && sink.events[0].duration == nil)
        #expect(sink.events[1].path == "/d" && sink.events[1].duration == 10_000)
    }
}
