import ArgumentParser
import Foundation
import InvestigateKit

/// `investigate score`: correlation accuracy against a simulator's truth.jsonl (benchmarks; hidden).
struct ScoreCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "score",
        abstract: "Measure correlation against a logsim truth.jsonl (precision of links, recall of linkable records).",
        shouldDisplay: false)

    @OptionGroup var store: StoreOptions

    @Option(name: .long, help: "The simulator output directory (holding truth.jsonl); its logs must be in --db.")
    var corpus: String

    @Flag(name: .long, help: "Print the score as one JSON document.")
    var json = false

    func run() throws {
        let timeline = try openStore(store.db)
        let root = URL(fileURLWithPath: corpus)
        let score = try GroundTruthScore.evaluate(store: timeline, truth: root.appendingPathComponent("truth.jsonl"), root: root)
        if json { try writeJSON(score) } else {
            print(score.description)
            for (pair, n) in score.missedByLayers.sorted(by: { $0.value > $1.value }).prefix(8) { print("  missed \(pair): \(n)") }
        }
    }
}
