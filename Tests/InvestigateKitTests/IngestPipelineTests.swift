import Foundation
import GRDB
import Testing
@testable import InvestigateKit

/// The ingest pipeline end to end: intake (gzip, rotation, directories), identity by content,
/// growth, atomicity, and hostile input.
@Suite struct IngestPipelineTests {
    static func accessLine(_ i: Int, status: Int = 200, path: String = "/api/items") -> String {
        let second = i % 60, minute = (i / 60) % 60
        let mm = minute < 10 ? "0\(minute)" : "\(minute)", ss = second < 10 ? "0\(second)" : "\(second)"
        return #"10.1.1.210 - - [06/Feb/2025:14:\#(mm):\#(ss) +0900] "GET \#(path)?n=\#(i) HTTP/1.1" \#(status) 12 "-" "curl/8.5.0" "203.0.113.\#(i % 200)""#
    }

    static func accessLog(_ range: Range<Int>) -> String {
        range.map { accessLine($0) }.joined(separator: "\n") + "\n"
    }

    func ingest(_ store: TimelineStore, _ paths: [String], options: ImportOptions = ImportOptions(),
                format: String? = nil) throws -> IngestSummary {
        let ingester = Ingester(store: store, options: options)
        ingester.formatOverride = format
        return try ingester.ingest(paths: paths)
    }

    func count(_ store: TimelineStore, _ sql: String) throws -> Int {
        try store.read { try Int.fetchOne($0, sql: sql) ?? -1 }
    }

    @Test func plainFileIsStoredWithEvidence() throws {
        let dir = try TemporaryDirectory()
        let text = Self.accessLog(0..<5)
        let path = try dir.write("access.log", text)
        let store = try TimelineStore()
        let summary = try ingest(store, [path])
        let file = try #require(summary.files.first)
        #expect(file.status == .ingested)
        #expect(file.format == "nginx-access")
        #expect(file.lines == 5 && file.events == 5 && file.rejected == 0)
        #expect(file.sha256 == SHA256.hex(Array(text.utf8)))
        let row = try #require(try store.read { try Row.fetchOne($0, sql: "SELECT line, raw, client_ip, peer_ip, path, query FROM events ORDER BY line LIMIT 1") })
        #expect(row["line"] as Int == 1)
        #expect([UInt8](row["raw"] as Data) == Array(Self.accessLine(0).utf8))
        #expect(row["client_ip"] as String == "203.0.113.0")
        #expect(row["peer_ip"] as String == "10.1.1.210")
        #expect(row["path"] as String == "/api/items")
        #expect(row["query"] as String == "n=0")
    }

    @Test func sameContentTwiceAddsNothing() throws {
        let dir = try TemporaryDirectory()
        let a = try dir.write("a/access.log", Self.accessLog(0..<10))
        let store = try TimelineStore()
        _ = try ingest(store, [a])
        let again = try ingest(store, [a])
        #expect(again.events == 0)
        #expect(again.files.first?.status == .unchanged)
        // A rotated copy with the same bytes under another name is the same evidence.
        let copy = try dir.write("b/access.log.1", Self.accessLog(0..<10))
        let third = try ingest(store, [copy])
        #expect(third.files.first?.status == .unchanged)
        #expect(try count(store, "SELECT count(*) FROM event") == 10)
    }

