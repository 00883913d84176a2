import Foundation
import GRDB
import Testing
@testable import InvestigateKit

/// Records' original bytes live in compressed blocks (`RawBlocks`): what comes back, through the
/// code's accessor and through the `events`/`rejected_lines` views, is exactly what went in.
@Suite struct RawBlockTests {
    /// Bytes no text column could hold as they are.
    static let hostile: [[UInt8]] = [
        [],
        [0x00],
        Array("a\u{0}b NUL inside".utf8),
        [0xFF, 0xFE, 0x41, 0xC3],  // invalid UTF-8, a lone lead byte at the end
        Array("ends in CR\r".utf8),
        Array("CRLF inside\r\nsecond line".utf8),
        Array("caf\u{E9} \u{1F600} \u{1B}[31mred".utf8),
    ]

    static func source(_ db: Database, _ id: Int64 = 1) throws {
        try db.execute(sql: "INSERT INTO source (id, path, sha256, size, status, ingested_at) VALUES (?, ?, ?, 0, 'complete', 0)",
                       arguments: [id, "f\(id).log", "h\(id)"])
    }

    /// The bytes of every row of `table` by id, read through the accessor and through the view.
    static func stored(_ db: Database, _ table: String) throws -> (accessor: [Int64: [UInt8]], view: [Int64: [UInt8]]) {
        let view = table == "event" ? "events" : "rejected_lines"
        var a: [Int64: [UInt8]] = [:], v: [Int64: [UInt8]] = [:]
        // GRDB reads a zero-length blob as NULL: the type says which it is.
        func bytes(_ row: Row) -> [UInt8]? { row["type"] == "blob" ? [UInt8]((row["raw"] as Data?) ?? Data()) : nil }
        for row in try Row.fetchAll(db, sql: "SELECT id, raw, typeof(raw) AS type FROM (SELECT id, \(StoredEvent.raw(table)) FROM \(table))") {
            a[row["id"]] = bytes(row)
        }
        for row in try Row.fetchAll(db, sql: "SELECT id, raw, typeof(raw) AS type FROM \(view)") { v[row["id"]] = bytes(row) }
        return (a, v)
    }

    @Test func hostileBytesComeBackExactly() throws {
        let store = try TimelineStore()
        // Short lines across many blocks, hostile ones among them, a 10 MB line, and rows left out.
        var raws: [[UInt8]] = []
        for i in 0..<6000 {
            raws.append(i % 500 < Self.hostile.count ? Self.hostile[i % 500] : Array("203.0.113.\(i % 250) - - GET /item/\(i) HTTP/1.1 200".utf8))
        }
        raws.insert([UInt8](repeating: 0x61, count: 10 * 1024 * 1024) + [0x00, 0xFF], at: 3000)
        var batch = EventBatch()
        for (i, raw) in raws.enumerated() { batch.append(Event(time: Int64(i), layer: .nginx, kind: .access, line: i + 1, raw: raw)) }
        let kept = (0..<raws.count).filter { $0 % 7 != 3 }
        let rejected = Self.hostile.enumerated().map { RejectedLine(line: 10_000 + $0.offset, reason: "r", raw: $0.element) }
            + [RejectedLine(line: 20_000, reason: "long", raw: [UInt8](repeating: 0x00, count: 200_000))]
        try store.write { db in
            try Self.source(db)
            let writer = try EventWriter(db: db, sourceID: 1)
            try writer.insert(batch, rows: kept)
            try writer.insert(rejected)
        }
        try store.read { db in
            let ids = try Int64.fetchAll(db, sql: "SELECT id FROM event ORDER BY id")
            #expect(ids.count == kept.count)
            let (accessor, view) = try Self.stored(db, "event")
            for (id, row) in zip(ids, kept) {
                #expect(accessor[id] == raws[row], "event \(id) (batch row \(row)) read back other bytes")
                #expect(view[id] == raws[row], "events.raw of \(id) differs")
            }
            let records = try StoredEvent.fetch(db, ids: ids)
            #expect(records.map(\.event.raw) == kept.map { raws[$0] })
            let (rejectedAccessor, rejectedView) = try Self.stored(db, "rejected")
            let rejectedIDs = try Int64.fetchAll(db, sql: "SELECT id FROM rejected ORDER BY id")
            #expect(rejectedIDs.map { rejectedAccessor[$0]! } == rejected.map(\.raw))
            #expect(rejectedIDs.map { rejectedView[$0]! } == rejected.map(\.raw))
            // Many blocks, none over the target but the long record's own, and compressed.
            let blocks = try Row.fetchAll(db, sql: "SELECT size, length(data) AS stored FROM raw_block")
            #expect(blocks.count > 3)
            #expect(blocks.allSatisfy { ($0["size"] as Int) <= RawBlocks.blockBytesRange.upperBound || ($0["size"] as Int) >= 10_000_000 })
            let input = raws.reduce(0) { $0 + $1.count }, kept = blocks.reduce(0) { $0 + ($1["stored"] as Int) }
            #expect(kept * 10 < input, "blocks hold \(kept) bytes for \(input)")
        }
    }

