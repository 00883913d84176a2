import Foundation
import Testing
@testable import InvestigateKit
import LogSimKit

/// The traffic simulator: determinism, the committed fixtures, ground truth against the files, and
/// that our own importers accept every line it writes.
@Suite struct SimulatorTests {
    /// Every edge failure mode at once, small enough to run in a second; rotation by size so the
    /// nginx access log has `.1` and `.N.gz`.
    static let edgeConfig = SimulationConfig(
        stack: .edge, seed: 42, start: SimClock.micros(year: 2025, month: 2, day: 6, hour: 5), requests: 1500, rate: 3,
        failures: Set(Failure.forStack(.edge)), rotation: .size(40 * 1024),
        incident: .wafBlockedAdmin(at: SimClock.micros(year: 2025, month: 2, day: 6, hour: 5, minute: 2), clientIP: "203.0.113.45"))
    static let apiConfig = SimulationConfig(
        stack: .api, seed: 7, start: SimClock.micros(year: 2026, month: 1, day: 22, hour: 3, minute: 50), requests: 500, rate: 2,
        failures: Set(Failure.forStack(.api)), rotation: .none,
        incident: .apiBotScan(at: SimClock.micros(year: 2026, month: 1, day: 22, hour: 3, minute: 51), clientIP: "20.171.207.31", count: 60))

    /// The importers every generated file needs; until they are all merged the full-ingest test skips.
    /// A placeholder importer (no samples) does not count.
    static let importersReady = ["waf", "alb", "syslog", "flask", "apigateway-access", "apigateway-execution", "lambda", "nginx-error"]
        .allSatisfy { id in ImporterRegistry.standard.importer(id: id).map { !$0.samples.isEmpty } ?? false }

    static let fixturesDirectory = Corpus.repositoryRoot.appendingPathComponent("Fixtures/incidents")
    static var fixturesPresent: Bool { FileManager.default.fileExists(atPath: fixturesDirectory.path) }

    // MARK: - Helpers

    static func generate(_ config: SimulationConfig) throws -> (TemporaryDirectory, SimulationSummary) {
        let directory = try TemporaryDirectory()
        let summary = try Simulator.run(config, into: directory.url)
        return (directory, summary)
    }

    /// Relative path → decompressed content of every file under `root`.
    static func contents(_ root: URL) throws -> [String: [UInt8]] {
        var result: [String: [UInt8]] = [:]
        guard let walker = FileManager.default.enumerator(at: root, includingPropertiesForKeys: [.isRegularFileKey]) else { return result }
        let prefix = root.standardizedFileURL.path + "/"
        for case let url as URL in walker {
            guard (try url.resourceValues(forKeys: [.isRegularFileKey])).isRegularFile == true else { continue }
            let bytes = [UInt8](try Data(contentsOf: url))
            let relative = String(url.standardizedFileURL.path.dropFirst(prefix.count))
            result[relative] = relative.hasSuffix(".gz") ? try GzipInflater.gunzip(bytes) : bytes
        }
        return result
    }

    static func lines(_ bytes: [UInt8]) -> [String] {
        var text = String(decoding: bytes, as: UTF8.self)
        if text.hasSuffix("\n") { text.removeLast() }
        return text.isEmpty ? [] : text.components(separatedBy: "\n")
    }

    static func truth(_ root: URL) throws -> [[String: Any]] {
        let data = try Data(contentsOf: root.appendingPathComponent("truth.jsonl"))
        return try lines([UInt8](data)).map { line in
            try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        }
    }

    // MARK: - Determinism

