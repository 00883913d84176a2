import Foundation
import Testing
@testable import InvestigateKit

/// The replayed blocklist as AWS WAF IP sets: the `update-ip-set` request AWS documents (Name,
/// Scope, Id, Addresses in CIDR notation, LockToken; one address family per set) and the
/// add/remove schedule the TTL implies.
@Suite struct BlocklistIPSetTests {
    static let t0: Int64 = 1_769_054_000_000_000

    /// AWS WAF's UpdateIPSet request, as its API reference states it.
    static func checkRequestShape(_ data: [UInt8], ipv6: Bool, name: String, id: String?, scope: String) throws -> [String] {
        let object = try #require(try JSONSerialization.jsonObject(with: Data(data)) as? [String: Any])
        #expect(Set(object.keys) == ["Name", "Scope", "Id", "Addresses", "LockToken"])
        // The keys in the documented order, so a person reading the file sees the request as documented.
        let text = String(decoding: data, as: UTF8.self)
        let order = ["\"Name\"", "\"Scope\"", "\"Id\"", "\"Addresses\"", "\"LockToken\""].compactMap { text.range(of: $0)?.lowerBound }
        #expect(order.count == 5 && order == order.sorted())
        #expect(object["Name"] as? String == name)
        #expect(BlocklistIPSets.isValidName(name))
        #expect(["REGIONAL", "CLOUDFRONT"].contains(object["Scope"] as? String) && object["Scope"] as? String == scope)
        #expect(object["Id"] as? String == id ?? BlocklistIPSets.idPlaceholder(ipv6 ? "IPv6" : "IPv4"))
        #expect(object["LockToken"] as? String == BlocklistIPSets.lockTokenPlaceholder)
        let addresses = try #require(object["Addresses"] as? [String])
        #expect(addresses.count <= BlocklistIPSets.maxAddresses)
        for a in addresses {
            let range = try #require(IPRange(a), "\(a) is CIDR")
            #expect(range.bytes.count == (ipv6 ? 16 : 4))
            #expect(range.prefix == (ipv6 ? 128 : 32))
            #expect(a.hasSuffix(ipv6 ? "/128" : "/32"))
        }
        return addresses
    }

    @Test func addressesAreSplitByFamilyCanonicalAndUnique() throws {
        let periods = [
            BlockPeriod(address: "203.0.113.45", start: Self.t0, until: Self.t0 + 600_000_000, reasons: ["scan@waf"], stopped: 12),
            BlockPeriod(address: "2001:DB8:0:0:0:0:0:1", start: Self.t0 + 1, until: Self.t0 + 600_000_001, reasons: ["probe@nginx"]),
            BlockPeriod(address: "198.51.100.7", start: Self.t0 + 2, until: Self.t0 + 600_000_000, reasons: ["rate@alb", "scan@alb"]),
            // Blocked again the moment its first block lapsed.
            BlockPeriod(address: "203.0.113.45", start: Self.t0 + 600_000_000, until: Self.t0 + 1_200_000_000, reasons: ["scan@waf"]),
            BlockPeriod(address: "unknown, 10.0.0.1", start: Self.t0, until: Self.t0 + 600_000_000, reasons: ["scan@nginx"]),
        ]
        let sets = BlocklistIPSets(periods: periods)
        #expect(sets.ipv4 == ["198.51.100.7/32", "203.0.113.45/32"])
        #expect(sets.ipv6 == ["2001:db8::1/128"])
        #expect(sets.notAddresses == ["unknown, 10.0.0.1"])
        let o = BlocklistIPSets.Options(ipv4Name: "blocklist-v4", ipv6Name: "blocklist_v6",
                                        ipv4ID: "a1b2c3d4-5678-90ab-cdef-111111111111",
                                        ipv6ID: nil, scope: .cloudfront)
        let v4 = try Self.checkRequestShape(sets.requestJSON(ipv6: false, o), ipv6: false, name: "blocklist-v4", id: o.ipv4ID, scope: "CLOUDFRONT")
        #expect(v4 == sets.ipv4)
        _ = try Self.checkRequestShape(sets.requestJSON(ipv6: true, o), ipv6: true, name: "blocklist_v6", id: nil, scope: "CLOUDFRONT")
        // An empty family is still a valid request: zero addresses empty the set.
        let none = BlocklistIPSets(periods: [])
        #expect(try Self.checkRequestShape(none.requestJSON(ipv6: true, BlocklistIPSets.Options()), ipv6: true,
                                           name: "investigate-blocklist-ipv6", id: nil, scope: "REGIONAL").isEmpty)
    }

    @Test func theScheduleFollowsTheTTLInTimeOrder() throws {
        let periods = [
            BlockPeriod(address: "203.0.113.45", start: Self.t0 + 600_000_000, until: Self.t0 + 1_200_000_000, reasons: ["scan@waf"]),
            BlockPeriod(address: "203.0.113.45", start: Self.t0, until: Self.t0 + 600_000_000, reasons: ["scan@waf"], stopped: 12),
            BlockPeriod(address: "2001:db8::1", start: Self.t0 + 5, until: Self.t0 + 900_000_000, reasons: ["probe@nginx"]),
        ]
        let sets = BlocklistIPSets(periods: periods)
        let lines = String(decoding: sets.scheduleJSONL(), as: UTF8.self).split(separator: "\n").map { line in
            (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any] ?? [:]
        }
        #expect(lines.count == 6)
        #expect(lines.allSatisfy { Set($0.keys) == ["time", "action", "address", "reason"] })
        #expect(lines.map { $0["action"] as? String ?? "" } == ["add", "add", "remove", "add", "remove", "remove"])
        #expect(lines.map { $0["address"] as? String ?? "" } == ["203.0.113.45/32", "2001:db8::1/128", "203.0.113.45/32", "203.0.113.45/32",
                                                                "2001:db8::1/128", "203.0.113.45/32"])
        #expect(lines[0]["time"] as? String == TimeFormat.isoUTC(Self.t0))
        // At the instant a block lapses and the next starts, the removal comes first: the address ends up blocked.
        #expect(lines[2]["time"] as? String == lines[3]["time"] as? String)
        #expect((lines[0]["reason"] as? String)?.contains("scan@waf") == true)
        #expect((lines[2]["reason"] as? String)?.contains("12 requests stopped") == true)
    }

    /// docs/replay.md's recipe: the common scheduled job (every 5 minutes, looking back 1 minute,
    /// 90 s behind, 20 errors) misses the fixture's two-minute scan entirely; looking back 5
    /// minutes, it blocks the scanner at 04:00, after the scan ended.
    @Test func theScheduledJobRecipeOnTheBotScanFixture() throws {
        let store = try FixtureTimelines.store("apigw-bot-scan-2026-01-22")
        func run(lookback: Int64) throws -> BlocklistIPSets {
            var options = ReplayOptions()
            options.detectors = ["scan", "blocklist"]
            options.range.layers = [.apigateway]
            options.scan = ScanConfig(threshold: 20, window: 60_000_000,
                                      schedule: ScanSchedule(every: 300_000_000, lookback: lookback, delay: 90_000_000))
            options.blocklist = BlocklistConfig(ttl: 3_600_000_000, delay: 0, triggers: ["scan-scheduled"])
            let engine = ReplayEngine(options: options)
            _ = try engine.run(store) { _ in }
            return BlocklistIPSets(periods: try #require(engine.blocklist).periods)
        }
        let oneMinute = try run(lookback: 60_000_000)
        #expect(oneMinute.ipv4.isEmpty && oneMinute.schedule.isEmpty)
        let fiveMinutes = try run(lookback: 300_000_000)
        #expect(fiveMinutes.ipv4 == ["20.171.207.31/32"])
        let at4 = FixtureTimelines.at("2026-01-22 04:00", "UTC")
        #expect(fiveMinutes.schedule.map(\.time) == [at4, at4 + 3_600_000_000])
        #expect(fiveMinutes.schedule.map(\.action) == ["add", "remove"])
    }
}