    /// A file no importer recognises is remembered: unchanged (path, size, mtime, inode) and under
    /// the same detection, it is skipped again without being read. Proof: its bytes are replaced
    /// in place with the same size and mtime, and the digest reported is still the first one.
    @Test func anUnchangedSkippedFileIsNotReadAgain() throws {
        let dir = try TemporaryDirectory()
        let path = try dir.write("notes.txt", "meeting notes, not a log\n")
        let stamp = Date(timeIntervalSince1970: 1_700_000_000)
        try FileManager.default.setAttributes([.modificationDate: stamp], ofItemAtPath: path)
        let store = try TimelineStore()
        let first = try ingest(store, [path])
        let skipped = try #require(first.files.first)
        #expect(skipped.status == .skipped)
        #expect(skipped.skipped?.contains("not recognised") == true)

        let handle = try #require(FileHandle(forWritingAtPath: path))
        try handle.write(contentsOf: Data("MEETING NOTES, NOT A LOG\n".utf8))
        try handle.close()
        try FileManager.default.setAttributes([.modificationDate: stamp], ofItemAtPath: path)
        let again = try #require(try ingest(store, [path]).files.first)
        #expect(again.status == .skipped)
        #expect(again.skipped == skipped.skipped)
        #expect(again.sha256 == skipped.sha256)
        // One row for it, never counted as a source of the timeline.
        #expect(try count(store, "SELECT count(*) FROM source WHERE status = 'skipped'") == 1)
        // The same file named another way (relative, through a symlink…) is the same file.
        let otherName = dir.url.appendingPathComponent("./notes.txt").path
        #expect(otherName != path)
        #expect(try #require(try ingest(store, [otherName]).files.first).sha256 == skipped.sha256)
        #expect(try store.read { db in try SourceRecord.all(db) }.isEmpty)

        // Another detection (a described nginx format) reads it again.
        var options = ImportOptions()
        options.nginxLogFormat = "$remote_addr [$time_local] \"$request\" $status"
        let registry = try ImporterRegistry.standard.withNginxLogFormat(options.nginxLogFormat)
        let reread = try #require(try Ingester(store: store, registry: registry, options: options).ingest(paths: [path]).files.first)
        #expect(reread.status == .skipped)
        #expect(reread.sha256 != skipped.sha256)
        #expect(try count(store, "SELECT count(*) FROM source WHERE status = 'skipped'") == 1)

        // A format forced by the user is always tried: the line is read, and rejected.
        let forced = try #require(try ingest(store, [path], format: "nginx-access").files.first)
        #expect(forced.status == .ingested)
        #expect(forced.rejected == 1)
    }

    @Test func filesStoredInOneTransactionStillStandAlone() throws {
        // One run stores its files in one transaction with a savepoint each: a duplicate in the
        // middle rolls back alone, and the files around it stay.
        let dir = try TemporaryDirectory()
        try dir.write("1/access.log", Self.accessLog(0..<10))
        try dir.write("2/access.log", Self.accessLog(0..<10)) // same bytes as 1
        try dir.write("3/access.log", Self.accessLog(10..<15))
        let store = try TimelineStore()
        let summary = try ingest(store, [dir.path])
        #expect(summary.files.map(\.status) == [.ingested, .unchanged, .ingested])
        #expect(summary.events == 15)
        #expect(try count(store, "SELECT count(*) FROM event") == 15)
        // The duplicate is recorded as a version with no lines of its own, pointing at the first.
        #expect(try count(store, "SELECT count(*) FROM source") == 3)
        #expect(try count(store, "SELECT count(*) FROM source WHERE lines = 0 AND events = 0 AND parent_id = (SELECT min(id) FROM source)") == 1)
        #expect(try count(store, "SELECT count(*) FROM source_layer") == 2)
        let leftOpen = store.dbQueue.inDatabase { db in db.isInsideTransaction }
        #expect(leftOpen == false)
    }

    /// Files of one order are parsed side by side (the next while this one is stored): each is
    /// still stored whole, in reading order, its lines in one id run of their own.
    @Test func filesParsedSideBySideAreEachStoredWholeAndInOrder() throws {
        let dir = try TemporaryDirectory()
        var expected: [String: [String]] = [:]
        for f in 0..<40 {
            // Sizes vary so one file's parsing outruns or lags the other's storing; every fifth
            // file has a line no importer accepts (rejected rows are stored by the writer too).
            var lines = (0..<(1 + (f * 37) % 300)).map { Self.accessLine(f * 1000 + $0) }
            if f % 5 == 0 { lines.insert("garbage line \(f)", at: lines.count / 2) }
            let name = String(format: "d%02d/access.log", f)
            try dir.write(name, lines.joined(separator: "\n") + "\n")
            expected[dir.url.appendingPathComponent(name).path] = lines
        }
        let store = try TimelineStore()
        let summary = try ingest(store, [dir.path])
        #expect(summary.files.count == 40 && summary.files.allSatisfy { $0.status == .ingested })
        let sources = try store.read { try SourceRecord.all($0) }
        #expect(sources.map(\.path) == expected.keys.sorted())
        var nextID: Int64 = 1
        for source in sources {
            let lines = try #require(expected[source.path])
            let stored = try store.read { db in
                try Row.fetchAll(db, sql: "SELECT id, line, raw FROM events WHERE source_id = ? ORDER BY id", arguments: [source.id])
            }
            let rejected = try store.read { db in
                try Row.fetchAll(db, sql: "SELECT line, raw FROM rejected_lines WHERE source_id = ? ORDER BY line", arguments: [source.id])
            }
            #expect(source.firstEventId == nextID && source.lastEventId == nextID + Int64(stored.count) - 1)
            #expect(stored.map { $0["id"] as Int64 } == Array(nextID..<(nextID + Int64(stored.count))))
            nextID += Int64(stored.count)
            var byLine: [Int: String] = [:]
            for row in stored + rejected { byLine[row["line"]] = String(decoding: row["raw"] as Data, as: UTF8.self) }
            #expect((1...lines.count).map { byLine[$0] ?? "" } == lines, "\(source.path)")
            #expect(rejected.count == (lines.contains { $0.hasPrefix("garbage") } ? 1 : 0))
        }
    }

