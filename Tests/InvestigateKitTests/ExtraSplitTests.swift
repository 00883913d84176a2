import Foundation
import GRDB
import Testing
@testable import InvestigateKit

/// `extra`'s repeating fields are stored apart from its varying ones (`ExtraSplitter`,
/// `event_data.extra_common`), and every reader gets back exactly what the importer wrote.
@Suite struct ExtraSplitTests {
    /// An ALB-like `extra`: fields that never change, a few that take one of three values, and
    /// fields that differ on every record.
    static func albExtra(_ i: Int) -> [String: String] {
        [
            "chosen_cert_arn": "arn:aws:acm:ap-northeast-1:111122223333:certificate/0b6d1f3e-2c4a-4e8b-9d7f-1a3c5e7f9b2d",
            "elb": "app/web-prod/5f2c1a8e9b3d4c71",
            "ssl_cipher": "ECDHE-RSA-AES128-GCM-SHA256",
            "target": "10.1.1.\(40 + i % 3):80",
            "client_port": String(1024 + i),
            "conn_trace_id": "TID_\(String(i, radix: 16))",
            "request_creation_us": String(1_738_818_148_202_488 + i),
            // Escapes in a common and in a varying field must survive both the split and the view.
            "note": "quote \" backslash \\ tab \t bell \u{7} caf\u{E9} \u{1F600}",
            "varying_note": "n=\(i) \" \\ \u{1}",
        ]
    }

