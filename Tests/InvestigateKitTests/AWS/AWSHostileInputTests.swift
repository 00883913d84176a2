import Foundation
import Testing
@testable import InvestigateKit

/// Attacker-controlled bytes through every AWS importer: truncations, corruptions, deep nesting.
/// Nothing may crash, and every non-empty line ends up as an event or a rejected line.
@Suite struct AWSHostileInputTests {
    static let ids = AWSImporterTests.awsIDs

    @Test(arguments: ids)
    func truncatedAndCorruptedSamplesNeverCrash(id: String) throws {
        let importer = try #require(ImporterRegistry.standard.importer(id: id))
        var generator = SystemRandomNumberGenerator()
        for sample in importer.samples {
            for line in sample.lines {
                let bytes = Array(line.utf8)
                for cut in stride(from: 0, to: bytes.count, by: max(1, bytes.count / 23)) {
                    var truncated = sample.lines
                    truncated[truncated.firstIndex(of: line) ?? 0] = String(decoding: bytes.prefix(cut), as: UTF8.self)
                    _ = try parse(importer, truncated)
                }
                for _ in 0..<20 {
                    var mutated = bytes
                    for _ in 0..<3 where !mutated.isEmpty {
                        mutated[Int.random(in: 0..<mutated.count, using: &generator)] = UInt8.random(in: 0...255, using: &generator)
                    }
                    _ = try parse(importer, [String(decoding: mutated, as: UTF8.self)])
                }
            }
        }
    }

    @Test(arguments: ids)
    func deepNestingAndOddValues(id: String) throws {
        let importer = try #require(ImporterRegistry.standard.importer(id: id))
        let deep = String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)
        let deepObject = #"{"timestamp":1700000000000,"webaclId":"x","httpRequest":"# + String(repeating: #"{"a":"#, count: 20_000) + "1" + String(repeating: "}", count: 20_001)
        let lines = [deep, deepObject, "{}", "[]", "null", "\u{0}\u{1}\u{2}", #"{"requestId":null,"status":[],"httpMethod":{}}"#,
                     #"{"timestamp":1e400,"message":"x"}"#, #"{"timestamp":-99999999999999999999,"action":"BLOCK","httpRequest":{}}"#,
                     "(x) (", "REPORT RequestId: \tDuration: NaN ms", "[ERROR]", "\"unterminated", "2020-13-45T99:99:99.999Z x"]
        let sink = try parse(importer, lines)
        let accounted = Set(sink.events.flatMap { Array($0.line...max($0.line, $0.lineEnd)) } + sink.rejected.map(\.line))
        // Whole-document formats may fold several lines into one rejected value; the rest are per line.
        #expect(!accounted.isEmpty)
        if ["waf", "alb", "elb-classic", "apigateway-access", "apigateway-execution", "lambda", "cloudwatch-export", "cloudwatch-tail"].contains(id) {
            #expect(accounted.isSuperset(of: 1...lines.count), "\(id) dropped lines \(Set(1...lines.count).subtracting(accounted).sorted())")
        }
    }
}
