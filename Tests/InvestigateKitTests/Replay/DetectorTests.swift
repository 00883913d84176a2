import Foundation
import Testing
@testable import InvestigateKit

@Suite struct ReplayDetectorTests {
    typealias S = Synthetic

    @Test func scanFiresOncePerKeyAndLayerWithinTheWindow() throws {
        var requests: [ReplayRequest] = []
        // A: 25 errors in 25 s, logged by both the ALB and nginx. B: 25 errors spread over 10 min.
        for i in 0..<25 {
            requests.append(S.request(Double(i), "203.0.113.5", "/x\(i)", status: 404))
            requests.append(S.request(Double(i) + 0.001, "203.0.113.5", "/x\(i)", status: 404, layer: .alb))
            requests.append(S.request(Double(i * 24), "198.51.100.7", "/y\(i)", status: 404))
        }
        let (alerts, _, _) = try S.replay(requests, options: S.options(["scan"]))
        #expect(alerts.count == 2)
        let nginx = try #require(alerts.first { $0.layer == .nginx })
        #expect(nginx.key == "203.0.113.5")
        #expect(nginx.time == S.at(19))
        #expect(nginx.first == S.at(0))
        #expect(nginx.value == 20)
        #expect(nginx.sample.count == 5)
        #expect(nginx.sample.first == "/x0")
        #expect(alerts.contains { $0.layer == .alb && $0.key == "203.0.113.5" })
        #expect(!alerts.contains { $0.key == "198.51.100.7" })
    }

    @Test func scanReArmsAfterAWindow() throws {
        var requests: [ReplayRequest] = []
        for i in 0..<60 { requests.append(S.request(Double(i) * 2, "203.0.113.5", "/x", status: 500)) }
        let (alerts, _, _) = try S.replay(requests, options: S.options(["scan"]))
        // Errors every 2 s for 2 minutes: the alarm fires at 38 s and again a window later.
        #expect(alerts.map(\.time) == [S.at(38), S.at(98)])
    }

    @Test func scheduledScanCatchesOnlyBurstsInsideItsLookback() throws {
        var o = S.options(["scan"])
        o.scan.schedule = ScanSchedule()
        var requests: [ReplayRequest] = []
        // A bursts at 00:00:10-00:00:34 (no run looks there); C at 00:03:10-00:03:34, and the 00:05:00
        // run looks at 00:02:30-00:03:30, so it sees 20 of C's 25 errors.
        for i in 0..<25 {
            requests.append(S.request(10 + Double(i), "203.0.113.1", "/a", status: 404))
            requests.append(S.request(190 + Double(i), "203.0.113.3", "/c", status: 404))
        }
        requests.append(S.request(600, "192.0.2.1", "/", status: 200))
        let (alerts, engine, summary) = try S.replay(requests, options: o)
        let scan = try #require(engine.detector(ScanDetector.self))
        #expect(scan.flaggedKeys == ["203.0.113.1@nginx", "203.0.113.3@nginx"])
        #expect(scan.scheduledKeys == ["203.0.113.3@nginx"])
        let scheduled = alerts.filter { $0.detector == "scan-scheduled" }
        #expect(scheduled.count == 1)
        #expect(scheduled.first?.time == S.at(300))
        #expect(scheduled.first?.count == 20)
        let report = try #require(summary.detectors.first { $0.0 == "scan" }?.1["scheduled"])
        #expect(report["missed"] == .array([.string("203.0.113.1@nginx")]))
        // Alerts come out in time order even though the scheduled one is raised later.
        #expect(alerts.map(\.time) == alerts.map(\.time).sorted())
    }

    @Test func probePatternsMatchSegmentsCaseInsensitively() {
        let p = ProbePatterns.standard
        #expect(p.match("/wp-login.php") == ".php")
        #expect(p.match("/WP-ADMIN/") == "wp-*")
        #expect(p.match("/index.PHP/extra") == ".php")
        #expect(p.match("/.env") == "/.env")
        #expect(p.match("/app/.git/config") == "/.git/")
        #expect(p.match("/repo/.git") == "/.git/")
        #expect(p.match("/cgi-bin/test.cgi") == ".cgi")
        #expect(p.match("/run.sh") == ".sh")
        #expect(p.match("/bash") == nil)
        #expect(p.match("/page.shtml") == nil)
        #expect(p.match("/phpinfo") == nil)
        #expect(p.match("/app/admin") == nil)
        #expect(p.match("") == nil)
        let custom = ProbePatterns([".py", "admin*", "/secret"])
        #expect(custom.match("/x.py") == ".py")
        #expect(custom.match("/administrator/") == "admin*")
        #expect(custom.match("/a/secret/b") == "/secret")
        #expect(custom.match("/x.php") == nil)
    }

