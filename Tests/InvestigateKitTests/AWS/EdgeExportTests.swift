import Foundation
import Testing
@testable import InvestigateKit

/// The new edge formats in the ECS and Timesketch exports: named as Elastic's integrations name
/// them, with the stamp's meaning.
@Suite struct EdgeExportTests {
    @Test func edgeRecordsAreNamedAndDated() throws {
        let registry = ImporterRegistry.standard
        let dir = try TemporaryDirectory()
        for id in ["cloudfront", "nlb", "alb-connection", "cloudtrail"] {
            let importer = try #require(registry.importer(id: id))
            let sample = importer.samples[0]
            try dir.write(sample.fileName.replacingOccurrences(of: ".gz", with: ""), sample.lines.joined(separator: "\n") + "\n")
        }
        let store = try TimelineStore()
        _ = try TimelineUpdate.run(store: store, paths: [dir.path], options: ImportOptions())
        var bytes: [UInt8] = []
        _ = try Exporter.run(store, ExportQuery(), writer: ExportFormat.ecs.writer()) { bytes += $0 }
        let docs = try bytes.split(separator: 0x0A).map { try #require(try JSONSerialization.jsonObject(with: Data($0)) as? [String: Any]) }
        var seen: [String: [String: Any]] = [:]
        for doc in docs {
            let event = try #require(doc["event"] as? [String: Any])
            seen[event["provider"] as? String ?? "?"] = event
        }
        #expect((seen["cloudfront"]?["dataset"] as? String) == "aws.cloudfront_logs")
        #expect((seen["nlb"]?["dataset"] as? String) == "aws.elb_logs")
        #expect((seen["nlb"]?["category"] as? [String]) == ["network"])
        #expect((seen["alb"]?["dataset"] as? String) == "aws.elb_logs")
        #expect((seen["cloudtrail"]?["dataset"] as? String) == "aws.cloudtrail")
        var ts: [UInt8] = []
        _ = try Exporter.run(store, ExportQuery(), writer: ExportFormat.timesketch.writer()) { ts += $0 }
        let descs = try Set(ts.split(separator: 0x0A).map { line -> String in
            let o = try #require(try JSONSerialization.jsonObject(with: Data(line)) as? [String: Any])
            return "\(o["layer"] ?? "?"):\(o["timestamp_desc"] ?? "?")"
        })
        #expect(descs.isSuperset(of: ["cloudfront:Response sent", "nlb:Connection closed", "alb:Connection established or failed", "cloudtrail:API call"]), "\(descs)")
    }
}