    /// After the first block of a batch, blocks are cut to fill a 16 KB page once compressed
    /// (one row to a page, up to 16,349 bytes), whatever the log's compression ratio.
    @Test func blocksFillAPageOnceCompressed() {
        var seed: UInt64 = 42
        func next() -> UInt64 { seed = seed &* 6364136223846793005 &+ 1442695040888963407; return seed >> 33 }
        for words in [["GET", "POST", "/a", "/b/c", "200", "404", "Mozilla/5.0"], (0..<400).map { "w\($0)" }] {
            let lines: [[UInt8]] = (0..<40_000).map { i in
                Array("10.0.\(next() % 256).\(next() % 256) \(i) \((0..<8).map { _ in words[Int(next()) % words.count] }.joined(separator: " ")) \(next())\n".utf8)
            }
            let packed = RawBlocks.packAll(count: lines.count) { i, body in lines[i].withUnsafeBytes { body($0) } }
            let middle = packed.blocks.dropFirst().dropLast()
            #expect(middle.count > 10)
            #expect(middle.allSatisfy { $0.data.count <= 16_349 }, "a block overflowed its page: \(middle.map(\.data.count).max() ?? 0) bytes")
            let fill = Double(middle.reduce(0) { $0 + $1.data.count }) / Double(middle.count * RawBlocks.pageFill)
            #expect(fill > 0.85, "blocks fill \(fill) of their target")
        }
    }

    /// Blocks packed on the parsing thread (`EventBatch.packRaw`) are stored as packed when every
    /// row is stored, and ignored (the rows' bytes packed again) when some are left out or the
    /// batch changed after packing.
    @Test func blocksPackedBeforeTheWriterComeBackExactly() throws {
        let store = try TimelineStore()
        var raws = Self.hostile
        for i in 0..<4000 { raws.append(Array("10.0.\(i % 7).1 - - GET /p/\(i) HTTP/1.1 404".utf8)) }
        raws.append([UInt8](repeating: 0xFF, count: 300_000))
        var batch = EventBatch()
        for (i, raw) in raws.enumerated() { batch.append(Event(time: Int64(i), layer: .nginx, kind: .access, line: i + 1, raw: raw)) }
        batch.packRaw()
        #expect(batch.packedRaw != nil)
        var changed = batch
        changed.append(Event(time: 0, layer: .nginx, kind: .access, line: 99_999, raw: Array("added after packing".utf8)))
        #expect(changed.packedRaw == nil)
        try store.write { db in
            try Self.source(db)
            let writer = try EventWriter(db: db, sourceID: 1)
            try writer.insert(batch)
            try writer.insert(batch, rows: Array(1..<batch.count))
            try writer.insert(changed)
        }
        let expected = raws + raws.dropFirst() + raws + [Array("added after packing".utf8)]
        try store.read { db in
            let ids = try Int64.fetchAll(db, sql: "SELECT id FROM event ORDER BY id")
            let (accessor, view) = try Self.stored(db, "event")
            #expect(ids.map { accessor[$0]! } == expected)
            #expect(ids.map { view[$0]! } == expected)
        }
    }

    @Test func corruptBlockIsAnErrorNotOtherBytes() throws {
        let store = try TimelineStore()
        try store.write { db in
            try Self.source(db)
            try EventWriter(db: db, sourceID: 1).insert(Event(time: 1, layer: .app, kind: .log, line: 1,
                                                              raw: Array(String(repeating: "compressible ", count: 100).utf8)))
            try db.execute(sql: "UPDATE raw_block SET data = substr(data, 1, length(data) - 4) || x'00000000'")
        }
        #expect(throws: DatabaseError.self) { try store.read { try Data.fetchAll($0, sql: "SELECT \(StoredEvent.raw("event")) FROM event") } }
        #expect(throws: DatabaseError.self) { try store.read { try Data.fetchAll($0, sql: "SELECT raw FROM events") } }
    }

