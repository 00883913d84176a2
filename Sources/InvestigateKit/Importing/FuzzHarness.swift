import Foundation

/// One input through format detection and an importer's parser, with the invariants every
/// importer keeps whatever the bytes: it does not crash or hang, and every line ends up in an
/// event, a rejected record, declared framing or is blank. The libFuzzer target
/// (`Sources/investigate-fuzz`, `scripts/fuzz.sh`) and the regression tests share it.
public enum FuzzHarness {
    /// Importer families the fuzz target runs one at a time (`FUZZ_IMPORTER`).
    public static var families: [String] { ImporterRegistry.standard.ids }

    /// The fuzzer's starting inputs for an importer: its samples, and inputs that reach what its
    /// samples cannot (they must parse cleanly, so a shape it recognises only to reject is not one):
    /// the CloudWatch console CSV that `cloudwatch-metrics` rejects.
    public static func seeds(for importer: any Importer) -> [[String]] {
        var seeds = importer.samples.map(\.lines)
        if importer.id == CloudWatchMetricsImporter().id { seeds += CloudWatchConsoleCSV.fuzzSeeds }
        return seeds
    }

    /// The invariant broken by this input, or nil. `importerID` nil tries detection and, when it
    /// picks nothing, every importer in turn.
    public static func check(_ data: [UInt8], importerID: String?) -> String? {
        // Lines as the pipeline splits them: on LF, a CR before it kept in the line.
        var lines = data.split(separator: 0x0A, omittingEmptySubsequences: false).map { String(decoding: $0, as: UTF8.self) }
        if lines.last?.isEmpty ?? false { lines.removeLast() }
        if lines.count > 2_000 { lines = Array(lines.prefix(2_000)) }
        let registry = ImporterRegistry.standard
        let detected = registry.detect(Array(lines.prefix(Ingester.detectionSampleLines)), fileName: "fuzz.log").importer
        let importers: [any Importer]
        if let id = importerID, let one = registry.importer(id: id) { importers = [one] } else if let detected { importers = [detected] } else { importers = registry.importers }
        for importer in importers {
            if let problem = checkOne(importer, lines) { return "\(importer.id): \(problem)" }
        }
        return nil
    }

    static func checkOne(_ importer: any Importer, _ lines: [String]) -> String? {
        let context = ParseContext(path: "/var/log/fuzz/\(importer.samples.first?.fileName ?? "fuzz.log")")
        guard var parser = try? importer.makeParser(context) else { return nil }
        var sink = RecordSink()
        for (i, text) in lines.enumerated() {
            Line.with(text, number: i + 1) { parser.consume($0, into: &sink) }
        }
        parser.finish(into: &sink)
        var covered = Set<Int>()
        for e in sink.events where e.line >= 1 && e.lineEnd >= e.line {
            covered.formUnion(e.line...min(e.lineEnd, lines.count))
        }
        for r in sink.rejected where r.line >= 1 {
            covered.formUnion(r.line...max(r.line, min(r.lineEnd, lines.count)))
        }
        var unaccounted: [Int] = []
        for (i, line) in lines.enumerated() where !covered.contains(i + 1) {
            let blank = line.unicodeScalars.allSatisfy { $0 == " " || $0 == "\t" || $0 == "\r" }
            if !blank && !JSONFraming.isFrame(Array(line.utf8)) { unaccounted.append(i + 1) }
        }
        if unaccounted.count > sink.framingLines {
            return "lines \(unaccounted.prefix(5)) neither in an event, a rejected record, framing nor blank"
        }
        return nil
    }
}