    /// Two files of one order may learn the same fact in either order when parsed side by side:
    /// the one earlier in the reading order wins, so every run teaches the same thing.
    @Test func whatTheEarlierFileTeachesWinsWhateverTheTiming() {
        let tokyo = ZoneSpec("+09:00")!, utc = ZoneSpec("+00:00")!
        let inOrder = IngestHints(), reversed = IngestHints()
        inOrder.learnZone(tokyo, directory: "/logs", from: "/logs/a.log", position: 3)
        inOrder.learnZone(utc, directory: "/logs", from: "/logs/b.log", position: 4)
        reversed.learnZone(utc, directory: "/logs", from: "/logs/b.log", position: 4)
        reversed.learnZone(tokyo, directory: "/logs", from: "/logs/a.log", position: 3)
        for hints in [inOrder, reversed] {
            #expect(hints.zone(forDirectory: "/logs")?.from == "/logs/a.log")
            #expect(hints.zone(forDirectory: "/logs")?.zone == tokyo)
        }
        reversed.learnAppZone(utc, from: "/logs/syslog.1", position: 8)
        reversed.learnAppZone(tokyo, from: "/logs/syslog", position: 7)
        #expect(reversed.learnedAppZone()?.from == "/logs/syslog")
    }

    @Test func gzipIsRecognisedByContentNotName() throws {
        let dir = try TemporaryDirectory()
        let gz = GzipInflater.gzip(Array(Self.accessLog(0..<7).utf8))
        let misnamed = try dir.write("access.log.2", bytes: gz)
        let fake = try dir.write("notreally.gz", Self.accessLog(100..<103))
        let store = try TimelineStore()
        let summary = try ingest(store, [misnamed, fake])
        #expect(summary.files.map(\.events) == [7, 3])
        #expect(summary.files.allSatisfy { $0.status == .ingested })
    }

    @Test func gzipDetectionInflatesOnlyWhatItSamples() throws {
        // 60,000 lines inflate to about 8 MB; the 40-line sample and the binary check need a
        // small fraction of that, whatever the size of the compressed chunks read.
        let dir = try TemporaryDirectory()
        let text = Array(Self.accessLog(0..<60_000).utf8)
        let path = try dir.write("access.log.1.gz", bytes: GzipInflater.gzip(text, level: 1))
        let sample = try Ingester.leadingLines(ReadOnlyFile(path), count: Ingester.detectionSampleLines)
        #expect(sample.lines.count == Ingester.detectionSampleLines)
        #expect(sample.lines.first == Array(Self.accessLine(0).utf8))
        #expect(!sample.binary && sample.compressed)
        #expect(sample.scanned >= Ingester.detectionMinimumScan)
        #expect(sample.scanned < 1 << 20, "inflated \(sample.scanned) of \(text.count) bytes to detect")

        // Binary data behind a gzip header is still judged on at least the minimum scan.
        var generator = SystemRandomNumberGenerator()
        let noise = (0..<(256 * 1024)).map { _ in UInt8.random(in: 0...255, using: &generator) }
        let binary = try dir.write("blob.gz", bytes: GzipInflater.gzip(noise))
        let binarySample = try Ingester.leadingLines(ReadOnlyFile(binary), count: Ingester.detectionSampleLines)
        #expect(binarySample.binary)
    }