    /// The sqlite3 shell restores `raw` through the views with its own `sqlar_uncompress`: the
    /// same SQL works outside investigate. Skipped where the shell is not installed.
    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/sqlite3"))) func sqliteShellReadsTheViews() throws {
        let dir = try TemporaryDirectory()
        let path = dir.url.appendingPathComponent("t.db").path
        do {
            let store = try TimelineStore(path: path)
            try store.write { db in
                try Self.source(db)
                var batch = EventBatch()
                for i in 0..<3000 { batch.append(Event(time: Int64(i), layer: .nginx, kind: .access, line: i + 1, raw: Array("line \(i) \u{E9}".utf8))) }
                try EventWriter(db: db, sourceID: 1).insert(batch)
            }
        }
        let shell = Process()
        shell.executableURL = URL(fileURLWithPath: "/usr/bin/sqlite3")
        shell.arguments = [path, "SELECT hex(raw) FROM events WHERE line IN (1, 2999) ORDER BY line"]
        let out = Pipe()
        shell.standardOutput = out
        shell.standardError = Pipe()
        try shell.run()
        shell.waitUntilExit()
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        let hex = { (s: String) in Array(s.utf8).map { String(format: "%02X", $0) }.joined() }
        #expect(text == hex("line 0 \u{E9}") + "\n" + hex("line 2998 \u{E9}") + "\n")
    }

    /// Every fixture file (and every corpus file, where present) ingested: each record's stored
    /// bytes are those its importer produced from the file, byte for byte, and the view agrees.
    @Test func everyFixtureFileKeepsItsBytes() throws {
        try Self.checkFiles(under: Corpus.repositoryRoot.appendingPathComponent("Fixtures").path)
    }

    @Test(.enabled(if: Corpus.available)) func everyCorpusFileKeepsItsBytes() throws {
        try Self.checkFiles(under: Corpus.root.path)
    }

    static func checkFiles(under root: String) throws {
        let store = try TimelineStore()
        _ = try Ingester(store: store).ingest(paths: [root])
        let sources = try store.read { try SourceRecord.all($0) }
        #expect(!sources.isEmpty)
        var checked = 0
        for source in sources {
            let (events, rejected) = try store.read { db in
                (try Row.fetchAll(db, sql: "SELECT id, \(StoredEvent.raw("event")) FROM event WHERE source_id = ? ORDER BY id", arguments: [source.id]),
                 try Row.fetchAll(db, sql: "SELECT id, \(StoredEvent.raw("rejected")) FROM rejected WHERE source_id = ? ORDER BY id", arguments: [source.id]))
            }
            let (eventView, rejectedView) = try store.read { db in
                (try Row.fetchAll(db, sql: "SELECT id, raw FROM events WHERE source_id = ? ORDER BY id", arguments: [source.id]),
                 try Row.fetchAll(db, sql: "SELECT id, raw FROM rejected_lines WHERE source_id = ? ORDER BY id", arguments: [source.id]))
            }
            #expect(events.map { $0["raw"] as Data? } == eventView.map { $0["raw"] as Data? }, "\(source.path): events view differs")
            #expect(rejected.map { $0["raw"] as Data? } == rejectedView.map { $0["raw"] as Data? }, "\(source.path): rejected_lines view differs")

            // The reference: the file's lines through the same importer, in memory.
            guard source.startLine == 0, source.covered == nil, let format = source.format,
                  let importer = ImporterRegistry.standard.importer(id: format) else { continue }
            var content = [UInt8](try Data(contentsOf: URL(fileURLWithPath: source.path)))
            if GzipInflater.isGzip(content) { content = try GzipInflater.gunzip(content) }
            // An unterminated last line of a plain file is held back until it is complete.
            if !source.compressed, let size = source.contentSize, Int(size) < content.count { content = Array(content[..<Int(size)]) }
            var lines = content.split(separator: 0x0A, omittingEmptySubsequences: false).map(Array.init)
            if lines.last?.isEmpty ?? false { lines.removeLast() }
            guard lines.allSatisfy({ $0.count < 1_000_000 }) else { continue }
            var parser = try importer.makeParser(ParseContext(path: source.path))
            var sink = RecordSink()
            for (i, line) in lines.enumerated() { Line.with(bytes: line, number: i + 1) { parser.consume($0, into: &sink) } }
            parser.finish(into: &sink)
            let expected = (sink.events.map(\.raw) + sink.rejected.map(\.raw)).map { Data($0) }.sorted { $0.lexicographicallyPrecedes($1) }
            let got = (events + rejected).map { ($0["raw"] as Data?) ?? Data() }.sorted { $0.lexicographicallyPrecedes($1) }
            #expect(got == expected, "\(source.path): \(got.count) records stored, \(expected.count) parsed; bytes differ")
            checked += 1
        }
        #expect(checked > 0)
        print("raw blocks: \(checked) of \(sources.count) sources under \(root) compared byte for byte with their importer's output")
    }
}

