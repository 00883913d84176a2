import Foundation
import Testing
@testable import InvestigateKit

/// `FastJSON` must give exactly what `JSONSerialization` gives, or nothing (the caller then asks
/// `JSONSerialization`): same types (an `NSNumber`'s kind included), same values.
@Suite struct FastJSONTests {
    static func foundation(_ text: [UInt8]) -> Any? {
        try? JSONSerialization.jsonObject(with: Data(text), options: [.fragmentsAllowed])
    }

    static func fast(_ text: [UInt8]) -> Any? {
        text.withUnsafeBufferPointer { FastJSON.parse($0) }
    }

    /// Deep equality that tells an integer from a double from a bool.
    static func same(_ a: Any, _ b: Any) -> Bool {
        switch (a, b) {
        case (is NSNull, is NSNull): return true
        case let (x as String, y as String): return x == y
        case let (x as NSNumber, y as NSNumber):
            return String(cString: x.objCType) == String(cString: y.objCType) && x == y
        case let (x as [Any], y as [Any]): return x.count == y.count && zip(x, y).allSatisfy { same($0, $1) }
        case let (x as [String: Any], y as [String: Any]):
            return x.count == y.count && x.allSatisfy { key, value in y[key].map { same(value, $0) } ?? false }
        default: return false
        }
    }

    /// Checks one text; true when the fast reader read it.
    @discardableResult
    static func check(_ text: [UInt8], sourceLocation: SourceLocation = #_sourceLocation) -> Bool {
        guard let fast = fast(text) else { return false }
        let reference = foundation(text)
        #expect(reference != nil, "FastJSON read what Foundation refuses: \(String(decoding: text.prefix(120), as: UTF8.self))",
                sourceLocation: sourceLocation)
        if let reference {
            #expect(same(fast, reference), "differs from Foundation: \(String(decoding: text.prefix(120), as: UTF8.self))",
                    sourceLocation: sourceLocation)
        }
        return true
    }

    @Test(arguments: [
        "0", "-0", "1", "-1", "42", "1.5", "-0.0", "0.1", "3.14159", "123456789012345678", "-123456789012345678",
        "1234567890123456789", "12345678901234567890", "-9223372036854775808", "18446744073709551615", "18446744073709551616",
        "1234567890.1234567", "123456789.1234567", "1e5", "1E5", "1.5e-3", "01", "-", "1.", ".5", "+1", "-01", "00",
        "true", "false", "null", "tru", "nul", "\"\"", "\"a\"", "\"esc \\\" \\\\ \\/ \\b \\f \\n \\r \\t\"", "\"\\u0041\"",
        "\"\\ud83d\\ude00\"", "\"\\x\"", "\"tab\there\"", "\"nl\nhere\"", "\"é 日本 😀\"", "[]", "{}", "[1,2,3]", "[1,]", "{\"a\":1,}",
        "{\"a\":1,\"a\":2}", "{\"a\" : [ true , null , {\"b\":\"c\"} ] }", " \t\n{\"x\":1}\r\n", "{\"x\":1} y", "{\"x\":1}{\"y\":2}",
        "{\"x\"}", "{\"x\":}", "[", "{", "\"unterminated", "{\"a\":{\"b\":{\"c\":[[[1]]]}}}", "\u{FEFF}{\"a\":1}", "{1:2}",
        "[\"a\" \"b\"]", "{\"a\":1 \"b\":2}", "[-]", "[1.5.5]", "[NaN]", "[Infinity]", "\"\\/\"",
    ])
    func agreesWithFoundationOnEdgeCases(_ text: String) {
        Self.check(Array(text.utf8))
    }

    @Test func invalidUTF8AndDeepNestingAreLeftToFoundation() {
        #expect(Self.fast([0x22, 0xC3, 0x28, 0x22]) == nil)
        #expect(Self.fast([0x22, 0xFF, 0x22]) == nil)
        #expect(Self.fast(Array((String(repeating: "[", count: 600) + String(repeating: "]", count: 600)).utf8)) == nil)
        Self.check(Array((String(repeating: "[", count: 100) + String(repeating: "]", count: 100)).utf8))
    }

    /// Every JSON sample line of the importers is read by the fast path, to Foundation's values.
    @Test func readsEveryImporterSampleLikeFoundation() {
        var read = 0, json = 0
        for importer in ImporterRegistry.standard.importers {
            for sample in importer.samples {
                for line in sample.lines where line.hasPrefix("{") && Self.foundation(Array(line.utf8)) != nil {
                    json += 1
                    if Self.check(Array(line.utf8)) { read += 1 }
                }
            }
        }
        #expect(json > 0 && read == json, "the fast path read \(read) of \(json) sample records")
    }

    /// The JSON records of the shared corpus (WAF, API Gateway, CloudWatch exports…).
    @Test(.enabled(if: Corpus.available)) func readsTheCorpusRecordsLikeFoundation() throws {
        var read = 0, lines = 0
        let walker = FileManager.default.enumerator(atPath: Corpus.root.path)
        while let relative = walker?.nextObject() as? String {
            let path = Corpus.path(relative)
            guard relative.hasSuffix(".json") || relative.hasSuffix(".log") || relative.hasSuffix(".jsonl"),
                  let data = FileManager.default.contents(atPath: path), data.count < 8 << 20 else { continue }
            for line in data.split(separator: 0x0A) where line.first == 0x7B && lines < 20_000 {
                lines += 1
                if Self.check(Array(line)) { read += 1 }
            }
        }
        #expect(lines == 0 || read * 2 >= lines, "the fast path read \(read) of \(lines) corpus records")
        print("FastJSON read \(read) of \(lines) corpus records")
    }
}