    @Test func sameSeedAndFlagsGiveIdenticalOutput() throws {
        for config in [Self.edgeConfig, Self.apiConfig] {
            let (a, _) = try Self.generate(config)
            let (b, _) = try Self.generate(config)
            let ca = try Self.contents(a.url), cb = try Self.contents(b.url)
            #expect(ca.keys.sorted() == cb.keys.sorted())
            for (name, bytes) in ca { #expect(cb[name] == bytes, "\(name) differs between two runs") }
            // The gzip objects themselves are byte-identical too (fixed level, MTIME 0).
            for name in ca.keys where name.hasSuffix(".gz") {
                let ra = try Data(contentsOf: a.url.appendingPathComponent(name))
                let rb = try Data(contentsOf: b.url.appendingPathComponent(name))
                #expect(ra == rb, "\(name): compressed bytes differ")
            }
        }
    }

    @Test func anotherSeedGivesOtherTraffic() throws {
        var other = Self.apiConfig
        other.seed = 8
        let (a, _) = try Self.generate(Self.apiConfig)
        let (b, _) = try Self.generate(other)
        #expect(try Self.contents(a.url)["truth.jsonl"] != Self.contents(b.url)["truth.jsonl"])
    }

    @Test func leavingLogsOutKeepsTheSameTraffic() throws {
        var without = Self.edgeConfig
        without.without = [.waf, .alb]
        let (full, _) = try Self.generate(Self.edgeConfig)
        let (partial, _) = try Self.generate(without)
        let a = try Self.contents(full.url), b = try Self.contents(partial.url)
        #expect(!b.keys.contains { $0.hasPrefix("AWSLogs/") })
        for name in b.keys where name != "truth.jsonl" { #expect(a[name] == b[name], "\(name) changed when WAF/ALB were left out") }
        let truthA = try Self.truth(full.url), truthB = try Self.truth(partial.url)
        #expect(truthA.map { $0["id"] as? String } == truthB.map { $0["id"] as? String })
        #expect(truthA.map { $0["status"] as? Int } == truthB.map { $0["status"] as? Int })
    }

    // MARK: - Ground truth

    /// Every record in truth.jsonl names a real line, that line mentions the request (its path or
    /// one of its ids), and no line belongs to two requests.
    @Test func truthAgreesWithTheFiles() throws {
        for config in [Self.edgeConfig, Self.apiConfig] {
            let (directory, summary) = try Self.generate(config)
            let files = try Self.contents(directory.url).mapValues(Self.lines)
            let truth = try Self.truth(directory.url)
            #expect(truth.count == summary.requests)
            #expect(Set(truth.compactMap { $0["id"] as? String }).count == truth.count)
            var claimed = Set<String>()
            var recordCount = 0
            for entry in truth {
                let path = try #require(entry["path"] as? String)
                let ids = (entry["ids"] as? [String: String]).map { Array($0.values) } ?? []
                #expect(entry["responder"] is String && entry["reason"] is String && entry["time"] is String)
                for record in try #require(entry["records"] as? [[String: Any]]) {
                    recordCount += 1
                    let file = try #require(record["file"] as? String)
                    let number = try #require(record["line"] as? Int)
                    let lines = try #require(files[file], "\(file) is not in the output")
                    try #require(number >= 1 && number <= lines.count, "\(file):\(number) is past the end")
                    let line = lines[number - 1]
                    #expect(line.contains(path) || ids.contains { line.contains($0) },
                            "\(file):\(number) does not mention \(path) or \(ids): \(line)")
                    #expect(claimed.insert("\(file):\(number)").inserted, "\(file):\(number) claimed twice")
                }
            }
            #expect(recordCount > summary.requests)
        }
    }