    @Test func probeReportsResponsesPerLayer() throws {
        let requests = [
            S.request(0, "203.0.113.9", "/index.html", status: 200),
            S.request(1, "203.0.113.9", "/wp-login.php", status: nil, layer: .waf, wafAction: "BLOCK"),
            S.request(2, "203.0.113.9", "/.env", status: 404),
            S.request(2.001, "203.0.113.9", "/.env", status: 404, layer: .alb),
            S.request(3, "203.0.113.9", "/.git/config", status: 403),
        ]
        let (alerts, _, summary) = try S.replay(requests, options: S.options(["probe"]))
        #expect(alerts.map { "\($0.layer!.rawValue) \($0.sample.first!)" } == ["waf /wp-login.php", "nginx /.env", "alb /.env"])
        let probe = try #require(summary.detectors.first { $0.0 == "probe" }?.1)
        #expect(probe["requests"] == .int(4))
        #expect(probe["responsesByLayer"]?["nginx"] == .object([("403", .int(1)), ("404", .int(1))]))
        #expect(probe["responsesByLayer"]?["waf"] == .object([("BLOCK", .int(1))]))
    }

    @Test func spikeComparesErrorSharesWithTheRollingBaseline() throws {
        var requests: [ReplayRequest] = []
        for minute in 0..<40 {
            for i in 0..<100 {
                let t = Double(minute * 60) + Double(i) * 0.5
                let status: Int
                if minute == 35 { status = i < 50 ? 503 : 200 } else { status = i < 2 ? 404 : 200 }
                let ip = minute == 35 && i < 50 ? "198.51.100.66" : "192.0.2.\(i % 50)"
                requests.append(S.request(t, ip, minute == 35 && i < 50 ? "/api/pay" : "/", status: status))
            }
        }
        let (alerts, _, _) = try S.replay(requests, options: S.options(["spike"]))
        #expect(alerts.count == 1)
        let spike = try #require(alerts.first)
        #expect(spike.key == "5xx")
        #expect(spike.layer == .nginx)
        #expect(spike.time == S.at(36 * 60))
        #expect(spike.value == 0.5)
        #expect(spike.count == 50)
        #expect(spike.sample.first == "/api/pay (50)")
        #expect(spike.detail?.contains("198.51.100.66 (50)") == true)
    }

    @Test func rateCountsRequestsPerClientInASlidingWindow() throws {
        var requests: [ReplayRequest] = []
        for i in 0..<150 { requests.append(S.request(Double(i) * 0.8, "203.0.113.20", "/", status: 200)) }
        for i in 0..<100 { requests.append(S.request(Double(i), "192.0.2.20", "/", status: 200)) }
        let (alerts, _, _) = try S.replay(requests, options: S.options(["rate"]))
        #expect(alerts.count == 1)
        #expect(alerts.first?.key == "203.0.113.20")
        #expect(alerts.first?.time == S.at(100 * 0.8))
    }

    @Test func blocklistBlocksAlertedClientsForTheTTL() throws {
        var o = S.options(["scan", "blocklist"])
        o.blocklist.ttl = 600_000_000
        var requests: [ReplayRequest] = []
        for i in 0..<20 { requests.append(S.request(Double(i), "203.0.113.5", "/x\(i)", status: 404)) }
        // Later requests from the scanner: 5 inside the 10-minute block, 2 after it.
        for t in [30.0, 60, 120, 300, 500, 700, 900] { requests.append(S.request(t, "203.0.113.5", "/again", status: 404)) }
        for t in [30.0, 60] { requests.append(S.request(t, "192.0.2.1", "/", status: 200)) }
        let (alerts, engine, _) = try S.replay(requests, options: o)
        let blocks = alerts.filter { $0.detector == "blocklist" }
        #expect(blocks.map(\.action) == ["block", "unblock"])
        #expect(blocks.first?.time == S.at(19))
        #expect(blocks.last?.time == S.at(619))
        #expect(blocks.last?.count == 5)
        #expect(blocks.last?.sample == ["/again"])
        #expect(engine.blocklist?.isBlocked("203.0.113.5", at: S.at(100)) == false)  // finished: nothing active
        // The scanner's second alert at 700-900 s: no, only 3 errors then; the block is not renewed.
        #expect(alerts.filter { $0.detector == "scan" }.count == 1)
    }

    @Test func blocklistReactionDelayKeepsAlertsInTimeOrder() throws {
        var o = S.options(["scan", "blocklist"])
        o.blocklist.ttl = 300_000_000
        o.blocklist.delay = 30_000_000
        var requests: [ReplayRequest] = []
        for i in 0..<20 { requests.append(S.request(Double(i), "203.0.113.5", "/x\(i)", status: 404)) }
        // Inside the reaction delay (not blocked), then inside the block.
        for t in [25.0, 40, 60] { requests.append(S.request(t, "203.0.113.5", "/again", status: 404)) }
        for t in [30.0, 45] { requests.append(S.request(t, "192.0.2.1", "/", status: 200)) }
        let (alerts, _, _) = try S.replay(requests, options: o)
        #expect(alerts.map(\.time) == alerts.map(\.time).sorted())
        let blocks = alerts.filter { $0.detector == "blocklist" }
        #expect(blocks.map(\.action) == ["block", "unblock"])
        #expect(blocks.first?.time == S.at(49))
        #expect(blocks.last?.time == S.at(349))
        #expect(blocks.last?.count == 1)
    }