    @Test func multiMemberGzipIsReadWhole() throws {
        let dir = try TemporaryDirectory()
        let bytes = GzipInflater.gzip(Array(Self.accessLog(0..<4).utf8)) + GzipInflater.gzip(Array(Self.accessLog(4..<9).utf8))
        let path = try dir.write("access.log.3.gz", bytes: bytes)
        let store = try TimelineStore()
        let file = try #require(try ingest(store, [path]).files.first)
        #expect(file.events == 9)
        #expect(file.notes.contains { $0.contains("2 members") })
    }

    @Test func truncatedGzipKeepsWhatDecoded() throws {
        let dir = try TemporaryDirectory()
        let full = GzipInflater.gzip(Array(Self.accessLog(0..<2000).utf8), level: 1)
        let cut = Array(full.prefix(full.count * 2 / 3))
        let path = try dir.write("access.log.2.gz", bytes: cut)
        let store = try TimelineStore()
        let file = try #require(try ingest(store, [path]).files.first)
        #expect(file.status == .ingested)
        #expect(file.events > 100 && file.events < 2000)
        #expect(file.notes.contains { $0.contains("truncated") })
        // Every stored event is a whole line; a half line is kept as rejected evidence.
        #expect(file.rejected <= 1)
        #expect(try count(store, "SELECT count(*) FROM events WHERE length(raw) < 60") == 0)
    }

    @Test func rotatedSetsAndDirectoriesAreWalkedInStableOrder() throws {
        let dir = try TemporaryDirectory()
        try dir.write("nginx/access.log", Self.accessLog(20..<30))
        try dir.write("nginx/access.log.1", Self.accessLog(10..<20))
        try dir.write("nginx/access.log.2.gz", bytes: GzipInflater.gzip(Array(Self.accessLog(0..<10).utf8)))
        try dir.write("nginx/deep/er/access.log", Self.accessLog(30..<31))
        let store = try TimelineStore()
        let summary = try ingest(store, [dir.path])
        #expect(summary.files.map { ($0.path as NSString).lastPathComponent } == ["access.log", "access.log.1", "access.log.2.gz", "access.log"])
        #expect(summary.events == 31)
        #expect(try count(store, "SELECT count(DISTINCT time) FROM event") == 31)
        // Each source's events hold exactly its recorded run of ids.
        let mismatched = try count(store, """
            SELECT count(*) FROM source s WHERE s.events > 0 AND (s.last_event_id - s.first_event_id + 1 <> s.events
                OR (SELECT count(*) FROM event e WHERE e.id BETWEEN s.first_event_id AND s.last_event_id AND e.source_id <> s.id) > 0)
            """)
        #expect(mismatched == 0)
    }

    @Test func aFileThatGrewAddsOnlyItsNewLines() throws {
        let dir = try TemporaryDirectory()
        let path = try dir.write("access.log", Self.accessLog(0..<5))
        let store = try TimelineStore()
        _ = try ingest(store, [path])
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        try handle.seekToEnd()
        try handle.write(contentsOf: Data(Self.accessLog(5..<8).utf8))
        try handle.close()
        let grown = try #require(try ingest(store, [path]).files.first)
        #expect(grown.status == .grown)
        #expect(grown.added == 3)
        #expect(try count(store, "SELECT count(*) FROM event") == 8)
        // Line numbers continue where the first version ended.
        #expect(try count(store, "SELECT max(line) FROM event") == 8)
        #expect(try count(store, "SELECT count(*) FROM source WHERE parent_id IS NOT NULL") == 1)
        #expect(try ingest(store, [path]).events == 0)
    }

    @Test func aRewrittenFileIsNewContent() throws {
        let dir = try TemporaryDirectory()
        let path = try dir.write("access.log", Self.accessLog(0..<5))
        let store = try TimelineStore()
        _ = try ingest(store, [path])
        try dir.write("access.log", Self.accessLog(50..<56)) // logrotate copytruncate, then new lines
        let second = try #require(try ingest(store, [path]).files.first)
        #expect(second.status == .ingested)
        #expect(try count(store, "SELECT count(*) FROM event") == 11)
    }

