import Testing
@testable import InvestigateKit

/// `JSONText.flatField` reads one field of a stored `extra` without parsing the rest; it must agree
/// with the full parser whatever the values hold (they come from log lines).
@Suite struct JSONTextFlatFieldTests {
    func field(_ key: String, _ json: String) -> String? {
        Array(json.utf8).withUnsafeBufferPointer { JSONText.flatField(key, in: $0) }
    }

    @Test func findsAFieldAnywhereInTheObject() {
        let json = JSONText.object(["a": "1", "request_creation_us": "1738818000123456", "z": "x"])
        #expect(field("request_creation_us", json) == "1738818000123456")
        #expect(field("a", json) == "1")
        #expect(field("z", json) == "x")
        #expect(field("missing", json) == nil)
        #expect(field("a", "{}") == nil)
        #expect(field("a", "") == nil)
    }

    @Test func aKeyInsideAValueOrAsASuffixIsNotTheField() {
        // An attacker's user agent spelling the key out, and a longer key ending in it.
        let json = JSONText.object([
            "agent": "x\",\"request_creation_us\":\"1",
            "old_request_creation_us": "2",
        ])
        #expect(field("request_creation_us", json) == nil)
        #expect(field("request_creation_us", json) == JSONText.parseFlatObject(json)?["request_creation_us"])
    }

    @Test func escapedValuesDecodeLikeTheFullParser() {
        let json = JSONText.object(["id": "a\"b\\c\u{1}é", "other": "y"])
        #expect(field("id", json) == "a\"b\\c\u{1}é")
        #expect(field("id", json) == JSONText.parseFlatObject(json)?["id"])
    }

    @Test func aTruncatedObjectGivesNothing() {
        #expect(field("id", "{\"id\":\"abc") == nil)
    }
}

/// The exact text `JSONText.object` writes: stored `extra` columns must not change between versions.
@Suite struct JSONTextObjectTests {
    @Test func theTextIsPinned() {
        let text = JSONText.object(["b": "x\u{1}\"\\\n\r\t é 日本", "a": "1", "": "e", "B": "upper"])
        #expect(text == #"{"":"e","B":"upper","a":"1","b":"x\u0001\"\\\n\r\t é 日本"}"#)
        #expect(JSONText.object([:]) == "{}")
        #expect(JSONText.object(["k\u{1F}": "v"]).hasPrefix("{" + JSONText.string("k\u{1F}")))
        #expect(JSONText.string("k\u{1F}") == #""k\u001f""#)
    }
}

/// `appendQuoted` copies contiguous bytes a run at a time and other sequences byte by byte; both
/// must write the same escapes, wherever in a value the bytes needing them fall.
@Suite struct JSONTextQuotingTests {
    func quoted<S: Sequence<UInt8>>(_ bytes: S) -> [UInt8] {
        var out: [UInt8] = [0x41]  // text already in the buffer stays ahead of the value
        JSONText.appendQuoted(bytes, to: &out)
        return out
    }

    @Test func contiguousAndByteByByteQuotingAgree() {
        let every = (0...255).map { UInt8($0) }
        let values: [[UInt8]] = [
            [], every, Array("plain ASCII with no escapes".utf8), Array("\"".utf8), Array("\\".utf8),
            Array("ends with a quote\"".utf8), Array("\u{1}starts with a control byte".utf8),
            Array("runs \"between\" escapes\\ and\n\r\t controls é 日本".utf8),
        ]
        for value in values {
            let contiguous = value.withUnsafeBufferPointer { quoted($0) }
            let byteByByte = quoted(value.lazy.map { $0 })  // a lazy map has no contiguous storage
            #expect(contiguous == byteByByte, "\(value)")
            #expect(contiguous.first == 0x41 && contiguous[1] == 0x22 && contiguous.last == 0x22)
        }
        #expect(quoted(Array("a\"b\\c\n\u{1F}d".utf8)) == Array(#"A"a\"b\\c\n\u001fd""#.utf8))
    }
}