    @Test func alertsEncodeAsOneJSONObjectAndRenderEscaped() throws {
        let alert = Alert(time: S.at(1.5), detector: "scan", key: "evil\u{1b}[31m", value: 20, count: 21, window: 60, action: "alert",
                          sample: ["/a\u{202e}b"], layer: .nginx)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let json = String(decoding: try encoder.encode(alert), as: UTF8.self)
        #expect(json.hasPrefix(#"{"action":"alert","count":21,"detector":"scan","key":"evil\u001b[31m","layer":"nginx","sample":["/a‮b"],"#))
        #expect(json.contains(#""time":"2025-02-06T00:00:01.5Z""#) || json.contains(#""time":"2025-02-06T00:00:01.500Z""#))
        #expect(json.contains(#""window":60"#))
        let line = alert.render(zone: .utc)
        #expect(line.contains("evil\\x1b[31m"))
        #expect(line.contains("/a\\u{202e}b"))
        #expect(!line.contains("\u{1b}"))
    }

    @Test func storeReplayReadsOnlyRequestsInTimeOrder() throws {
        var requests: [ReplayRequest] = []
        for i in (0..<30).reversed() { requests.append(S.request(Double(i), "203.0.113.5", "/x", status: 404)) }
        var log = Event(time: S.at(5), layer: .nginx, kind: .log, line: 99, raw: Array("error".utf8))
        log.clientIP = "203.0.113.5"
        log.status = 500
        let store = try S.store(requests, extraEvents: [log])
        // A copy of an event (a duplicated line) must not be replayed twice.
        try store.write { db in
            try db.execute(sql: "INSERT INTO event (source_id, line, line_end, time, layer, kind, client_ip, path, status, copy_of) VALUES (1, 100, 100, ?, 'nginx', 'access', '203.0.113.5', '/x', 404, 1)", arguments: [S.at(3)])
        }
        let engine = ReplayEngine(options: S.options(["scan"]))
        var alerts: [Alert] = []
        let summary = try engine.run(store) { alerts.append($0) }
        #expect(summary.requests == 30)
        #expect(summary.first == S.at(0))
        #expect(alerts.map(\.time) == [S.at(19)])

        var ranged = S.options(["scan"])
        ranged.range = ReplayRange(from: S.at(10), to: S.at(20))
        let partial = try ReplayEngine(options: ranged).run(store) { _ in }
        #expect(partial.requests == 10)
        ranged.range = ReplayRange(layers: [.alb])
        #expect(try ReplayEngine(options: ranged).run(store) { _ in }.requests == 0)
    }

    @Test func memoryFollowsActiveKeysNotEvents() throws {
        // 200,000 one-off clients over ~55 hours, plus one steady client: idle keys are dropped.
        var requests: [ReplayRequest] = []
        requests.reserveCapacity(400_000)
        for i in 0..<200_000 {
            requests.append(S.request(Double(i), "10.\(i / 65536).\(i / 256 % 256).\(i % 256)", "/", status: i % 3 == 0 ? 404 : 200))
            requests.append(S.request(Double(i) + 0.5, "192.0.2.1", "/", status: 200))
        }
        let engine = ReplayEngine(options: S.options(["scan", "rate"]))
        try engine.run(requests) { _ in }
        let rate = try #require(engine.detector(RateDetector.self))
        let scan = try #require(engine.detector(ScanDetector.self))
        // About 300 clients are active in a 5-minute window; the table holds at most a few windows' worth.
        #expect(rate.activeKeys < 5_000)
        #expect(scan.activeKeys < 5_000)
    }

    @Test func aFailingOutputStopsTheReaderCleanly() throws {
        var requests: [ReplayRequest] = []
        for i in 0..<50_000 { requests.append(S.request(Double(i) / 100, "203.0.113.\(i % 7)", "/x", status: 404)) }
        let store = try S.store(requests)
        struct Closed: Error {}
        var seen = 0
        #expect(throws: Closed.self) {
            try ReplayEngine(options: S.options(["scan"])).run(store) { _ in
                seen += 1
                throw Closed()
            }
        }
        #expect(seen == 1)
        // The store is usable again afterwards (the reading thread has let go of it).
        #expect(try ReplayEngine(options: S.options(["scan"])).run(store) { _ in }.requests == 50_000)
    }

    @Test func pacerSleepsByEventTime() {
        var now = 1000.0
        var slept: [Double] = []
        var pacer = Pacer("60x", clock: { now }, sleep: { slept.append($0); now += $0 })!
        pacer.wait(until: S.at(0))
        pacer.wait(until: S.at(60))
        pacer.wait(until: S.at(90))
        #expect(slept == [1.0, 0.5])
        #expect(Pacer("max")?.speed == nil)
        // The engine paces every request, in time order.
        let engine = ReplayEngine(options: S.options(["scan"]))
        var paced: [Int64] = []
        engine.pace = { paced.append($0) }
        try? engine.run([S.request(2, "192.0.2.1", "/"), S.request(1, "192.0.2.1", "/")]) { _ in }
        #expect(paced == [S.at(1), S.at(2)])
        #expect(Pacer("fast") == nil)
        #expect(Pacer("0x") == nil)
    }
}
