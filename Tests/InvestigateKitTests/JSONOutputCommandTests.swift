import Foundation
import Testing
@testable import InvestigateKit

/// `--json` on every command prints one JSON document, except where the help says the output is
/// JSON Lines (`timeline`, `replay`, `export`); each command's help says which.
@Suite struct JSONOutputCommandTests {
    static let fixture = Corpus.repositoryRoot.appendingPathComponent("Fixtures/incidents/apigw-bot-scan-2026-01-22").path

    /// The whole of standard output is exactly one JSON object.
    static func oneDocument(_ r: CLIRun, _ what: String) {
        #expect((try? JSONSerialization.jsonObject(with: r.outBytes)) is [String: Any] || (try? JSONSerialization.jsonObject(with: r.outBytes)) is [Any],
                "\(what): not one JSON document: \(r.out.prefix(200))")
    }

    /// Every line is one JSON object, and there are `atLeast` of them.
    static func jsonLines(_ r: CLIRun, _ what: String, atLeast: Int = 2) -> [[String: Any]] {
        let lines = r.out.split(separator: "\n", omittingEmptySubsequences: false)
        #expect(lines.last == "", "\(what): output ends with a newline")
        let objects = lines.dropLast().compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        #expect(objects.count == lines.count - 1 && objects.count >= atLeast, "\(what): not JSON Lines")
        return objects
    }

    @Test func everyCommandsJSONIsWhatItsHelpSays() throws {
        let dir = try TemporaryDirectory()
        let db = dir.url.appendingPathComponent("x.db").path
        guard let ingest = try CLIRun.investigate(["ingest", "--db", db, "--json", Self.fixture]) else { return }
        #expect(ingest.status == 0)
        Self.oneDocument(ingest, "ingest")
        let at = ["--at", "2026-01-22 03:55", "--tz", "UTC"]
        guard let diagnose = try CLIRun.investigate(["--db", db, "--json"] + at) else { return }
        #expect(diagnose.status == 0)
        Self.oneDocument(diagnose, "diagnose")
        guard let scoped = try CLIRun.investigate(["diagnose", "--db", db, "--json"] + at + [Self.fixture]) else { return }
        Self.oneDocument(scoped, "diagnose with PATHs")
        guard let formats = try CLIRun.investigate(["formats", "--json"]) else { return }
        Self.oneDocument(formats, "formats")
        guard let sources = try CLIRun.investigate(["sources", "--db", db, "--json"]) else { return }
        Self.oneDocument(sources, "sources")
        guard let score = try CLIRun.investigate(["score", "--db", db, "--corpus", Self.fixture, "--json"]) else { return }
        #expect(score.status == 0)
        Self.oneDocument(score, "score")

        guard let timeline = try CLIRun.investigate(["timeline", "--db", db, "--json", "--window", "1m"] + at) else { return }
        _ = Self.jsonLines(timeline, "timeline")
        guard let replay = try CLIRun.investigate(["replay", "--db", db, "--json"]) else { return }
        let alerts = Self.jsonLines(replay, "replay")
        #expect(alerts.last?["summary"] != nil)
        guard let export = try CLIRun.investigate(["export", "--db", db, "--format", "ecs"]) else { return }
        _ = Self.jsonLines(export, "export")

        // Two documents on one standard output is refused, not mixed.
        guard let both = try CLIRun.investigate(["--db", db, "--json", "--report-file", "-"] + at) else { return }
        #expect(both.status == 64 && both.out.isEmpty)
        guard let twoFormats = try CLIRun.investigate(["formats", "--json", "--markdown"]) else { return }
        #expect(twoFormats.status == 64)
    }

    @Test func eachHelpSaysWhichJSONItPrints() throws {
        for (command, says) in [("diagnose", "one JSON document"), ("ingest", "one JSON document"), ("formats", "one JSON document"),
                                ("sources", "one JSON document"), ("score", "one JSON document"), ("timeline", "JSON Lines"),
                                ("replay", "JSON Lines"), ("export", "JSON Lines")] {
            guard let r = try CLIRun.investigate([command, "--help"]) else { return }
            let help = r.out.replacingOccurrences(of: "\n", with: " ").split(separator: " ").joined(separator: " ")
            #expect(help.contains(says), "\(command) --help does not say \(says)")
        }
    }
}
