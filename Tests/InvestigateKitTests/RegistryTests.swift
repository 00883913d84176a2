import Foundation
import Testing
@testable import InvestigateKit

/// Every importer in the standard registry, including those added later: described, with samples
/// that parse cleanly and are recognised as that importer's.
@Suite struct RegistryTests {
    @Test func everyImporterIsDescribed() {
        for importer in ImporterRegistry.standard.importers {
            #expect(!importer.id.isEmpty)
            #expect(!importer.title.isEmpty, "\(importer.id) has no title")
            #expect(importer.documentation.hasPrefix("https://"), "\(importer.id): documentation must be the vendor's https:// reference")
            #expect(!importer.samples.isEmpty, "\(importer.id) has no sample")
            #expect(importer.samples.allSatisfy { !$0.lines.isEmpty && !$0.fileName.isEmpty }, "\(importer.id) has an empty sample")
        }
    }

    @Test func idsAreUnique() {
        let ids = ImporterRegistry.standard.ids
        #expect(Set(ids).count == ids.count, "duplicate ids in \(ids)")
    }

    @Test(arguments: ImporterRegistry.standard.ids)
    func samplesParseAndAreDetected(_ id: String) throws {
        let importer = try #require(ImporterRegistry.standard.importer(id: id))
        for sample in importer.samples {
            let sink = try parse(importer, sample.lines, path: "/var/log/investigate-sample/\(sample.fileName)")
            #expect(sink.rejected.isEmpty, "\(id) rejects its own sample \(sample.fileName): \(sink.rejected.map { "line \($0.line): \($0.reason)" })")
            #expect(!sink.events.isEmpty, "\(id) reads no event from its sample \(sample.fileName)")
            let detection = ImporterRegistry.standard.detect(sample.lines, fileName: sample.fileName)
            #expect(detection.importer?.id == id,
                    "sample \(sample.fileName) of \(id) is detected as \(detection.importer?.id ?? "nothing"); scores: \(detection.scores.map { "\($0.id)=\($0.score)" })")
            // Ingest stops scoring at the first certain importer: that must pick the same one, and
            // only holds while every score stays a share of lines.
            #expect(detection.scores.allSatisfy { $0.score >= 0 && $0.score <= 1 })
            let quick = ImporterRegistry.standard.detect(sample.lines, fileName: sample.fileName, stopAtCertain: true)
            #expect(quick.importer?.id == detection.importer?.id)
        }
    }

    @Test func blankSampleLinesAreNotScored() throws {
        // Spaces, tabs and other Unicode blanks make a line blank; any visible character does not.
        let nginx = try #require(ImporterRegistry.standard.importer(id: "nginx-access")?.samples.first?.lines.first)
        let padded = ["", "   ", "\t \t", "\u{3000}\u{00A0}", nginx, " "]
        let detection = ImporterRegistry.standard.detect(padded, fileName: "access.log")
        #expect(detection.importer?.id == "nginx-access")
        #expect(detection.scores.first { $0.id == "nginx-access" }?.score == 1)
        #expect(ImporterRegistry.standard.detect(["  ", "\t"], fileName: "access.log").importer == nil)
        let noise = ImporterRegistry.standard.detect(["  x", nginx], fileName: "access.log")
        #expect(noise.scores.first { $0.id == "nginx-access" }?.score == 0.5)
    }

    @Test func formatReferenceIsCurrent() throws {
        let url = Corpus.repositoryRoot.appendingPathComponent("docs/formats.md")
        let stored = try? String(contentsOf: url, encoding: .utf8)
        // A plain Bool, so a failure prints the instruction, not both whole documents.
        let isCurrent = stored == FormatCatalog.markdown(.standard)
        #expect(isCurrent,
                "docs/formats.md is stale or missing: run `swift run investigate formats --markdown > docs/formats.md`")
    }
}
