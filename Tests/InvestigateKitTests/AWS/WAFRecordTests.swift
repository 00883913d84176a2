import Foundation
import Testing
@testable import InvestigateKit

/// The WAF importer reads the usual record straight off its bytes (`WAFRecord.read`) and anything
/// else through `[String: Any]`. Both must give the same event, or the same rejection, for every
/// record: real ones, the fixtures', and hostile variations of their shape.
@Suite struct WAFRecordTests {
    enum Outcome: Equatable {
        case event(Event)
        case rejected(String)
    }

    /// The generic path: the whole object parsed (FastJSON, else Foundation), then read.
    static func generic(_ text: [UInt8]) -> Outcome {
        switch AWSJSON.parseObject(text) {
        case .failure(let why): return .rejected(why.description)
        case .success(let object): return outcome(AWSWAFParser.event(WAFRecord(object), line: 1, raw: text))
        }
    }

    /// The typed path, or nil when it hands the record to the generic one.
    static func typed(_ text: [UInt8]) -> Outcome? {
        guard let record = text.withUnsafeBufferPointer({ WAFRecord.read($0) }) else { return nil }
        return outcome(AWSWAFParser.event(record, line: 1, raw: text))
    }

    static func outcome(_ result: Result<Event, ImporterError>) -> Outcome {
        switch result {
        case .success(let e): return .event(e)
        case .failure(let why): return .rejected(why.description)
        }
    }

    /// True when the typed path read the record (and then agreed with the generic one).
    @discardableResult
    static func check(_ text: String, sourceLocation: SourceLocation = #_sourceLocation) -> Bool {
        let bytes = Array(text.utf8)
        guard let typed = typed(bytes) else { return false }
        let reference = generic(bytes)
        #expect(typed == reference, "typed and generic WAF readings differ for \(text.prefix(160))", sourceLocation: sourceLocation)
        return true
    }

    static func fixtureRecords() throws -> [String] {
        let root = Corpus.repositoryRoot.appendingPathComponent("Fixtures").path
        var records: [String] = []
        let walker = FileManager.default.enumerator(atPath: root)
        while let relative = walker?.nextObject() as? String {
            guard relative.contains("waflogs") else { continue }
            let data = try [UInt8](Data(contentsOf: URL(fileURLWithPath: root + "/" + relative)))
            let text = GzipInflater.isGzip(data) ? try GzipInflater.gunzip(data) : data
            records += String(decoding: text, as: UTF8.self).split(separator: "\n").map(String.init)
        }
        return records
    }

    @Test func samplesAndFixturesAreReadTypedToTheSameEvents() throws {
        let samples = try #require(ImporterRegistry.standard.importer(id: "waf")).samples.flatMap(\.lines)
        let records = samples + (try Self.fixtureRecords())
        #expect(records.count > samples.count, "no WAF fixture records found")
        for record in records {
            #expect(Self.check(record), "the typed reader handed a plain record to the generic path: \(record.prefix(120))")
        }
    }

