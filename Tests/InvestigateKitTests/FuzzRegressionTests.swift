import Foundation
import Testing
@testable import InvestigateKit

/// Inputs the fuzzer (scripts/fuzz.sh) or the hostile campaigns found, one folder per importer
/// under FuzzFindings/: each must now pass the harness's invariants (no crash, no vanished line).
@Suite struct FuzzRegressionTests {
    static let root = Corpus.repositoryRoot.appendingPathComponent("Tests/InvestigateKitTests/FuzzFindings")

    static var findings: [String] {
        let fm = FileManager.default
        return ((try? fm.subpathsOfDirectory(atPath: root.path)) ?? []).filter { $0.contains("/") }.sorted()
    }

    @Test(arguments: findings) func aFindingStaysFixed(_ relative: String) throws {
        let importer = String(relative.split(separator: "/")[0])
        let data = try #require(FileManager.default.contents(atPath: Self.root.appendingPathComponent(relative).path))
        #expect(FuzzHarness.check(Array(data), importerID: importer) == nil)
        // And with detection choosing, as ingest does.
        #expect(FuzzHarness.check(Array(data), importerID: nil) == nil)
    }

    @Test func theHarnessCatchesALineThatVanishes() {
        // A parser that skipped a line without a trace would fail here: the harness itself is tested.
        #expect(FuzzHarness.checkOne(VanishingImporter(), ["kept", "dropped"]) != nil)
    }
}

/// An importer that silently drops every second line: what the harness exists to catch.
private struct VanishingImporter: Importer {
    let id = "vanishing"
    let title = "test"
    let layer = Layer.app
    let documentation = ""
    let fieldNotes = ""
    let samples: [FormatSample] = []
    func recognize(_ lines: [String], fileName: String) -> Double { 0 }
    func makeParser(_ context: ParseContext) throws -> any RecordParser { Parser() }
    struct Parser: RecordParser {
        mutating func consume(_ line: Line, into sink: inout RecordSink) {
            if line.number % 2 == 1 { sink.emit(Event(time: 0, layer: .app, kind: .log, line: line.number, raw: line.copyBytes())) }
        }
        mutating func finish(into sink: inout RecordSink) {}
    }
}