    static func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }

    @Test func commonFieldsAreLearntAndTheTwoPartsMergeBackByteForByte() {
        let splitter = ExtraSplitter()
        var splits = 0
        for i in 0..<600 {
            let text = JSONText.object(Self.albExtra(i))
            let split = Self.bytes(text).withUnsafeBytes { splitter.split($0, layer: 4) }
            // Until a key has been seen `sightingsToDecide` times, nothing is common.
            if i < ExtraSplitter.sightingsToDecide - 1 { #expect(!split) }
            guard split else { continue }
            splits += 1
            let common = String(decoding: splitter.common, as: UTF8.self), varying = String(decoding: splitter.varying, as: UTF8.self)
            #expect(JSONText.parseFlatObject(common).map { Set($0.keys) } == ["chosen_cert_arn", "elb", "note", "ssl_cipher", "target"])
            #expect(JSONText.parseFlatObject(varying).map { Set($0.keys) } == ["client_port", "conn_trace_id", "request_creation_us", "varying_note"])
            #expect(ExtraSplitter.merged(common: common, varying: varying) == text)
        }
        #expect(splits == 600 - ExtraSplitter.sightingsToDecide + 1)
    }

    @Test func layersLearnApart() {
        let splitter = ExtraSplitter()
        for i in 0..<300 {
            // On layer 1 `k` is constant, on layer 2 it differs every time.
            _ = Self.bytes(JSONText.object(["k": "same", "v": "\(i)"])).withUnsafeBytes { splitter.split($0, layer: 1) }
            _ = Self.bytes(JSONText.object(["k": "x\(i)", "v": "\(i)"])).withUnsafeBytes { splitter.split($0, layer: 2) }
        }
        #expect(Self.bytes(#"{"k":"same","v":"9"}"#).withUnsafeBytes { splitter.split($0, layer: 1) })
        #expect(!Self.bytes(#"{"k":"same","v":"9"}"#).withUnsafeBytes { splitter.split($0, layer: 2) })
    }

    @Test func objectsNotWrittenAsJSONTextWritesThemAreNeverSplit() {
        let splitter = ExtraSplitter()
        for _ in 0..<300 { _ = Self.bytes(#"{"a":"1","b":"2"}"#).withUnsafeBytes { splitter.split($0, layer: 1) } }
        #expect(Self.bytes(#"{"a":"1","b":"2"}"#).withUnsafeBytes { splitter.split($0, layer: 1) })
        for odd in [#"{"a":"1", "b":"2"}"#, #"{"b":"2","a":"1"}"#, #"{"a":"1","a":"1"}"#, #"{"a":1,"b":"2"}"#,
                    #"{"a":"1","b":{"c":"2"}}"#, #"{"a":"\x","b":"2"}"#, #"{"a":"\u12","b":"2"}"#, "{\"a\":\"1\u{1}\",\"b\":\"2\"}",
                    #"{"a":"1","b":"2"} "#, #"{"a":"1","b":"2""#, #"{"a":"1",}"#, "{}", "", "[]", #"{"a":"1"}}"#] {
            #expect(!Self.bytes(odd).withUnsafeBytes { splitter.split($0, layer: 1) }, "\(odd)")
        }
    }

    /// Keys come from log content for some formats: past `mostKeys` new keys are simply varying.
    @Test func manyDistinctKeysStayBounded() {
        let splitter = ExtraSplitter()
        for i in 0..<(ExtraSplitter.mostKeys + 500) {
            let text = JSONText.object(["k\(i)": "v"])
            #expect(!Self.bytes(text).withUnsafeBytes { splitter.split($0, layer: 1) })
        }
    }

    @Test func storedPartsReadBackExactlyEverywhere() throws {
        let store = try TimelineStore()
        var events: [Event] = []
        for i in 0..<1000 {
            var e = Event(time: 1_738_818_148_000_000 + Int64(i), layer: .alb, kind: .access, line: i + 1, raw: Array("alb \(i)".utf8))
            e.extra = Self.albExtra(i)
            events.append(e)
        }
        var batch = EventBatch()
        for e in events { batch.append(e) }
        try store.write { db in
            try RawBlockTests.source(db)
            try EventWriter(db: db, sourceID: 1).insert(batch)
        }
        try store.read { db in
            // Stored apart once learnt, and the common part shared: a handful of rows for 1,000 records.
            let split = try Int.fetchOne(db, sql: "SELECT count(*) FROM event_data WHERE extra_common IS NOT NULL") ?? 0
            #expect(split == 1000 - ExtraSplitter.sightingsToDecide + 1)
            #expect(try Int.fetchOne(db, sql: "SELECT count(*) FROM event_data WHERE typeof(extra_common) = 'text'") ?? 0 <= 3)
            #expect(try SharedTextTests.danglingIDs(db) == 0)
            #expect(try Int.fetchOne(db, sql: """
                SELECT count(*) FROM event_data d WHERE typeof(d.extra_common) = 'integer'
                AND NOT EXISTS (SELECT 1 FROM shared_text s WHERE s.id = d.extra_common)
                """) == 0)

            // The code's reader.
            let back = try StoredEvent.fetchAll(db, sql: "SELECT \(StoredEvent.columns) FROM event ORDER BY id").map(\.event)
            #expect(back == events)
            // Users' SQL: every field through json_extract, and the object whole.
            for key in Self.albExtra(0).keys.sorted() {
                let values = try String.fetchAll(db, sql: "SELECT json_extract(extra, '$.' || ?) FROM events ORDER BY id", arguments: [key])
                #expect(values == events.map { $0.extra[key]! }, "\(key)")
            }
            let objects = try String.fetchAll(db, sql: "SELECT extra FROM events ORDER BY id").map { JSONText.parseFlatObject($0) }
            #expect(objects == events.map { Optional($0.extra) })
        }
        // Correlation reads `event_data` itself: an ALB record's arrival is its request_creation_us.
        let nodes = try Correlator(store: store).loadNodes(from: 0, to: Int64.max, chainsUpTo: 0, skipping: [])
        #expect(nodes.map(\.arrival) == events.map { Int64($0.extra["request_creation_us"]!) })
        // Replay reads the stored parts and joins them into the text the importer wrote.
        var replayed: [String] = []
        try store.read { db in
            try RequestStream.forEach(db, range: ReplayRange(), withDetails: true) { replayed.append($0.extraJSON ?? "") }
        }
        #expect(replayed == events.map { JSONText.object($0.extra) })
    }

    /// `extra` of a JSON app log carries the log's own keys and values, chosen by whoever wrote
    /// the line: quotes, backslashes, control characters, NUL, U+2028, astral characters and
    /// escapes must come back byte for byte whichever part they were stored in.
    @Test func hostileKeysAndValuesReadBackExactly() throws {
        let odd = "q\"b\\s\u{0}n\u{1b}[31m\u{2028}😀\u{7f}</script>"
        // SQLite's own json_extract (3.40) ends a string at an escaped NUL, stored whole or split
        // alike: the value users' SQL picks out is NUL-free.
        let picked = "q\"b\\s\tn\u{1b}[31m\u{2028}😀\u{7f}</script>"
        var events: [Event] = []
        for i in 0..<600 {
            var e = Event(time: 1_738_818_148_000_000 + Int64(i), layer: .alb, kind: .access, line: i + 1, raw: Array("alb \(i)".utf8))
            e.extra = ["agent": picked, "nul": odd, "k\"ey\\": "v\(i % 3)\u{0}", "ü": "\(odd)\(i)", "empty": "", "\u{0}": i % 2 == 0 ? "even" : "odd"]
            events.append(e)
        }
        var batch = EventBatch()
        for e in events { batch.append(e) }
        let store = try TimelineStore()
        try store.write { db in
            try RawBlockTests.source(db)
            try EventWriter(db: db, sourceID: 1).insert(batch)
        }
        try store.read { db in
            let split = try Int.fetchOne(db, sql: "SELECT count(*) FROM event_data WHERE extra_common IS NOT NULL") ?? 0
            #expect(split > 0, "nothing was split: the test no longer covers extra_common")
            let back = try StoredEvent.fetchAll(db, sql: "SELECT \(StoredEvent.columns) FROM event ORDER BY id").map(\.event)
            #expect(back == events)
            let objects = try Data.fetchAll(db, sql: "SELECT CAST(extra AS BLOB) FROM events ORDER BY id")
                .map { JSONText.parseFlatObject(String(decoding: $0, as: UTF8.self)) }
            #expect(objects == events.map { Optional($0.extra) })
            let agents = try Data.fetchAll(db, sql: "SELECT CAST(json_extract(extra, '$.agent') AS BLOB) FROM events ORDER BY id")
            #expect(agents.map { String(decoding: $0, as: UTF8.self) } == events.map { _ in picked })
        }
        var replayed: [String] = []
        try store.read { db in
            try RequestStream.forEach(db, range: ReplayRange(), withDetails: true) { replayed.append($0.extraJSON ?? "") }
        }
        #expect(replayed == events.map { JSONText.object($0.extra) })
    }

    /// A field correlation needs is found in whichever part holds it: here the creation time is
    /// the same on every record (a burst), so it is learnt as common.
    @Test func correlationFindsAFieldStoredWithTheCommonOnes() throws {
        let store = try TimelineStore()
        var batch = EventBatch()
        for i in 0..<400 {
            var e = Event(time: 1_738_818_148_500_000 + Int64(i), layer: .alb, kind: .access, line: i + 1, raw: Array("alb \(i)".utf8))
            e.extra = ["request_creation_us": "1738818148202488", "client_port": String(1024 + i)]
            batch.append(e)
        }
        try store.write { db in
            try RawBlockTests.source(db)
            try EventWriter(db: db, sourceID: 1).insert(batch)
            #expect(try Int.fetchOne(db, sql: "SELECT count(*) FROM event_data WHERE extra_common IS NOT NULL") ?? 0 > 100)
        }
        let nodes = try Correlator(store: store).loadNodes(from: 0, to: Int64.max, chainsUpTo: 0, skipping: [])
        #expect(nodes.count == 400)
        #expect(nodes.allSatisfy { $0.arrival == 1_738_818_148_202_488 })
    }

    /// A database written before v11 holds `extra` whole; it reads the same after the upgrade, and
    /// rows inserted through the view in plain SQL are never split.
    @Test func wholeObjectsFromOlderDatabasesAndPlainSQLReadTheSame() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("investigate-extra-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("t.db").path
        let queue = try DatabaseQueue(path: path)
        try Schema.migrator().migrate(queue, upTo: "v10-stored-shared-columns")
        try queue.write { db in
            try RawBlockTests.source(db)
            try db.execute(sql: """
                INSERT INTO event (source_id, line, time, layer, kind, extra, raw_block, raw_offset, raw_length)
                VALUES (1, 1, 5, 'alb', 'access', '{"a":"1","b":"2"}', NULL, 0, 0)
                """)
        }
        try queue.close()
        let store = try TimelineStore(path: path)
        try store.write { db in
            try db.execute(sql: """
                INSERT INTO event (source_id, line, time, layer, kind, extra, raw_block, raw_offset, raw_length)
                VALUES (1, 2, 6, 'alb', 'access', '{"c":"3"}', NULL, 0, 0)
                """)
        }
        let (objects, split) = try store.read { db in
            (try String.fetchAll(db, sql: "SELECT extra FROM events ORDER BY id"),
             try Int.fetchOne(db, sql: "SELECT count(*) FROM event_data WHERE extra_common IS NOT NULL"))
        }
        #expect(objects == [#"{"a":"1","b":"2"}"#, #"{"c":"3"}"#])
        #expect(split == 0)
    }
}