    @Test(.enabled(if: Corpus.available)) func corpusRecordsAreReadTypedToTheSameEvents() throws {
        let text = try String(contentsOfFile: Corpus.path("elastic-integrations/test-waf.log"), encoding: .utf8)
        let records = text.split(separator: "\n").map(String.init).filter { $0.hasPrefix("{") }
        #expect(!records.isEmpty)
        for record in records { #expect(Self.check(record)) }
    }

    /// Shapes a dictionary reader and a byte reader could disagree on.
    @Test(arguments: [
        // A repeated key counts at its last occurrence, at every level.
        #"{"timestamp":1,"timestamp":1684825816966,"action":"BLOCK","action":"allow","httpRequest":{"clientIp":"1.2.3.4","headers":[{"name":"Host","value":"a"},{"name":"host","value":"b"}],"headers":[{"name":"HOST","value":"c","value":"d"}]}}"#,
        #"{"timestamp":1684825816966,"action":"BLOCK","httpRequest":{"clientIp":"1.2.3.4"},"httpRequest":null}"#,
        #"{"timestamp":1684825816966,"action":"BLOCK","httpRequest":null,"httpRequest":{"clientIp":"1.2.3.4","uri":"/a","uri":"/b"}}"#,
        #"{"timestamp":1684825816966,"action":"BLOCK","labels":[{"name":"a"}],"labels":{"name":"b"}}"#,
        #"{"timestamp":1684825816966,"action":"BLOCK","ruleGroupList":[{"ruleGroupId":"G","terminatingRule":{"ruleId":"R"}}],"ruleGroupList":"none"}"#,
        // Values of other types than usual, absent, null or placeholders.
        #"{"timestamp":"1684825816966","action":"BLOCK","responseCodeSent":"418","httpRequest":{"clientIp":"-","httpMethod":" GET ","uri":"","args":7,"requestId":12345}}"#,
        #"{"timestamp":1684825816966.5,"action":null,"terminatingRuleId":"-","httpRequest":[1,2]}"#,
        #"{"timestamp":null,"action":"BLOCK"}"#,
        #"{"action":"BLOCK"}"#,
        #"{"timestamp":1684825816966}"#,
        #"{"timestamp":true,"httpRequest":{}}"#,
        #"{"timestamp":1684825816966,"action":"CHALLENGE","responseCodeSent":99,"challengeResponse":{"responseCode":202,"failureReason":"TOKEN_EXPIRED"}}"#,
        #"{"timestamp":1684825816966,"action":"CAPTCHA","captchaResponse":"x","challengeResponse":[]}"#,
        // Headers: non-objects, names and values that are not strings, the trace header twice.
        #"{"timestamp":1684825816966,"action":"ALLOW","httpSourceName":"ALB","httpRequest":{"requestId":"1-abc-def","headers":[1,"x",null,[],{"name":5,"value":"five"},{"name":"User-Agent"},{"name":"User-Agent","value":null},{"name":"user-agent","value":42},{"value":"v","name":"X-Forwarded-For"},{"name":"X-Amzn-Trace-Id","value":"-"},{"name":"x-amzn-trace-id","value":"Self=1-a;Root=1-b-c"},{"name":"Host","value":"h","extra":{"deep":[1,2,{"a":null}]}}]}}"#,
        #"{"timestamp":1684825816966,"action":"ALLOW","httpRequest":{"headers":{"name":"Host","value":"h"},"host":"fallback.example"}}"#,
        #"{"timestamp":1684825816966,"action":"ALLOW","httpRequest":{"headers":[{"name":"Hóst","value":"h"},{"name":"HOST ","value":"h2"},{"name":"\tHost","value":"h3"}]}}"#,
        // Rule groups: the first group with a meaningful terminating rule wins.
        #"{"timestamp":1684825816966,"action":"BLOCK","ruleGroupList":[7,{"ruleGroupId":"A","terminatingRule":null},{"ruleGroupId":"B","terminatingRule":{"ruleId":"-"}},{"terminatingRule":{"ruleId":"R1"},"ruleGroupId":"C","ruleGroupId":"C2"},{"ruleGroupId":"D","terminatingRule":{"ruleId":"R2"}}]}"#,
        #"{"timestamp":1684825816966,"action":"BLOCK","ruleGroupList":[{"terminatingRule":{"ruleId":"R1"},"terminatingRule":null,"ruleGroupId":"A"},{"terminatingRule":{"ruleId":"R3","ruleId":7}}]}"#,
        // Collections kept as compact JSON, empty ones dropped.
        #"{"timestamp":1684825816966,"action":"COUNT","nonTerminatingMatchingRules":[{"ruleId":"r","action":"COUNT","ruleMatchDetails":[{"conditionType":"XSS","location":"BODY","matchedData":["<","script"]}]}],"rateBasedRuleList":[],"terminatingRuleMatchDetails":{},"requestHeadersInserted":null,"oversizeFields":["REQUEST_BODY"]}"#,
        #"{"timestamp":1684825816966,"action":"BLOCK","labels":[{"name":"a"},"b",{"name":null},{"name":3},{"other":"x"},{"name":"z","name":"y"}]}"#,
        // Escapes, Unicode and whitespace the reader must read exactly.
        " {\"timestamp\" : 1684825816966 ,\n\"action\":\"BLOCK\", \"httpRequest\" : { \"uri\" : \"/a\\\"b\\\\c\\/d\\te\" , \"clientIp\":\"::1\" } } ",
        #"{"timestamp":1684825816966,"action":"BLOCK","httpRequest":{"uri":"/日本/é/😀","headers":[{"name":"User-Agent","value":"ünïcode ☃"}]}}"#,
        #"{"timestamp":-5,"action":"ALLOW","formatVersion":1,"webaclId":"arn:x","unknown":{"a":[true,false,null,-1.25,0]}}"#,
    ])
    func awkwardRecordsAgree(_ record: String) {
        #expect(Self.check(record), "the typed reader gave this record to the generic path")
    }

    /// What the typed reader leaves to the generic path, which then decides as before.
    @Test(arguments: [
        #"{"time\u0073tamp":1684825816966,"action":"BLOCK"}"#,
        #"{"timestamp":1684825816966,"action":"BL\u004fCK"}"#,
        #"{"timestamp":1.6848e12,"action":"BLOCK"}"#,
        #"{"timestamp":1684825816966,"action":"BLOCK","x":"\u0000"}"#,
        #"[{"timestamp":1684825816966}]"#,
        #"{"timestamp":1684825816966,"action":"BLOCK",}"#,
        #"{"timestamp":1684825816966,"action":"BLOCK"} trailing"#,
        #"{"timestamp":1684825816966,"action":"BLOCK","httpRequest":{"uri":"/a""#,
        "{\"timestamp\":1684825816966,\"action\":\"BLOCK\",\"x\":" + String(repeating: "[", count: 300) + String(repeating: "]", count: 300) + "}",
    ])
    func recordsLeftToTheGenericPath(_ record: String) {
        #expect(Self.typed(Array(record.utf8)) == nil, "the typed reader read what it must leave to the generic path")
    }

    /// Real records with random bytes deleted, inserted or replaced (structure, quotes, escapes,
    /// digits, non-ASCII): whenever the typed reader accepts a mutant, the generic path must read
    /// it to the same event or the same rejection.
    @Test func mutatedRecordsAgreeWheneverTheTypedReaderAcceptsThem() throws {
        let originals = try #require(ImporterRegistry.standard.importer(id: "waf")).samples.flatMap(\.lines).map { Array($0.utf8) }
        let alphabet = Array(#"{}[]":,\ -01.9eEaAnulltrue"#.utf8) + [0xC3, 0xA9, 0xFF, 0x00, 0x0A]
        var generator = SystemRandomNumberGenerator()
        var accepted = 0
        for round in 0..<10_000 {
            var bytes = originals[round % originals.count]
            for _ in 0..<Int.random(in: 1...3, using: &generator) {
                let at = Int.random(in: 0..<bytes.count, using: &generator)
                switch Int.random(in: 0..<3, using: &generator) {
                case 0: bytes.remove(at: at)
                case 1: bytes.insert(alphabet.randomElement(using: &generator)!, at: at)
                default: bytes[at] = alphabet.randomElement(using: &generator)!
                }
            }
            guard let typed = Self.typed(bytes) else { continue }
            accepted += 1
            let reference = Self.generic(bytes)
            if typed != reference {
                Issue.record("typed and generic readings differ for \(String(decoding: bytes, as: UTF8.self))")
                break
            }
        }
        // Most single-byte changes land in string bodies and keep the record valid.
        #expect(accepted > 500, "the typed reader accepted only \(accepted) mutants")
    }

    @Test func invalidUTF8InASkippedValueIsLeftToTheGenericPath() {
        var bytes = Array(#"{"timestamp":1684825816966,"action":"BLOCK","skipped":"ab"}"#.utf8)
        bytes.insert(0xFF, at: bytes.count - 3)
        #expect(Self.typed(bytes) == nil)
        if case .rejected = Self.generic(bytes) {} else { Issue.record("invalid UTF-8 was read as a WAF record") }
    }
}

/// `AWSJSON.splitConcatenated` runs through string bodies in a tight loop; it must cut exactly
/// where a byte-at-a-time state machine cuts.
@Suite struct SplitConcatenatedTests {
    static func reference(_ b: [UInt8]) -> AWSJSON.Split {
        var out = AWSJSON.Split()
        var depth = 0, start = -1, inString = false, escaped = false, garbageStart = -1
        for (i, c) in b.enumerated() {
            if depth > 0 {
                if inString {
                    if escaped { escaped = false } else if c == 0x5C { escaped = true } else if c == 0x22 { inString = false }
                } else if c == 0x22 { inString = true }
                else if c == 0x7B || c == 0x5B { depth += 1 }
                else if c == 0x7D || c == 0x5D {
                    depth -= 1
                    if depth == 0 { out.values.append(start..<(i + 1)) }
                }
            } else if c == 0x7B || c == 0x5B {
                if garbageStart >= 0 { out.garbage.append(garbageStart..<i); garbageStart = -1 }
                depth = 1; start = i; inString = false; escaped = false
            } else if !(c == 0x20 || c == 0x09 || c == 0x0A || c == 0x0D || c == 0x2C) {
                if garbageStart < 0 { garbageStart = i }
            }
        }
        if garbageStart >= 0 { out.garbage.append(garbageStart..<b.count) }
        if depth > 0, start >= 0 { out.truncated = start..<b.count }
        return out
    }

    @Test func cutsWhereTheByteAtATimeReaderCuts() {
        let alphabet = Array(#"{}[]"\\a ,x"#.utf8)
        var generator = SystemRandomNumberGenerator()
        for round in 0..<10_000 {
            let length = round < 100 ? round % 12 : Int.random(in: 0...40, using: &generator)
            let bytes = (0..<length).map { _ in alphabet.randomElement(using: &generator)! }
            let fast = bytes.withUnsafeBufferPointer { AWSJSON.splitConcatenated($0) }
            let slow = Self.reference(bytes)
            #expect(fast.values == slow.values && fast.truncated == slow.truncated && fast.garbage == slow.garbage,
                    "split differs for \(String(decoding: bytes, as: UTF8.self))")
            if fast.values != slow.values || fast.truncated != slow.truncated || fast.garbage != slow.garbage { break }
        }
    }
}

@Suite struct WAFHeaderNameTests {
    /// The byte comparison for ASCII names agrees with matching `lowercased()`.
    @Test(arguments: ["Host", "HOST", "host", "hOsT", "Host ", " Host", "Hos", "Hostx", "User-Agent", "user-agent", "USER-AGENT",
                      "User_Agent", "X-Forwarded-For", "x-forwarded-for", "X-FORWARDED-FOR", "X-Amzn-Trace-Id", "x-amzn-trace-id",
                      "X-Amzn-Trace-ID", "", "-", "Höst", "HOST\u{0301}", "\u{212A}", "x-amzn-trace-\u{0130}d", "Accept"])
    func asciiMatchingAgreesWithLowercased(_ name: String) {
        let reference: WAFRecord.Header.Name?
        switch name.lowercased() {
        case "host": reference = .host
        case "user-agent": reference = .userAgent
        case "x-forwarded-for": reference = .forwardedFor
        case "x-amzn-trace-id": reference = .traceID
        default: reference = nil
        }
        #expect(WAFRecord.headerName(name) == reference)
    }
}