/// `replay --ip-set-out` as a user runs it.
@Suite struct BlocklistIPSetCommandTests {
    static let fixture = Corpus.repositoryRoot.appendingPathComponent("Fixtures/incidents/apigw-bot-scan-2026-01-22").path

    @Test func writesBothSetsAndTheSchedule() throws {
        let dir = try TemporaryDirectory()
        let db = dir.url.appendingPathComponent("x.db").path, prefix = dir.url.appendingPathComponent("out/blocklist").path
        guard let r = try CLIRun.investigate(["replay", "--db", db, "--tz", "UTC", "--detect", "scan,blocklist", "--block-on", "scan",
                                              "--block-ttl", "10m", "--ip-set-out", prefix, "--ip-set-name", "web-v4,web-v6",
                                              "--ip-set-id", "11111111-2222-3333-4444-555555555555,66666666-7777-8888-9999-000000000000",
                                              "--ip-set-scope", "regional", "--json", Self.fixture]) else { return }
        #expect(r.status == 0)
        let v4 = try BlocklistIPSetTests.checkRequestShape([UInt8](try Data(contentsOf: URL(fileURLWithPath: prefix + "-ipv4.json"))),
                                                           ipv6: false, name: "web-v4", id: "11111111-2222-3333-4444-555555555555", scope: "REGIONAL")
        #expect(v4.contains("20.171.207.31/32"))
        _ = try BlocklistIPSetTests.checkRequestShape([UInt8](try Data(contentsOf: URL(fileURLWithPath: prefix + "-ipv6.json"))),
                                                      ipv6: true, name: "web-v6", id: "66666666-7777-8888-9999-000000000000", scope: "REGIONAL")
        let schedule = try String(contentsOfFile: prefix + "-schedule.jsonl", encoding: .utf8)
        #expect(schedule.contains("\"action\":\"add\",\"address\":\"20.171.207.31/32\""))
        #expect(r.err.contains("replace LockToken"))
        // --json still prints JSON Lines only.
        for line in r.out.split(separator: "\n") { #expect((try? JSONSerialization.jsonObject(with: Data(line.utf8))) != nil) }
    }

    @Test func badIPSetOptionsAreUsageErrors() throws {
        let dir = try TemporaryDirectory()
        let db = dir.url.appendingPathComponent("x.db").path, prefix = dir.url.appendingPathComponent("b").path
        for args in [["--ip-set-out", prefix, "--ip-set-id", "only-one"],
                     ["--ip-set-out", prefix, "--ip-set-name", "bad name"],
                     ["--ip-set-out", prefix, "--ip-set-scope", "GLOBAL"],
                     ["--ip-set-out", prefix, "--detect", "scan"],
                     ["--block-on", "scna"]] {
            guard let r = try CLIRun.investigate(["replay", "--db", db] + args) else { return }
            #expect(r.status == 64, "\(args)")
        }
    }
}
