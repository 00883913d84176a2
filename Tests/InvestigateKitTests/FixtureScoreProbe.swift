import Foundation
import Testing
@testable import InvestigateKit

@Suite struct FixtureScoreProbe {
    @Test(.enabled(if: ProcessInfo.processInfo.environment["PROBE_FIXTURE"] != nil)) func probe() throws {
        let dir = URL(fileURLWithPath: ProcessInfo.processInfo.environment["PROBE_FIXTURE"]!)
        let store = try TimelineStore()
        _ = try TimelineUpdate.run(store: store, paths: [dir.path], options: ImportOptions())
        let score = try GroundTruthScore.evaluate(store: store, truth: dir.appendingPathComponent("truth.jsonl"), root: dir)
        print("SCORE \(dir.lastPathComponent): \(score)")
    }
}