    @Test func interruptedIngestLeavesNoPartialFile() throws {
        let dir = try TemporaryDirectory()
        let dbPath = dir.url.appendingPathComponent("t.db").path
        let path = try dir.write("access.log", Self.accessLog(0..<3000))
        do {
            let store = try TimelineStore(path: dbPath)
            let ingester = Ingester(store: store)
            struct Interrupted: Error {}
            var calls = 0
            // Fail the transaction part-way, as a kill would: nothing of the file may remain.
            ingester.maxLineLength = LineSplitter.defaultMaxLineLength
            ingester.progress = { _ in calls += 1 }
            try store.write { db in
                try db.execute(sql: """
                    CREATE TEMP TRIGGER boom BEFORE INSERT ON event_data WHEN NEW.line = 2500
                    BEGIN SELECT RAISE(ABORT, 'simulated crash'); END
                    """)
            }
            let summary = try ingester.ingest(paths: [path])
            #expect(summary.files.first?.status == .failed)
            #expect(try count(store, "SELECT count(*) FROM event") == 0)
            #expect(try count(store, "SELECT count(*) FROM source") == 0)
            _ = calls
        }
        // The next run completes it.
        let store = try TimelineStore(path: dbPath)
        let summary = try ingest(store, [path])
        #expect(summary.files.first?.events == 3000)
    }

    /// Events are inserted without a statement journal (`EventWriter`), so a full disk rolls back
    /// the whole open group of files, not one statement: the run must stop with the error rather
    /// than report the group's earlier files as stored, and a later run stores them all.
    @Test func aFullDiskStopsTheRunAndLosesNoReportedFile() throws {
        let dir = try TemporaryDirectory(), dbDir = try TemporaryDirectory()
        let dbPath = dbDir.url.appendingPathComponent("full.db").path
        try dir.write("1/access.log", Self.accessLog(0..<10))
        try dir.write("2/access.log", Self.accessLog(10..<4010))
        do {
            let store = try TimelineStore(path: dbPath)
            // Room for the first file's few pages, not for the second's 4,000 lines.
            try store.dbQueue.writeWithoutTransaction { db in
                let pages = try Int.fetchOne(db, sql: "PRAGMA page_count") ?? 0
                try db.execute(sql: "PRAGMA max_page_count = \(pages + 6)")
            }
            #expect(throws: (any Error).self) { try ingest(store, [dir.path]) }
            #expect(try count(store, "SELECT count(*) FROM event") == 0)
            #expect(try count(store, "SELECT count(*) FROM source") == 0)
            let leftOpen = store.dbQueue.inDatabase { db in db.isInsideTransaction }
            #expect(leftOpen == false)
        }
        let store = try TimelineStore(path: dbPath)
        let summary = try ingest(store, [dir.path])
        #expect(summary.files.map(\.status) == [.ingested, .ingested])
        #expect(try count(store, "SELECT count(*) FROM event") == 4010)
    }

    /// The CLI under a file-size limit (a disk that fills): the documented database-error status 3,
    /// not 1 ("some input could not be read"), with the reason on stderr.
    @Test func aDatabaseThatCannotGrowExitsWithTheDatabaseStatus() throws {
        guard let binary = InvestigateBinary.path else { return }
        let dir = try TemporaryDirectory(), dbDir = try TemporaryDirectory()
        let logPath = try dir.write("access.log", Self.accessLog(0..<40_000))
        let dbPath = dbDir.url.appendingPathComponent("limited.db").path
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        // 4 MB (dash counts 512-byte blocks): the schema and its write-ahead log fit, 40,000 lines
        // do not. SIGXFSZ ignored, so writes fail with EFBIG.
        process.arguments = ["-c", "trap '' XFSZ; ulimit -f 8000; exec \"$0\" ingest --db \"$1\" \"$2\"", binary, dbPath, logPath]
        let stderr = Pipe()
        process.standardOutput = FileHandle.nullDevice
        process.standardError = stderr
        try process.run()
        let message = String(decoding: stderr.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationStatus == 3)
        #expect(message.contains("investigate: database error:"))
        let store = try TimelineStore(path: dbPath)
        #expect(try count(store, "SELECT count(*) FROM event") == 0)
    }