/// v8 moves the bytes of a database written before it into blocks, and reads them back the same.
@Suite struct RawBlockMigrationTests {
    @Test func olderDatabaseIsConvertedInPlace() throws {
        let dir = try TemporaryDirectory()
        let path = dir.url.appendingPathComponent("old.db").path
        var events: [Int64: [UInt8]] = [:], rejected: [Int64: [UInt8]] = [:]
        do {
            let queue = try DatabaseQueue(path: path)
            try Schema.migrator().migrate(queue, upTo: "v7-window-coverage")
            try queue.write { db in
                for id in [1, 2] { try RawBlockTests.source(db, Int64(id)) }
                // Two runs' sources interleaved, hostile bytes, a long record.
                var all = RawBlockTests.hostile
                for i in 0..<3000 { all.append(Array("line \(i) of an older database".utf8)) }
                all.append([UInt8](repeating: 0x42, count: 300_000))
                for (i, raw) in all.enumerated() {
                    try db.execute(sql: "INSERT INTO event (source_id, line, line_end, layer, kind, raw) VALUES (?, ?, ?, 'app', 'log', ?)",
                                   arguments: [1 + (i / 700) % 2, i + 1, i + 1, Data(raw)])
                    events[db.lastInsertedRowID] = raw
                }
                for (i, raw) in RawBlockTests.hostile.enumerated() {
                    try db.execute(sql: "INSERT INTO rejected (source_id, line, reason, raw) VALUES (?, ?, 'r', ?)",
                                   arguments: [1 + i % 2, i + 1, Data(raw)])
                    rejected[db.lastInsertedRowID] = raw
                }
            }
        }
        let store = try TimelineStore(path: path)
        try store.read { db in
            #expect(try !db.columns(in: "event").contains { $0.name == "raw" })
            #expect(try !db.columns(in: "rejected").contains { $0.name == "raw" })
            let (a, v) = try RawBlockTests.stored(db, "event")
            #expect(a == events)
            #expect(v == events)
            let (ra, rv) = try RawBlockTests.stored(db, "rejected")
            #expect(ra == rejected)
            #expect(rv == rejected)
            // Blocks hold one source's records each.
            let mixed = try Int.fetchOne(db, sql: """
                SELECT count(*) FROM event e JOIN raw_block b ON b.id = e.raw_block WHERE b.source_id <> e.source_id
                """)
            #expect(mixed == 0)
        }
    }

    /// Records fetched without their bytes are an error, never evidence shown empty.
    @Test func recordsReadWithoutTheirBytesAreAnError() throws {
        let store = try TimelineStore()
        try store.write { db in
            try db.execute(sql: "INSERT INTO source (path, sha256, size, status, ingested_at) VALUES ('x', '', 0, 'complete', 0)")
            try EventWriter(db: db, sourceID: db.lastInsertedRowID).insert(Event(time: 1, layer: .nginx, kind: .access, line: 1, raw: Array("GET /".utf8)))
        }
        #expect(throws: (any Error).self) { try store.read { try StoredEvent.fetchAll($0, sql: "SELECT * FROM event") } }
        let read = try store.read { try StoredEvent.fetchAll($0, sql: "SELECT \(StoredEvent.columns) FROM event") }
        #expect(read.first?.event.raw == Array("GET /".utf8))
    }
}
