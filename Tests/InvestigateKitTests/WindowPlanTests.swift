import Foundation
import Testing
@testable import InvestigateKit
import LogSimKit

/// A question about minutes of an archive reads the files whose names' stamps can hold them, and
/// answers exactly as after a full ingest.
@Suite struct WindowPlanTests {
    static func t(_ iso: String) -> Int64 { UserTime.parse(iso, zone: .utc)! }

    @Test func stampsInNamesAndFoldersGiveSpans() throws {
        let alb = "AWSLogs/1/elasticloadbalancing/r/2025/02/06/1_elasticloadbalancing_r_app.x.y_20250206T0525Z_10.0.0.1_abc.log.gz"
        let albSpan = try #require(WindowPlan.span(ofPath: alb))
        #expect(albSpan.contains(Self.t("2025-02-06T05:22:00Z")) && !albSpan.contains(Self.t("2025-02-06T06:00:00Z")))
        let waf = "AWSLogs/1/WAFLogs/r/acl/2025/02/06/05/30/1_waflogs_r_acl_20250206T0530Z_abc.log.gz"
        #expect(WindowPlan.span(ofPath: waf)?.contains(Self.t("2025-02-06T05:33:00Z")) == true)
        let firehose = "waf/2025/02/06/05/aws-waf-logs-delivery-1-2025-02-06-05-12-00-abc"
        #expect(WindowPlan.span(ofPath: firehose)?.contains(Self.t("2025-02-06T05:40:00Z")) == true)
        let daily = "app/logs/2025-02-06.log"
        // Any zone's day: 14:32 JST on the 6th is 05:32 UTC; 23:00 in UTC-12 is the 7th, 11:00 UTC.
        #expect(WindowPlan.span(ofPath: daily)?.contains(Self.t("2025-02-07T11:00:00Z")) == true)
        #expect(WindowPlan.span(ofPath: "var/log/nginx/access.log.2.gz") == nil)
        #expect(WindowPlan.span(ofPath: "exportedlogs/e8/2026/01/22/[$LATEST]31af/000000.gz")?.contains(Self.t("2026-01-23T03:00:00Z")) == true)
        // CloudTrail: calls up to 15 minutes before delivery, context for the hour after them.
        let trail = "AWSLogs/1/CloudTrail/us-east-1/2025/02/06/1_CloudTrail_us-east-1_20250206T0525Z_EXAMPLEabc.json.gz"
        let trailSpan = try #require(WindowPlan.span(ofPath: trail))
        #expect(trailSpan.contains(Self.t("2025-02-06T05:12:00Z")) && trailSpan.contains(Self.t("2025-02-06T06:20:00Z")))
        #expect(!trailSpan.contains(Self.t("2025-02-06T07:00:00Z")) && !trailSpan.contains(Self.t("2025-02-06T04:30:00Z")))
    }

    @Test func aWindowReadsOnlyTheFilesThatCanHoldItAndLaterQuestionsReadTheRest() throws {
        let dir = try TemporaryDirectory()
        func waf(_ hour: Int) -> String {
            let ms = (Self.t(String(format: "2025-02-06T%02d:31:00Z", hour))) / 1000
            return #"{"timestamp":\#(ms),"formatVersion":1,"webaclId":"arn:aws:wafv2:r:1:regional/webacl/acl/x","terminatingRuleId":"Default_Action","terminatingRuleType":"REGULAR","action":"ALLOW","httpSourceName":"ALB","httpSourceId":"1-app/x/y","ruleGroupList":[],"rateBasedRuleList":[],"nonTerminatingMatchingRules":[],"httpRequest":{"clientIp":"198.51.100.7","country":"JP","headers":[],"uri":"/","args":"","httpVersion":"HTTP/1.1","httpMethod":"GET","requestId":"1-x"}}"# + "\n"
        }
        for hour in [5, 9] {
            try dir.write(String(format: "AWSLogs/1/WAFLogs/r/acl/2025/02/06/%02d/30/1_waflogs_r_acl_20250206T%02d30Z_a.log", hour, hour), waf(hour))
        }
        var options = ImportOptions()
        options.window = Self.t("2025-02-06T05:29:00Z")...Self.t("2025-02-06T05:33:00Z")
        let store = try TimelineStore()
        let first = try TimelineUpdate.run(store: store, paths: [dir.path], options: options).ingest
        #expect(first.files.filter { $0.status == .ingested }.count == 1)
        #expect(first.files.filter(WindowPlan.isOutsideWindow).count == 1)
        #expect(InputProblems.of(first).isEmpty)
        // Asking about 09:31 reads the other file; asking again reads nothing.
        options.window = Self.t("2025-02-06T09:29:00Z")...Self.t("2025-02-06T09:33:00Z")
        let second = try TimelineUpdate.run(store: store, paths: [dir.path], options: options).ingest
        #expect(second.files.filter { $0.status == .ingested }.count == 1)
        let third = try TimelineUpdate.run(store: store, paths: [dir.path], options: options).ingest
        #expect(third.files.allSatisfy { $0.status == .unchanged || WindowPlan.isOutsideWindow($0) })
        #expect(third.events == 0)
    }