    @Test func killedProcessLeavesDatabaseConsistent() throws {
        // A real kill -9 in the middle of a large ingest, then a normal run.
        let dir = try TemporaryDirectory()
        let dbPath = dir.url.appendingPathComponent("k.db").path
        let big = (0..<200_000).map { Self.accessLine($0) }.joined(separator: "\n") + "\n"
        let logPath = try dir.write("access.log", big)
        guard let binary = InvestigateBinary.path else { return }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = ["ingest", "--db", dbPath, logPath]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        // Wait until the ingest has written something, then kill it hard.
        let deadline = Date().addingTimeInterval(20)
        while Date() < deadline, process.isRunning {
            // The transaction is under way once the database or its journal has grown.
            let db = (try? FileManager.default.attributesOfItem(atPath: dbPath)[.size] as? Int) ?? 0
            let journal = (try? FileManager.default.attributesOfItem(atPath: dbPath + "-journal")[.size] as? Int) ?? 0
            let wal = (try? FileManager.default.attributesOfItem(atPath: dbPath + "-wal")[.size] as? Int) ?? 0
            if db > 2_000_000 || journal > 0 || wal > 2_000_000 { break }
            usleep(20_000)
        }
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        let store = try TimelineStore(path: dbPath)
        let events = try count(store, "SELECT count(*) FROM event")
        #expect(events == 0 || events == 200_000)
        let summary = try ingest(store, [logPath])
        #expect(try count(store, "SELECT count(*) FROM event") == 200_000)
        #expect(summary.files.first?.status == (events == 0 ? .ingested : .unchanged))
    }

