import Foundation
import GRDB
import Testing
@testable import InvestigateKit

/// The columnar form events travel in from the parsing thread to the writer must carry every
/// field unchanged: what the writer stores is what the parser produced.
@Suite struct EventBatchTests {
    static func sample(line: Int) -> Event {
        var e = Event(time: 1_738_819_965_123_456, layer: .alb, kind: .access, line: line, lineEnd: line + 2,
                      raw: [0x00, 0xFF, 0x0A, 0x41]) // not UTF-8: raw is bytes
        e.altTime = -5
        e.clientIP = "203.0.113.9"
        e.peerIP = "10.0.0.1"
        e.forwardedFor = "203.0.113.9, 10.0.0.1"
        e.method = "GET"
        e.path = "/app/ünïcode"
        e.query = ""
        e.status = 403
        e.bytes = 0
        e.duration = 1_500
        e.requestID = "r"
        e.traceID = "1-67a4-abc"
        e.userAgent = "curl/8 \"quoted\""
        e.host = "example.com"
        e.level = "ERROR"
        e.message = "line one\nline two\t\u{1}"
        e.hostname = "web-1"
        e.program = "gunicorn"
        e.pid = 42
        e.wafAction = "BLOCK"
        e.wafRule = "rule"
        e.elbStatus = 403
        e.targetStatus = nil
        e.error = "WAFBlocked"
        e.extra = ["referer": "https://x/\"a\"\\b", "emoji": "😀", "control": "\u{0}\u{1F}\r\n", "": "empty key"]
        return e
    }

    @Test func eventsSurviveTheRoundTripThroughColumns() {
        var batch = EventBatch()
        let events = [Self.sample(line: 1), Event(time: nil, layer: .system, kind: .log, line: 9, raw: []), Self.sample(line: 20)]
        for e in events { batch.append(e) }
        #expect(batch.count == 3)
        #expect(batch.events == events)
    }

    @Test func rowsFilledFromBytesRepairInvalidUTF8AndCanBeDropped() {
        var batch = EventBatch()
        let raw: [UInt8] = Array("GET /caf".utf8) + [0xE9] + Array(" x".utf8)
        raw.withUnsafeBufferPointer { buffer in
            batch.beginRow(layer: .nginx, kind: .access, line: 7, lineEnd: 7, time: 123, raw: buffer)
            batch.setText(.path, UnsafeBufferPointer(rebasing: buffer[4..<9]))
            batch.setNumber(.status, 200)
        }
        let e = batch.event(at: 0)
        #expect(e.path == "/caf\u{FFFD}")
        #expect(e.raw == raw)
        #expect(e.status == 200 && e.time == 123 && e.line == 7)
        #expect(e.clientIP == nil && e.bytes == nil)

        let before = batch.arena.count
        raw.withUnsafeBufferPointer { batch.beginRow(layer: .nginx, kind: .access, line: 8, lineEnd: 8, time: nil, raw: $0) }
        batch.setText(.method, "GET")
        batch.dropLastRow()
        #expect(batch.count == 1 && batch.arena.count == before)
        #expect(batch.events == [e])
    }