    @Test func failureModesLeaveTheirMarks() throws {
        let (directory, _) = try Self.generate(Self.edgeConfig)
        let reasons = Set(try Self.truth(directory.url).compactMap { $0["reason"] as? String })
        for reason in ["worker-timeout", "gunicorn-down", "body-too-large", "alb-idle-timeout", "waf-rule RateLimitPerIP",
                       "waf-rule AWS-AWSManagedRulesCommonRuleSet/GenericRFI_QUERYARGUMENTS", "app-forbidden"] {
            #expect(reasons.contains(reason), "no request with reason \(reason)")
        }
        let files = try Self.contents(directory.url)
        let syslog = String(decoding: try #require(files["var/log/syslog"]), as: UTF8.self)
        #expect(syslog.contains("[CRITICAL] WORKER TIMEOUT (pid:"))
        #expect(syslog.contains("systemd[1]: gunicorn.service: Main process exited"))
        let errors = String(decoding: try #require(files["var/log/nginx/error.log"]), as: UTF8.self)
        #expect(errors.contains("upstream prematurely closed connection while reading response header from upstream"))
        #expect(errors.contains("connect() failed (111: Connection refused) while connecting to upstream"))
        #expect(errors.contains("client intended to send too large body:"))
        #expect(files.keys.contains("var/log/nginx/access.log.1"))
        #expect(files.keys.contains("var/log/nginx/access.log.2.gz"))

        let (api, _) = try Self.generate(Self.apiConfig)
        let apiReasons = Set(try Self.truth(api.url).compactMap { $0["reason"] as? String })
        #expect(apiReasons.isSuperset(of: ["missing-authentication-token", "throttled", "ok"]))
    }

    @Test func lineShapesMatchTheVendors() throws {
        let (directory, _) = try Self.generate(Self.edgeConfig)
        let files = try Self.contents(directory.url).mapValues(Self.lines)
        let access = try #require(files["var/log/nginx/access.log"]?.first)
        let nginx = try Regex(#"^10\.1\.1\.21[01] - - \[\d{2}/Feb/2025:\d{2}:\d{2}:\d{2} \+0900\] "[A-Z]+ \S+ HTTP/1\.1" \d{3} \d+ "[^"]*" "[^"]*" "[^"]*" rt=\d+\.\d{3} urt="[^"]*"$"#)
        #expect(access.wholeMatch(of: nginx) != nil, "\(access)")
        let syslog = try #require(files["var/log/syslog"]?.first)
        #expect(syslog.wholeMatch(of: try Regex(#"^Feb  6 \d{2}:\d{2}:\d{2} ip-10-1-1-50 gunicorn\[\d+\]: INFO 2025-02-06 \d{2}:\d{2}:\d{2},\d{3} \[app\] Request: [A-Z]+ http://example\.com:443/\S*$"#)) != nil, "\(syslog)")
        let alb = try #require(files.first { $0.key.contains("elasticloadbalancing") }?.value.first)
        #expect(alb.split(separator: " ").count >= 30)
        #expect(alb.hasSuffix(alb.split(separator: " ").last.map(String.init) ?? "") && alb.contains(" TID_"))
        let waf = try #require(files.first { $0.key.contains("WAFLogs") }?.value.first)
        let record = try #require(try JSONSerialization.jsonObject(with: Data(waf.utf8)) as? [String: Any])
        #expect(record["timestamp"] is Int && record["httpSourceName"] as? String == "ALB")
        #expect(files.keys.contains { $0.wholeMatch(of: try! Regex(#"AWSLogs/111122223333/WAFLogs/ap-northeast-1/web-acl-prod/2025/02/06/05/\d{2}/111122223333_waflogs_ap-northeast-1_web-acl-prod_20250206T05\d{2}Z_[0-9a-f]{8}\.log\.gz"#)) != nil })

        let (api, _) = try Self.generate(Self.apiConfig)
        let apiFiles = try Self.contents(api.url).mapValues(Self.lines)
        let report = try #require(apiFiles.values.flatMap { $0 }.first { $0.contains("REPORT RequestId: ") })
        #expect(report.contains("\tDuration: ") && report.contains(" ms\tBilled Duration: "))
        let exported = try Regex(#"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z .+$"#)
        for (name, lines) in apiFiles where name.hasPrefix("exportedlogs/") {
            for line in lines { #expect(line.wholeMatch(of: exported) != nil, "\(name): \(line)") }
        }
    }

    // MARK: - Importers

    /// The nginx access importer exists today: it must take every access-log line.
    @Test func nginxAccessLinesAreAccepted() throws {
        let (directory, _) = try Self.generate(Self.edgeConfig)
        let nginxDirectory = directory.url.appendingPathComponent("var/log/nginx")
        let paths = try FileManager.default.contentsOfDirectory(atPath: nginxDirectory.path)
            .filter { $0.hasPrefix("access.log") }.map { nginxDirectory.appendingPathComponent($0).path }
        #expect(paths.count >= 3)
        let summary = try Ingester(store: TimelineStore()).ingest(paths: paths)
        #expect(summary.rejected == 0)
        for file in summary.files {
            #expect(file.status == .ingested, "\(file.path): \(file.skipped ?? "")")
            #expect(file.format == "nginx-access")
            #expect(file.events == file.lines)
        }
    }

    @Test(.enabled(if: SimulatorTests.importersReady))
    func everyGeneratedLineIsAcceptedByOurImporters() throws {
        for config in [Self.edgeConfig, Self.apiConfig] {
            let (directory, _) = try Self.generate(config)
            let truthPath = directory.url.appendingPathComponent("truth.jsonl").path
            let paths = try FileManager.default.subpathsOfDirectory(atPath: directory.path)
                .map { directory.url.appendingPathComponent($0).path }
                .filter { path in
                    var isDirectory: ObjCBool = false
                    return path != truthPath && FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) && !isDirectory.boolValue
                }
            let summary = try Ingester(store: TimelineStore()).ingest(paths: paths)
            #expect(summary.rejected == 0)
            for file in summary.files {
                #expect(file.status == .ingested, "\(file.path): \(file.skipped ?? "") \(file.notes)")
                #expect(file.rejected == 0, "\(file.path): \(file.rejected) rejected")
            }
        }
    }

    // MARK: - Fixtures

    @Test(.enabled(if: SimulatorTests.fixturesPresent))
    func fixturesAreReproducibleFromTheirSeedAndFlags() throws {
        for fixture in IncidentFixture.all {
            let directory = try TemporaryDirectory()
            try fixture.generate(into: directory.url)
            let committed = try Self.contents(Self.fixturesDirectory.appendingPathComponent(fixture.name))
            let regenerated = try Self.contents(directory.url)
            #expect(committed.keys.sorted() == regenerated.keys.sorted(), "\(fixture.name): file lists differ")
            for (name, bytes) in regenerated {
                #expect(committed[name] == bytes, "\(fixture.name)/\(name) differs from the committed fixture")
            }
        }
    }

    @Test(.enabled(if: SimulatorTests.fixturesPresent))
    func fixturesTellTheirStories() throws {
        let waf = try Self.truth(Self.fixturesDirectory.appendingPathComponent("waf-block-2025-02-06"))
        let blocked = waf.filter { $0["client_ip"] as? String == "203.0.113.45" && $0["responder"] as? String == "waf" }
        #expect(blocked.count == 3)
        for entry in blocked {
            #expect(entry["status"] as? Int == 403 && entry["path"] as? String == "/app/admin")
            #expect((entry["time"] as? String)?.hasPrefix("2025-02-06T05:32:") == true)
            let layers = Set(((entry["records"] as? [[String: Any]]) ?? []).compactMap { $0["layer"] as? String })
            #expect(layers == ["waf", "alb"])
        }
        #expect(waf.contains { $0["status"] as? Int == 403 && $0["responder"] as? String == "app" })
        #expect(waf.count >= 2000)

        let blind = try Self.truth(Self.fixturesDirectory.appendingPathComponent("waf-block-2025-02-06-no-edge-logs"))
        let hidden = blind.filter { $0["client_ip"] as? String == "203.0.113.45" && $0["responder"] as? String == "waf" }
        #expect(hidden.count == 3 && hidden.allSatisfy { ($0["records"] as? [Any])?.isEmpty == true })

        let api = try Self.truth(Self.fixturesDirectory.appendingPathComponent("apigw-bot-scan-2026-01-22"))
        let bot = api.filter { $0["client_ip"] as? String == "20.171.207.31" }
        #expect(bot.count >= 300)
        for entry in bot {
            #expect(entry["status"] as? Int == 403 && entry["reason"] as? String == "missing-authentication-token")
            let layers = ((entry["records"] as? [[String: Any]]) ?? []).compactMap { $0["layer"] as? String }
            #expect(layers == ["apigateway-access"])
        }
        #expect(api.contains { $0["responder"] as? String == "lambda" })

        for fixture in IncidentFixture.all {
            let root = Self.fixturesDirectory.appendingPathComponent(fixture.name)
            let size = try FileManager.default.subpathsOfDirectory(atPath: root.path).reduce(0) { total, name in
                total + ((try FileManager.default.attributesOfItem(atPath: root.appendingPathComponent(name).path)[.size] as? Int) ?? 0)
            }
            #expect(size < 6 << 20, "\(fixture.name) is \(size) bytes on disk")
        }
    }

    // MARK: - Building blocks

    @Test func clockShapes() {
        let t = SimClock.micros(year: 2025, month: 2, day: 6, hour: 5, minute: 32, second: 45) + 136_400
        #expect(SimClock.syslog(t, offset: 0) == "Feb  6 05:32:45")
        #expect(SimClock.clf(t, offset: 9 * 3600) == "06/Feb/2025:14:32:45 +0900")
        #expect(SimClock.python(t, offset: 9 * 3600) == "2025-02-06 14:32:45,136")
        #expect(SimClock.gunicorn(t, offset: 9 * 3600) == "[2025-02-06 14:32:45 +0900]")
        #expect(SimClock.nginxError(t, offset: 9 * 3600) == "2025/02/06 14:32:45")
        #expect(SimClock.isoMicros(t) == "2025-02-06T05:32:45.136400Z")
        #expect(SimClock.compact(t) == "20250206T0532Z")
        #expect(SimClock.seconds(23_400) == "0.023")
        #expect(SimClock.parseISO("2025-02-06T14:32:45+09:00") == t - 136_400)
        #expect(SimClock.parseISO("2025-02-06T05:32Z") == t - 45_136_400)
        #expect(SimClock.parseISO("2025-13-06T05:32Z") == nil)
        #expect(SimClock.wall(SimClock.micros(year: 2024, month: 2, day: 29, hour: 23), offset: 3600).day == 1)
    }

    @Test func randomIsStableAcrossRuns() {
        var r = SimRandom(seed: 1)
        let first = (0..<3).map { _ in r.next() }
        var again = SimRandom(seed: 1)
        #expect((0..<3).map { _ in again.next() } == first)
        var u = SimRandom(seed: 99)
        let id = u.uuid()
        #expect(id.count == 36 && id.split(separator: "-").map(\.count) == [8, 4, 4, 4, 12])
        for x in [1e-9, 0.001, 0.3, 1, 2.5, 10, 1e6] {
            #expect(abs(PortableMath.log(x) - Foundation.log(x)) <= 1e-15 * max(1, abs(Foundation.log(x))))
        }
        for x in [-20.0, -1, -0.1, 0, 0.5, 1, 3, 30] {
            #expect(abs(PortableMath.exp(x) - Foundation.exp(x)) <= 1e-14 * Foundation.exp(x))
        }
        #expect(Rotation("size:300k") == .size(300 * 1024) && Rotation("daily") == .daily && Rotation("weekly") == nil)
    }
}