    @Test func hostileAndBrokenInputsNeverCrashAndNeverVanish() throws {
        let dir = try TemporaryDirectory()
        var mixed = Array(Self.accessLog(0..<3).utf8)
        mixed += [0xFF, 0xFE, 0x00, 0x41, 0x0A]                       // invalid UTF-8 and a NUL
        mixed += Array(Self.accessLine(3, path: "/caf\u{e9}").utf8) + [0x0A]
        mixed += Array(repeating: UInt8(ascii: "A"), count: 10 * 1024 * 1024) + [0x0A] // a 10 MB line
        mixed += Array(Self.accessLine(4).utf8) + [0x0A]
        let mixedPath = try dir.write("access.log", bytes: mixed)
        let empty = try dir.write("empty.log", "")
        let binary = try dir.write("core.bin", bytes: (0..<65_536).map { UInt8(truncatingIfNeeded: $0 &* 7919) })
        let notGzip = try dir.write("old.log.gz", bytes: [0x1f, 0x8b, 0x08, 0x00, 0xde, 0xad, 0xbe, 0xef, 0x00, 0x03, 0x01, 0x02])
        let unreadable = try dir.write("secret.log", Self.accessLog(0..<2))
        chmod(unreadable, 0)
        defer { chmod(unreadable, 0o644) }
        try FileManager.default.createSymbolicLink(atPath: dir.url.appendingPathComponent("loop").path, withDestinationPath: dir.path)

        let store = try TimelineStore()
        let summary = try ingest(store, [dir.path, dir.url.appendingPathComponent("missing.log").path])
        let byName = Dictionary(summary.files.map { (($0.path as NSString).lastPathComponent, $0) }, uniquingKeysWith: { a, _ in a })

        let log = try #require(byName["access.log"])
        #expect(log.events == 5)
        #expect(log.rejected == 2)
        let reasons = try store.read { try String.fetchAll($0, sql: "SELECT reason FROM rejected ORDER BY line") }
        #expect(reasons.count == 2)
        #expect(reasons.last?.contains("exceeds") == true)
        let kept = try store.read { try Data.fetchOne($0, sql: "SELECT raw FROM rejected_lines WHERE line = 4") }.map { [UInt8]($0) }
        #expect(kept == [0xFF, 0xFE, 0x00, 0x41])

        #expect(byName["empty.log"]?.skipped == "empty file")
        #expect(byName["core.bin"]?.status == .skipped)
        #expect(byName["core.bin"]?.skipped?.contains("binary") == true)
        #expect(byName["old.log.gz"]?.status == .skipped)
        if getuid() != 0 { #expect(byName["secret.log"]?.status == .failed) }
        #expect(byName["missing.log"]?.status == .failed)
        #expect(summary.files.contains { $0.skipped?.contains("loop") == true })
        _ = (mixedPath, empty, binary, notGzip)
    }

    @Test func jsonSummaryHasTheDocumentedShape() throws {
        let dir = try TemporaryDirectory()
        let path = try dir.write("access.log", Self.accessLog(0..<2))
        let store = try TimelineStore()
        let summary = try ingest(store, [path])
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let object = try #require(try JSONSerialization.jsonObject(with: encoder.encode(summary)) as? [String: Any])
        #expect(object["events"] as? Int == 2)
        #expect(object["rejected"] as? Int == 0)
        let file = try #require((object["files"] as? [[String: Any]])?.first)
        for key in ["path", "format", "sha256", "lines", "events", "rejected", "first", "last", "skipped"] {
            #expect(file.keys.contains(key), "missing \(key)")
        }
        #expect(file["first"] as? String == "2025-02-06T05:00:00Z")
        #expect(file["skipped"] is NSNull)
    }

    @Test func sourceLogsAreOpenedReadOnly() throws {
        let dir = try TemporaryDirectory()
        let path = try dir.write("access.log", Self.accessLog(0..<3))
        chmod(path, 0o444)
        let before = try FileStat.of(path)
        let store = try TimelineStore()
        #expect(try ingest(store, [path]).events == 3)
        let after = try FileStat.of(path)
        #expect(before.mtime == after.mtime && before.size == after.size)
    }
}

@Suite struct InputTests {
    @Test func sha256MatchesKnownVectors() {
        #expect(SHA256.hex([]) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(SHA256.hex(Array("abc".utf8)) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(SHA256.hex(Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8))
                == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        var h = SHA256()
        let chunk = [UInt8](repeating: UInt8(ascii: "a"), count: 1000)
        for _ in 0..<1000 { h.update(chunk) }
        #expect(h.hexDigest() == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    }

    @Test func prefixDigestRecognisesGrowth() throws {
        let dir = try TemporaryDirectory()
        let path = try dir.write("f", "hello\nworld\n")
        let digest = try FileDigest.compute(ReadOnlyFile(path), prefixLength: 6)
        #expect(digest.prefixSHA256 == SHA256.hex(Array("hello\n".utf8)))
        #expect(digest.sha256 == SHA256.hex(Array("hello\nworld\n".utf8)))
    }

    @Test func lineSplitterHandlesChunkBoundariesAndCRLF() {
        var splitter = LineSplitter(maxLineLength: 16, keptPrefix: 4)
        var lines: [String] = []
        var overlong: [(String, Int)] = []
        let pieces = ["ab", "c\r\nde", "f\n0123456789", "0123456789ABC\nlast"]
        for p in pieces {
            Array(p.utf8).withUnsafeBytes { splitter.feed($0, line: { lines.append($0.text) }, overlong: { overlong.append(($0.text, $1)) }) }
        }
        splitter.finish(line: { lines.append($0.text) }, overlong: { overlong.append(($0.text, $1)) })
        #expect(lines == ["abc", "def", "last"])
        #expect(overlong.count == 1)
        #expect(overlong.first?.0 == "0123")
        #expect(overlong.first?.1 == 23)
        #expect(splitter.lineNumber == 4)
    }

    @Test func terminalEscapingNeutralisesControlSequences() {
        #expect(Escape.terminal("ok\u{1b}[31mred\u{07}") == "ok\\x1b[31mred\\x07")
        #expect(Escape.terminal("a\nb\tc") == "a\\nb\\tc")
        #expect(Escape.terminal("\u{202e}evil") == "\\u{202e}evil")
        #expect(Escape.terminal("\u{9b}31m") == "\\u{009b}31m")
        #expect(Escape.terminal(bytes: [0x41, 0xFF, 0x42]) == "A\\xffB")
        #expect(Escape.terminal(String(repeating: "x", count: 50), limit: 10).hasSuffix("…[40 more characters]"))
    }
}

@Suite struct SHA256StreamingTests {
    /// The CPU's SHA extensions (when present) and the portable code give the same digests, at
    /// every length around block and padding boundaries, and for a few MB of varied bytes.
    @Test func acceleratedAndPortableDigestsAgree() {
        var seed: UInt64 = 0x9E3779B97F4A7C15
        let data = (0..<(3 << 20) + 77).map { _ -> UInt8 in
            seed = seed &* 6364136223846793005 &+ 1442695040888963407
            return UInt8(truncatingIfNeeded: seed >> 33)
        }
        for length in Array(0...200) + [447, 448, 511, 512, 513, 4096, 65_537, data.count] {
            let bytes = Array(data[0..<length])
            #expect(SHA256.hex(bytes) == SHA256.hex(SHA256.portableDigest(bytes), raw: true), "length \(length)")
        }
        // The one-million-'a' vector through the portable code too.
        #expect(SHA256.hex(SHA256.portableDigest([UInt8](repeating: UInt8(ascii: "a"), count: 1_000_000)), raw: true)
                == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    }