    @Test func staticNamesAreTheRawValues() {
        for layer in Layer.allCases { #expect(layer.staticName.description == layer.rawValue) }
        for kind in [EventKind.access, .log] { #expect(kind.staticName.description == kind.rawValue) }
    }

    @Test func flatJSONObjectsReadBackAsWritten() {
        let dict = Self.sample(line: 1).extra
        #expect(JSONText.parseFlatObject(JSONText.object(dict)) == dict)
        #expect(JSONText.parseFlatObject(#"{"a":"\ud83d\ude00 \u00e9"}"#) == ["a": "😀 é"])
        #expect(JSONText.parseFlatObject("{}") == [:])
        #expect(JSONText.parseFlatObject(#"{"a":1}"#) == nil)
        #expect(JSONText.parseFlatObject(#"{"a":"b"} trailing"#) == nil)
        #expect(JSONText.parseFlatObject(#"{"a":"unterminated}"#) == nil)
    }

    /// A batch is stored through statements of many rows, then one-row statements for the rest:
    /// every event once, in order, with consecutive ids (a source's id range relies on it).
    @Test func aLargeBatchIsStoredInOrderWithConsecutiveIDs() throws {
        let store = try TimelineStore()
        let count = 2 * EventWriter.rowsPerStatement + 22
        var events: [Event] = []
        for i in 0..<count {
            var e = i % 5 == 0 ? Event(time: nil, layer: .system, kind: .log, line: i + 1, raw: Array("plain \(i)".utf8)) : Self.sample(line: i + 1)
            e.status = i % 3 == 0 ? nil : 200 + i
            events.append(e)
        }
        var batch = EventBatch()
        for e in events { batch.append(e) }
        try store.write { db in
            try db.execute(sql: "INSERT INTO source (path, sha256, size, status, ingested_at) VALUES ('batch.log', 'x', 0, 'complete', 0)")
            try EventWriter(db: db, sourceID: db.lastInsertedRowID).insert(batch)
        }
        // Fetched in time order; compared in id order.
        let stored = try store.read { db in try StoredEvent.fetch(db, ids: (1...Int64(count)).map { $0 }) }.sorted { $0.id < $1.id }
        #expect(stored.map(\.id) == (1...Int64(count)).map { $0 })
        #expect(stored.map(\.event) == events)
    }

    /// The writer names only the columns a batch fills: batches that fill different columns go
    /// through different statements into one id run, and a value set in one row only is stored.
    @Test func batchesFillingDifferentColumnsAreStoredWhole() throws {
        let store = try TimelineStore()
        let bare = Event(time: 1, layer: .nginx, kind: .access, line: 1, raw: Array("bare".utf8))
        var oneFilled = Event(time: 2, layer: .nginx, kind: .access, line: 2, raw: Array("one".utf8))
        oneFilled.wafRule = "rule"
        oneFilled.targetStatus = 502
        let full = Self.sample(line: 3)
        var first = EventBatch(), second = EventBatch(), third = EventBatch()
        first.append(bare)
        second.append(bare)
        second.append(oneFilled)
        third.append(full)
        #expect(first.filledTexts == 1 << UInt32(EventBatch.Text.raw.rawValue))
        #expect(second.filledTexts & (1 << UInt32(EventBatch.Text.wafRule.rawValue)) != 0)
        #expect(second.filledNumbers & (1 << UInt32(EventBatch.Number.targetStatus.rawValue)) != 0)
        #expect(first.filledNumbers & (1 << UInt32(EventBatch.Number.targetStatus.rawValue)) == 0)
        try store.write { db in
            try db.execute(sql: "INSERT INTO source (path, sha256, size, status, ingested_at) VALUES ('b.log', 'x', 0, 'complete', 0)")
            let writer = try EventWriter(db: db, sourceID: db.lastInsertedRowID)
            for batch in [first, second, third, first] { try writer.insert(batch) }
        }
        let stored = try store.read { db in try StoredEvent.fetch(db, ids: [1, 2, 3, 4, 5]) }.sorted { $0.id < $1.id }
        #expect(stored.map(\.id) == [1, 2, 3, 4, 5])
        #expect(stored.map(\.event) == [bare, bare, oneFilled, full, bare])
    }

    @Test func storedRowsMatchTheEventsWritten() throws {
        let store = try TimelineStore()
        let events = [Self.sample(line: 1), Self.sample(line: 4)]
        try insert(events, into: store)
        let stored = try store.read { db in try StoredEvent.fetch(db, ids: [1, 2]) }
        #expect(stored.count == 2)
        #expect(stored.map(\.event) == events)
        // Plain SQL reads the same values.
        let extra = try store.read { db in try String.fetchOne(db, sql: "SELECT json_extract(extra, '$.emoji') FROM event WHERE id = 1") }
        #expect(extra == "😀")
    }
}