    /// Verdicts for windows across a generated archive are those of a full ingest.
    @Test func verdictsFromAWindowEqualThoseAfterAFullIngest() throws {
        let dir = try TemporaryDirectory()
        let start = SimClock.micros(year: 2025, month: 2, day: 6, hour: 3)
        let config = SimulationConfig(stack: .edge, seed: 7, start: start, requests: 3000, rate: 0.25,
                                      failures: [.wafBlock, .workerTimeout, .gunicornDown], rotation: .size(200_000))
        _ = try Simulator.run(config, into: dir.url)
        let full = try TimelineStore()
        _ = try TimelineUpdate.run(store: full, paths: [dir.path], options: ImportOptions())
        var leftOut = 0
        // One store asked about each window in turn: what earlier questions stored in part does
        // not change later answers.
        let asked = try TimelineStore()
        for minutes in stride(from: 30, through: 180, by: 50) {
            let at = start + Int64(minutes) * 60_000_000
            let q = DiagnosisQuery(at: at, halfWindow: 120_000_000)
            var options = ImportOptions()
            options.window = q.from...q.to
            let windowed = try TimelineStore()
            let run = try TimelineUpdate.run(store: windowed, paths: [dir.path], options: options).ingest
            let a = try Diagnoser(store: full).diagnose(q).findings.map { [$0.responder, $0.cause, $0.rule, String($0.count), $0.client_ip ?? "-", $0.path ?? "-"] }
            let b = try Diagnoser(store: windowed).diagnose(q).findings.map { [$0.responder, $0.cause, $0.rule, String($0.count), $0.client_ip ?? "-", $0.path ?? "-"] }
            #expect(a == b, "window at +\(minutes) min: \(run.files.filter(WindowPlan.isOutsideWindow).count) files not read")
            _ = try TimelineUpdate.run(store: asked, paths: [dir.path], options: options)
            let c = try Diagnoser(store: asked).diagnose(q).findings.map { [$0.responder, $0.cause, $0.rule, String($0.count), $0.client_ip ?? "-", $0.path ?? "-"] }
            #expect(a == c, "window at +\(minutes) min after earlier questions")
            #expect(!a.isEmpty || minutes > 100)
            leftOut += run.files.filter(WindowPlan.isOutsideWindow).count
        }
        // The archive's S3 objects and size-rotated nginx logs are mostly left unread.
        #expect(leftOut > 0)
        // Then `ingest` completes every file: each line once.
        _ = try TimelineUpdate.run(store: asked, paths: [dir.path], options: ImportOptions())
        func lines(_ store: TimelineStore) throws -> [String] {
            try store.read { try String.fetchAll($0, sql: "SELECT s.sha256 || ':' || e.line FROM event e JOIN source s ON s.id = e.source_id ORDER BY 1") }
        }
        let all = try lines(asked)
        #expect(Set(all).count == all.count)
        #expect(all.count == (try lines(full)).count)
        // And the completed timeline answers every window as the full ingest does.
        for minutes in stride(from: 30, through: 180, by: 25) {
            let q = DiagnosisQuery(at: start + Int64(minutes) * 60_000_000, halfWindow: 120_000_000)
            let a = try Diagnoser(store: full).diagnose(q).findings.map { [$0.responder, $0.cause, $0.rule, String($0.count), $0.client_ip ?? "-", $0.path ?? "-"] }
            let c = try Diagnoser(store: asked).diagnose(q).findings.map { [$0.responder, $0.cause, $0.rule, String($0.count), $0.client_ip ?? "-", $0.path ?? "-"] }
            #expect(a == c, "window at +\(minutes) min after the windows were completed by ingest")
        }
    }

    /// Rotated syslog files (year-less stamps) are bounded by their siblings like other logs: the
    /// year is the one nearest the window.
    @Test func rotatedSyslogSiblingsOutsideTheWindowAreNotRead() throws {
        let dir = try TemporaryDirectory()
        func day(_ d: Int, hour: Int) -> String {
            (0..<6).map { i in String(format: "Feb  %d %02d:%02d:00 web-1 cron[42]: job %d ran", d, hour + i, 0, i) }.joined(separator: "\n") + "\n"
        }
        try dir.write("syslog.2.gz", bytes: GzipInflater.gzip(Array(day(2, hour: 6).utf8)))
        try dir.write("syslog.1", day(3, hour: 6) + day(4, hour: 6) + day(4, hour: 12))
        try dir.write("syslog", day(5, hour: 6))
        // Copied with their times (the year of the stamps comes from them at ingest).
        for (name, d) in [("syslog.2.gz", 2), ("syslog.1", 4), ("syslog", 5)] {
            try FileManager.default.setAttributes([.modificationDate: Date(timeIntervalSince1970: TimeInterval(Self.t(String(format: "2025-02-0%dT18:00:00Z", d)) / 1_000_000))],
                                                  ofItemAtPath: dir.url.appendingPathComponent(name).path)
        }
        var options = ImportOptions()
        options.timeZone = .utc
        options.window = Self.t("2025-02-04T11:58:00Z")...Self.t("2025-02-04T12:02:00Z")
        let store = try TimelineStore()
        let run = try TimelineUpdate.run(store: store, paths: [dir.path], options: options).ingest
        let unread = run.files.filter(WindowPlan.isOutsideWindow).map { ($0.path as NSString).lastPathComponent }.sorted()
        #expect(unread == ["syslog", "syslog.2.gz"])
        let stored = try store.read { try Int.fetchOne($0, sql: "SELECT count(*) FROM event WHERE time = ?", arguments: [Self.t("2025-02-04T12:00:00Z")]) }
        #expect(stored == 1)
    }
}