    /// Any split of the input into update calls gives the same digest as one call.
    @Test func splitsDoNotChangeTheDigest() {
        let data = (0..<1000).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        let whole = SHA256.hex(data)
        for cut in [1, 6, 63, 64, 65, 100, 127, 128, 500, 999] {
            for step in [1, 7, 64, 200] {
                var h = SHA256()
                h.update(Array(data[0..<cut]))
                var i = cut
                while i < data.count { h.update(Array(data[i..<min(data.count, i + step)])); i += step }
                #expect(h.hexDigest() == whole, "cut \(cut) step \(step)")
            }
        }
    }
}

@Suite struct JSONTextTests {
    @Test func writesValidSortedJSONForAnyText() throws {
        let hostile = ["b": "quote \" back \\ nl \n tab \t bell \u{07} é 日本", "a": "", "c\"k": "v"]
        let text = JSONText.object(hostile)
        #expect(text.hasPrefix("{\"a\":"))
        let decoded = try JSONDecoder().decode([String: String].self, from: Data(text.utf8))
        #expect(decoded == hostile)
    }
}

@Suite struct ByteScannerTests {
    @Test func hugeNumbersAreRefusedNotTrapped() {
        Line.with("99999999999999999999999.5", number: 1) { #expect(ByteScanner.secondsToMicros($0.bytes) == nil) }
        Line.with("0.016", number: 1) { #expect(ByteScanner.secondsToMicros($0.bytes) == 16_000) }
        Line.with("12.5", number: 1) { #expect(ByteScanner.secondsToMicros($0.bytes) == 12_500_000) }
        Line.with("123456789012345678901", number: 1) { #expect(ByteScanner.int($0.bytes) == nil) }
    }
}

@Suite struct FirehoseObjectTests {
    /// Firehose writes WAF records back to back with no newline: a default 5 MiB object is one
    /// physical line, longer than the pipeline's general line limit.
    @Test func aLargeNewlineFreeFirehoseObjectIsReadWhole() throws {
        let record = #"{"timestamp":173881993%04d,"formatVersion":1,"webaclId":"arn:aws:wafv2:ap-northeast-1:111122223333:regional/webacl/acl/x","terminatingRuleId":"Default_Action","terminatingRuleType":"REGULAR","action":"ALLOW","terminatingRuleMatchDetails":[],"httpSourceName":"ALB","httpSourceId":"111122223333-app/web/5f2c","ruleGroupList":[],"rateBasedRuleList":[],"nonTerminatingMatchingRules":[],"requestHeadersInserted":null,"responseCodeSent":null,"httpRequest":{"clientIp":"203.0.113.9","country":"JP","headers":[{"name":"Host","value":"example.com"},{"name":"User-Agent","value":"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/121.0 Safari/537.36 padding padding padding padding padding padding padding padding"}],"uri":"/app/x","args":"","httpVersion":"HTTP/1.1","httpMethod":"GET","requestId":"1-67a44c10-aaaaaaaaaaaaaaaaaaaaaaaa"}}"#
        var object = ""
        for i in 0..<8000 { object += String(format: record, i) }
        #expect(object.utf8.count > LineSplitter.defaultMaxLineLength)
        let dir = try TemporaryDirectory()
        let path = try dir.write("aws-waf-logs-stream-1-2025-02-06-05-32-10-abc", bytes: GzipInflater.gzip(Array(object.utf8)))
        let store = try TimelineStore()
        let file = try #require(try Ingester(store: store).ingest(paths: [path]).files.first)
        #expect(file.format == "waf")
        #expect(file.events == 8000 && file.rejected == 0)
    }
}
