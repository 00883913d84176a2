import Foundation
import Testing
@testable import InvestigateKit

/// Attacker-controlled lines through every importer, built by cutting, splicing and seeding each
/// importer's own sample lines with the tokens its parser looks for. A crash ends the test run;
/// otherwise every line must come out as events or rejected lines, never vanish.
///
/// Single-byte corruption rarely reaches the branches that slice a message by what it found in
/// it; `Exception on [GET]` (a Flask line whose last " [" is the prefix's own space) crashed ingest
/// until this kind of mutation found its way into the suite.
@Suite struct HostileMutationTests {
    /// Tokens parsers key on: brackets, separators, quotes, prefixes of the messages they
    /// interpret, numbers at the edges, escapes and non-ASCII.
    static let tokens = [
        "[", "]", " [", "] ", "(", ")", "{", "}", "\"", "\\", "\\\"", ":", ": ", ",", ", ", ";", "=", "?", "/", " ", "  ", "\t",
        "-", "+", ".", "0", "9", "99999999999999999999", "-1", "1e400", "NaN", "null", "true",
        "Exception on ", "Request: ", "Response: ", "Root=", "client: ", "request: \"", "upstream: \"", "host: \"",
        "GET ", "HTTP/1.1", "http://", "https://[::1]:", "%", "%(", "\u{301}", "é", "日本", "\u{FEFF}", "\r", "\u{0}",
    ]

    static func mutants(of line: String, count: Int, using generator: inout some RandomNumberGenerator) -> [String] {
        let characters = Array(line)
        guard !characters.isEmpty else { return [] }
        return (0..<count).map { _ in
            var c = characters
            for _ in 0..<Int.random(in: 1...3, using: &generator) {
                let at = Int.random(in: 0...c.count, using: &generator)
                switch Int.random(in: 0..<5, using: &generator) {
                case 4: // delete a word and the space after it (`Exception on /a [GET]` → `Exception on [GET]`)
                    let starts = c.indices.filter { $0 == 0 || c[$0 - 1] == " " }
                    guard let start = starts.randomElement(using: &generator) else { break }
                    var end = start
                    while end < c.count, c[end] != " " { end += 1 }
                    c.removeSubrange(start..<min(c.count, end + 1))
                case 0 where at < c.count: // delete a span
                    c.removeSubrange(at..<min(c.count, at + Int.random(in: 1...24, using: &generator)))
                case 1: // insert a token
                    c.insert(contentsOf: tokens.randomElement(using: &generator)!, at: at)
                case 2 where !characters.isEmpty: // splice in a span of the original line
                    let from = Int.random(in: 0..<characters.count, using: &generator)
                    c.insert(contentsOf: characters[from..<min(characters.count, from + Int.random(in: 1...16, using: &generator))], at: at)
                default: // cut the line here
                    c.removeSubrange(min(at, c.count)...)
                }
            }
            return String(c)
        }
    }

    @Test(arguments: ImporterRegistry.standard.ids)
    func mutatedSamplesNeverCrashNorVanish(_ id: String) throws {
        let importer = try #require(ImporterRegistry.standard.importer(id: id))
        var generator = SystemRandomNumberGenerator()
        for sample in importer.samples {
            for (n, line) in sample.lines.enumerated() {
                for (k, mutant) in Self.mutants(of: line, count: 150, using: &generator).enumerated() {
                    // In place, so multi-line formats see the mutant among its neighbours.
                    var lines = sample.lines
                    lines[n] = mutant
                    // Detection runs parsers too (the Flask crash was first hit there).
                    if k % 10 == 0 { _ = ImporterRegistry.standard.detect(lines, fileName: sample.fileName) }
                    let sink = try parse(importer, lines, path: "/var/log/investigate-sample/\(sample.fileName)")
                    // Blank lines, and commas between JSON values, are structure, not records.
                    let nonEmpty = lines.filter { !$0.unicodeScalars.allSatisfy { $0 == "," || $0.properties.isWhitespace } }.count
                    // Continuation lines fold into the record before them, and a JSON array or
                    // export may hold several records in one line: only "nothing at all" is wrong.
                    #expect(nonEmpty == 0 || !sink.events.isEmpty || !sink.rejected.isEmpty || !sink.notes.isEmpty,
                            "\(id): every line of a mutated sample vanished: \(mutant.debugDescription)")
                    // And line by line: each is in an event, a rejected record, or framing.
                    let missing = LineAccountingTests.unaccounted(lines.map { Array($0.utf8) }, events: sink.events.map { ($0.line, $0.lineEnd) },
                                                                  rejected: sink.rejected.map(LineAccountingTests.span))
                    #expect(missing.count <= sink.framingLines, "\(id): lines \(missing) of a mutated sample vanished: \(mutant.debugDescription)")
                }
            }
        }
    }
}
