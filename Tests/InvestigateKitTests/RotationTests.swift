import Foundation
import GRDB
import Testing
@testable import InvestigateKit

/// What logrotate and a log writer do to a directory between two ingests, replayed step by step
/// into a temporary directory: each mode of rotation, growth, and a line caught mid-write. After
/// every ingest the whole timeline is checked against what was written:
///
/// - every line written so far is stored exactly once (no duplicate, none missing);
/// - every event and rejected line cites its source at the line number where its bytes are, in
///   the file as it was when that source was read;
/// - each source accounts for each of its lines: `lines` = the lines its events span + its
///   rejected lines + blank lines, its lines follow on from the content it continues, and
///   `start_line + lines` is every line of the file it was read from.
@Suite struct RotationTests {
    static func line(_ i: Int) -> String { IngestPipelineTests.accessLine(i) }

    /// A log directory, the writer's lines, and a check of the timeline after each ingest.
    final class LogDirectory {
        let dir: TemporaryDirectory
        let store: TimelineStore
        /// Every complete line written so far, in any file.
        private(set) var written: [String] = []
        /// The index of the next line the writer writes (`RotationTests.line`).
        private(set) var next = 0
        /// The decompressed bytes of each source's file when it was read.
        private var seen: [Int64: [UInt8]] = [:]
        /// Lines the timeline must hold as rejected (an unfinished line in a compressed file).
        var expectedRejected: [String] = []

        init() throws {
            dir = try TemporaryDirectory()
            store = try TimelineStore(path: dir.url.appendingPathComponent("timeline.db").path)
            try FileManager.default.createDirectory(atPath: logs, withIntermediateDirectories: true)
        }

        var logs: String { dir.url.appendingPathComponent("nginx").path }
        func path(_ name: String) -> String { logs + "/" + name }

        func bytes(_ name: String) throws -> [UInt8] { [UInt8](try Data(contentsOf: URL(fileURLWithPath: path(name)))) }

        private func appendBytes(_ name: String, _ bytes: [UInt8]) throws {
            if !FileManager.default.fileExists(atPath: path(name)) { _ = FileManager.default.createFile(atPath: path(name), contents: nil) }
            let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path(name)))
            try handle.seekToEnd()
            try handle.write(contentsOf: Data(bytes))
            try handle.close()
        }

        /// The writer appends `count` new lines to `name` (created when missing).
        func append(_ name: String, _ count: Int) throws {
            let lines = (next..<next + count).map(RotationTests.line)
            next += count
            written += lines
            try appendBytes(name, Array(lines.map { $0 + "\n" }.joined().utf8))
        }

        /// The writer has written the first `cut` bytes of its next line to `name`, not yet its newline.
        func appendHalfLine(_ name: String, cut: Int = 40) throws {
            let text = Array(RotationTests.line(next).utf8)
            try appendBytes(name, Array(text[..<cut]))
        }

        /// The writer finishes the line it started (in whichever file it now writes to).
        func finishHalfLine(_ name: String, cut: Int = 40) throws {
            let text = RotationTests.line(next)
            next += 1
            written.append(text)
            try appendBytes(name, Array(text.utf8)[cut...] + [0x0A])
        }

        func rename(_ from: String, _ to: String) throws { try FileManager.default.moveItem(atPath: path(from), toPath: path(to)) }

        func copy(_ from: String, _ to: String) throws { try FileManager.default.copyItem(atPath: path(from), toPath: path(to)) }

        func truncate(_ name: String) throws {
            let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path(name)))
            try handle.truncate(atOffset: 0)
            try handle.close()
        }

        /// `gzip name`: `name.gz` replaces `name`.
        func gzip(_ name: String) throws {
            try Data(GzipInflater.gzip(try bytes(name))).write(to: URL(fileURLWithPath: path(name + ".gz")))
            try FileManager.default.removeItem(atPath: path(name))
        }

        /// Ingests the directory as every command does, checks the whole timeline, and returns the
        /// summary.
        @discardableResult
        func ingest(sourceLocation: SourceLocation = #_sourceLocation) throws -> IngestSummary {
            let before = try count("SELECT count(*) FROM event")
            let summary = try TimelineUpdate.run(store: store, paths: [logs], options: ImportOptions()).ingest
            // Remember what each new source's file held when it was read.
            for row in try store.read({ try Row.fetchAll($0, sql: "SELECT id, path FROM source") }) {
                let id: Int64 = row["id"], file: String = row["path"]
                if seen[id] == nil {
                    let raw = [UInt8](try Data(contentsOf: URL(fileURLWithPath: file)))
                    seen[id] = GzipInflater.isGzip(raw) ? try GzipInflater.gunzip(raw) : raw
                }
            }
            #expect(summary.failed.isEmpty, "\(summary.failed)", sourceLocation: sourceLocation)
            #expect(summary.events == (try count("SELECT count(*) FROM event")) - before, sourceLocation: sourceLocation)
            try check(sourceLocation)
            return summary
        }

        func count(_ sql: String) throws -> Int { try store.read { try Int.fetchOne($0, sql: sql) ?? -1 } }

        private static func lines(_ content: [UInt8]) -> [[UInt8]] {
            var lines = content.split(separator: 0x0A, omittingEmptySubsequences: false).map(Array.init)
            if content.last == 0x0A || content.isEmpty { lines.removeLast() }
            return lines.map { $0.last == 0x0D ? Array($0.dropLast()) : $0 }
        }

        /// Every line once, each citation exact, each source's lines accounted for.
        func check(_ location: SourceLocation) throws {
            let raws = try store.read { try Data.fetchAll($0, sql: "SELECT raw FROM events").map { String(decoding: $0, as: UTF8.self) } }
            #expect(raws.count == written.count, "events stored: \(raws.count), distinct lines written: \(written.count)", sourceLocation: location)
            var stored: [String: Int] = [:]
            for raw in raws { stored[raw, default: 0] += 1 }
            let twice = stored.filter { $0.value > 1 }.keys.sorted()
            let missing = Set(written).subtracting(stored.keys).sorted()
            let unknown = Set(stored.keys).subtracting(written).sorted()
            #expect(twice.isEmpty, "\(twice.count) lines stored more than once, e.g. \(twice.prefix(1))", sourceLocation: location)
            #expect(missing.isEmpty, "\(missing.count) lines written and not stored, e.g. \(missing.prefix(1))", sourceLocation: location)
            #expect(unknown.isEmpty, "\(unknown.count) events are no line written, e.g. \(unknown.prefix(1))", sourceLocation: location)
            let rejected = try store.read { try Data.fetchAll($0, sql: "SELECT raw FROM rejected_lines").map { String(decoding: $0, as: UTF8.self) } }
            #expect(rejected.sorted() == expectedRejected.sorted(), sourceLocation: location)

            let sources = try store.read { try SourceRecord.all($0) }
            let byID = Dictionary(uniqueKeysWithValues: sources.map { ($0.id, $0) })
            for source in sources {
                let content = try #require(seen[source.id], sourceLocation: location)
                let fileLines = Self.lines(content)
                let name = (source.path as NSString).lastPathComponent + "#\(source.id)"
                // Every line of the file is in this version or in the ones it continues; a plain
                // file's unterminated last line is held back (it is in no version yet).
                let complete = source.compressed ? fileLines.count : content.filter { $0 == 0x0A }.count
                #expect(source.startLine + source.lines == complete, "\(name): lines \(source.startLine)+\(source.lines), file \(complete)",
                        sourceLocation: location)
                let consumed = source.compressed ? content.count : (content.lastIndex(of: 0x0A).map { $0 + 1 } ?? 0)
                #expect(source.contentSize == Int64(consumed), "\(name): content size", sourceLocation: location)
                #expect(source.contentSha256 == SHA256.hex(Array(content[..<consumed])), "\(name): content digest", sourceLocation: location)
                if let parentID = source.parentId {
                    let parent = try #require(byID[parentID], sourceLocation: location)
                    let parentContent = try #require(seen[parentID], sourceLocation: location)
                    let size = Int(try #require(parent.contentSize, sourceLocation: location))
                    #expect(content.starts(with: parentContent[..<size]), "\(name) does not start with its parent's content", sourceLocation: location)
                    if size == 0 || parentContent[size - 1] == 0x0A {
                        #expect(source.startLine == parent.startLine + parent.lines, "\(name): start line", sourceLocation: location)
                        #expect(source.startOffset == Int64(size), "\(name): start offset", sourceLocation: location)
                    } else {
                        // The stored content ended inside a line (a compressed copy taken mid-write):
                        // that line is read again whole, at its own number.
                        let lineStart = parentContent[..<size].lastIndex(of: 0x0A).map { $0 + 1 } ?? 0
                        #expect(source.startLine == parent.startLine + parent.lines - 1, "\(name): start line", sourceLocation: location)
                        #expect(source.startOffset == Int64(lineStart), "\(name): start offset", sourceLocation: location)
                    }
                } else {
                    #expect(source.startLine == 0 && source.startOffset == 0, sourceLocation: location)
                }

                var spanned = 0
                let events = try store.read {
                    try Row.fetchAll($0, sql: "SELECT line, line_end, raw FROM events WHERE source_id = ? ORDER BY id", arguments: [source.id])
                }
                #expect(events.count == source.events, sourceLocation: location)
                for event in events {
                    let first: Int = event["line"], last: Int = event["line_end"]
                    #expect(first > source.startLine && last <= source.startLine + source.lines && first <= last,
                            "\(name): line \(first) outside this version", sourceLocation: location)
                    guard first >= 1, last <= fileLines.count, first <= last else { continue }
                    let cited = Array(fileLines[(first - 1)..<last].joined(separator: [0x0A]))
                    #expect([UInt8](event["raw"] as Data) == cited, "\(name):\(first) cites other bytes than the file's", sourceLocation: location)
                    spanned += last - first + 1
                }
                let rejects = try store.read {
                    try Row.fetchAll($0, sql: "SELECT line, raw FROM rejected_lines WHERE source_id = ?", arguments: [source.id])
                }
                #expect(rejects.count == source.rejected, sourceLocation: location)
                for reject in rejects {
                    let at: Int = reject["line"]
                    #expect(at > source.startLine && at <= min(fileLines.count, source.startLine + source.lines), sourceLocation: location)
                    if at >= 1, at <= fileLines.count {
                        #expect([UInt8](reject["raw"] as Data) == fileLines[at - 1], "\(name):\(at) rejected other bytes", sourceLocation: location)
                    }
                }
                let blank = fileLines.enumerated().filter { $0.offset >= source.startLine && $0.offset < source.startLine + source.lines && $0.element.isEmpty }.count
                #expect(source.lines == spanned + source.rejected + blank,
                        "\(name): \(source.lines) lines, \(spanned) in events, \(source.rejected) rejected, \(blank) blank", sourceLocation: location)
            }
        }

        func result(_ summary: IngestSummary, _ name: String) throws -> FileResult {
            try #require(summary.files.first { $0.path == path(name) })
        }
    }

    /// logrotate `create`: the log is renamed to `.1` (`.1` to `.2` first) and a new one is
    /// created; the writer keeps appending to the renamed file until it reopens its log.
    @Test func createModeRenamesAndStartsANewFile() throws {
        let logs = try LogDirectory()
        try logs.append("access.log", 100)
        #expect(try logs.result(logs.ingest(), "access.log").status == .ingested)

        try logs.append("access.log", 50)
        let grown = try logs.result(logs.ingest(), "access.log")
        #expect(grown.status == .grown && grown.added == 50)

        // More lines, then rotation: the renamed file holds 30 lines never read, the new one 40.
        try logs.append("access.log", 30)
        try logs.rename("access.log", "access.log.1")
        try logs.append("access.log", 40)
        let rotated = try logs.ingest()
        let renamed = try logs.result(rotated, "access.log.1")
        #expect(renamed.status == .grown && renamed.added == 30 && renamed.lines == 30)
        #expect(renamed.notes.first?.contains("continues \(logs.path("access.log"))") == true)
        #expect(try logs.result(rotated, "access.log").status == .ingested)
        #expect(try logs.count("SELECT min(line) FROM event WHERE source_id = (SELECT max(id) FROM source WHERE path LIKE '%.1')") == 151)

        // The writer appends to the renamed file until it reopens, then to the new one.
        try logs.append("access.log.1", 5)
        try logs.append("access.log", 10)
        let after = try logs.ingest()
        #expect(after.events == 15)

        // A second rotation renames both; nothing is new but the new file's lines.
        try logs.rename("access.log.1", "access.log.2")
        try logs.rename("access.log", "access.log.1")
        try logs.append("access.log", 7)
        let second = try logs.ingest()
        #expect(second.events == 7)
        #expect(try logs.result(second, "access.log.2").status == .unchanged)
        #expect(try logs.result(second, "access.log.1").status == .unchanged)

        // Run again: nothing changes.
        #expect(try logs.ingest().events == 0)
    }

    /// logrotate `copytruncate`: the log is copied to `.1` and emptied in place; the writer keeps
    /// its file open and appends from the start of the emptied file.
    @Test func copytruncateCopiesThenEmptiesTheFileTheWriterKeepsWriting() throws {
        let logs = try LogDirectory()
        try logs.append("access.log", 100)
        try logs.ingest()

        try logs.append("access.log", 20)
        try logs.copy("access.log", "access.log.1")
        try logs.truncate("access.log")
        try logs.append("access.log", 30)
        let rotated = try logs.ingest()
        let copy = try logs.result(rotated, "access.log.1")
        #expect(copy.status == .grown && copy.added == 20)
        #expect(try logs.result(rotated, "access.log").status == .ingested)
        #expect(try logs.result(rotated, "access.log").added == 30)

        try logs.append("access.log", 10)
        #expect(try logs.result(logs.ingest(), "access.log").added == 10)

        // The next rotation: .1 renamed to .2, the log copied to .1 and emptied again.
        try logs.rename("access.log.1", "access.log.2")
        try logs.append("access.log", 4)
        try logs.copy("access.log", "access.log.1")
        try logs.truncate("access.log")
        try logs.append("access.log", 5)
        let second = try logs.ingest()
        #expect(second.events == 9)
        #expect(try logs.result(second, "access.log.2").status == .unchanged)
        #expect(try logs.result(second, "access.log.1").added == 4)
    }

    /// logrotate `create` + `compress` + `delaycompress`: the rotated file stays plain for one
    /// cycle (the writer may still write to it), and is compressed at the next rotation.
    @Test func delaycompressLeavesTheFirstRotationPlainForOneCycle() throws {
        let logs = try LogDirectory()
        try logs.append("access.log", 100)
        try logs.ingest()

        try logs.append("access.log", 20)
        try logs.rename("access.log", "access.log.1")
        try logs.append("access.log", 30)
        let first = try logs.ingest()
        #expect(first.events == 50)

        try logs.append("access.log", 10)
        // Next rotation: .1 becomes .2.gz, the log becomes .1, a new log starts.
        try logs.rename("access.log.1", "access.log.2")
        try logs.gzip("access.log.2")
        try logs.rename("access.log", "access.log.1")
        try logs.append("access.log", 15)
        let second = try logs.ingest()
        #expect(second.events == 25)
        let compressed = try logs.result(second, "access.log.2.gz")
        #expect(compressed.status == .unchanged && compressed.added == 0)
        // It is the content stored from access.log.1 in the run before (its first 100 lines from access.log).
        #expect(compressed.notes.first?.contains("same content as \(logs.path("access.log.1"))") == true)
        #expect(compressed.notes.first?.contains("0 new lines") == true)
        #expect(try logs.result(second, "access.log.1").added == 10)

        // And once more: .2.gz → .3.gz, .1 → .2.gz, the log → .1.
        try logs.rename("access.log.2.gz", "access.log.3.gz")
        try logs.rename("access.log.1", "access.log.2")
        try logs.gzip("access.log.2")
        try logs.rename("access.log", "access.log.1")
        try logs.append("access.log", 3)
        let third = try logs.ingest()
        #expect(third.events == 3)
        // A compressed copy is recorded once, as a version with no lines of its own: the next run
        // finds it unchanged without reading it.
        #expect(try logs.count("SELECT count(*) FROM source WHERE path LIKE '%.gz' AND lines = 0 AND parent_id IS NOT NULL") >= 2)
        #expect(try logs.ingest().events == 0)
    }

    /// logrotate `create` + `compress`: the rotated file is compressed at once, with lines the
    /// previous run never saw.
    @Test func compressGzipsTheRotatedFileAtOnce() throws {
        let logs = try LogDirectory()
        try logs.append("access.log", 100)
        try logs.ingest()

        try logs.append("access.log", 20)
        try logs.rename("access.log", "access.log.1")
        try logs.gzip("access.log.1")
        try logs.append("access.log", 30)
        let first = try logs.ingest()
        let compressed = try logs.result(first, "access.log.1.gz")
        #expect(compressed.status == .grown && compressed.added == 20)
        // Its new lines are numbered in the decompressed file, after the 100 stored from access.log.
        // The version it grew from moved with it: its first 100 records now cite the .gz too.
        #expect(try logs.count("SELECT min(line) FROM event WHERE source_id = (SELECT id FROM source WHERE path LIKE '%.1.gz' AND parent_id IS NOT NULL)") == 101)
        #expect(try logs.count("SELECT count(*) FROM source WHERE path LIKE '%.1.gz'") == 2)

        try logs.append("access.log", 10)
        try logs.rename("access.log.1.gz", "access.log.2.gz")
        try logs.rename("access.log", "access.log.1")
        try logs.gzip("access.log.1")
        try logs.append("access.log", 5)
        let second = try logs.ingest()
        #expect(second.events == 15)
        #expect(try logs.result(second, "access.log.2.gz").status == .unchanged)
        #expect(try logs.result(second, "access.log.1.gz").added == 10)
    }

    /// A line caught mid-write is held back, not stored as a fragment; once finished, it is stored
    /// whole with its own line number, and every later line keeps its number.
    @Test func aHalfWrittenLastLineIsHeldBackUntilFinished() throws {
        let logs = try LogDirectory()
        try logs.append("access.log", 10)
        try logs.appendHalfLine("access.log")
        let first = try logs.result(logs.ingest(), "access.log")
        #expect(first.events == 10 && first.lines == 10 && first.rejected == 0)
        #expect(first.notes.contains { $0.contains("held back") && $0.contains("line 11") })

        // Unchanged: nothing happens.
        #expect(try logs.ingest().events == 0)

        // Finished, more lines, and the next one caught half-written too.
        try logs.finishHalfLine("access.log")
        try logs.append("access.log", 1)
        try logs.appendHalfLine("access.log", cut: 7)
        let second = try logs.result(logs.ingest(), "access.log")
        #expect(second.status == .grown && second.added == 2)
        #expect(try logs.count("SELECT max(line) FROM event") == 12)
        #expect(try logs.count("SELECT count(*) FROM event WHERE line = 11") == 1)

        // The writer adds to the unfinished line without finishing it: still nothing new.
        try logs.appendBytesOfHalfLine("access.log", from: 7, to: 30)
        let waiting = try logs.result(logs.ingest(), "access.log")
        #expect(waiting.added == 0)
        #expect(waiting.notes.contains { $0.contains("held back") })

        // Renamed by logrotate before the writer finishes it: it finishes it in the renamed file.
        try logs.rename("access.log", "access.log.1")
        try logs.finishHalfLine("access.log.1", cut: 30)
        try logs.append("access.log.1", 2)
        try logs.append("access.log", 3)
        let rotated = try logs.ingest()
        #expect(try logs.result(rotated, "access.log.1").added == 3)
        #expect(try logs.count("SELECT min(line) FROM event WHERE source_id = (SELECT max(id) FROM source WHERE path LIKE '%.1')") == 13)
    }

    /// A compressed file is final: its last line is read even without a newline, at its own line
    /// number, and kept (as rejected, when it does not parse) rather than lost.
    @Test func aCompressedFileIsFinalItsUnterminatedLastLineIsRead() throws {
        let logs = try LogDirectory()
        try logs.append("access.log", 10)
        try logs.appendHalfLine("access.log")
        try logs.ingest()
        // Compressed with the unfinished line in it: the line is never finished in that file.
        try logs.rename("access.log", "access.log.1")
        try logs.gzip("access.log.1")
        logs.expectedRejected = [String(RotationTests.line(10).prefix(40))]
        let summary = try logs.ingest()
        let compressed = try logs.result(summary, "access.log.1.gz")
        #expect(compressed.status == .grown && compressed.lines == 1 && compressed.rejected == 1 && compressed.added == 0)
        #expect(try logs.count("SELECT line FROM rejected") == 11)
    }

    /// A compressed copy taken while a line was half-written keeps that fragment (rejected, at its
    /// line number); when the original is finished, the line is read whole from it, at the same
    /// number, and the lines after it keep theirs.
    @Test func aLineCutOffInACompressedCopyIsReadWholeFromTheFileThatFinishedIt() throws {
        let logs = try LogDirectory()
        try logs.append("access.log", 10)
        try logs.appendHalfLine("access.log")
        try logs.ingest()
        try logs.copy("access.log", "snapshot")
        try logs.gzip("snapshot")
        logs.expectedRejected = [String(RotationTests.line(10).prefix(40))]
        let copy = try logs.result(logs.ingest(), "snapshot.gz")
        #expect(copy.status == .grown && copy.rejected == 1)

        try logs.finishHalfLine("access.log")
        try logs.append("access.log", 2)
        let finished = try logs.result(logs.ingest(), "access.log")
        #expect(finished.status == .grown && finished.added == 3 && finished.lines == 3)
        #expect(finished.notes.first?.contains("continues \(logs.path("snapshot.gz"))") == true)
        #expect(finished.notes.first?.contains("line 11 ended without a newline") == true)
        #expect(try logs.count("SELECT line FROM events WHERE raw = CAST(\(sqlQuote(RotationTests.line(10))) AS BLOB)") == 11)
    }

    /// The same content under two names in one run (the file and its copy) is stored once, and a
    /// file continuing a content stored in the same run continues it: such files are not parsed
    /// side by side. Under 4 KB (found by first line) and over (by first 4 KB).
    @Test(arguments: [20, 60])
    func oneRunStoresSharedContentOnce(lines: Int) throws {
        let logs = try LogDirectory()
        try logs.append("a.log", lines)
        try logs.copy("a.log", "b.log")
        try logs.append("b.log", 5)
        try logs.copy("a.log", "c.log")
        let summary = try logs.ingest()
        #expect(summary.events == lines + 5)
        #expect(try logs.result(summary, "b.log").status == .grown)
        #expect(try logs.result(summary, "c.log").status == .unchanged)
    }

    /// A database written before content keys were recorded (migration v5) has none: the same
    /// path still finds its previous version, so a file that grew adds only its new lines.
    @Test func aSourceStoredBeforeContentKeysIsStillFoundByPath() throws {
        let logs = try LogDirectory()
        try logs.append("access.log", 10)
        try logs.ingest()
        try logs.store.write { try $0.execute(sql: "UPDATE source SET head_sha256 = NULL") }
        try logs.append("access.log", 4)
        #expect(try logs.result(logs.ingest(), "access.log").added == 4)
    }
}

extension RotationTests.LogDirectory {
    /// The writer writes more of its unfinished line (bytes `from..<to`) without finishing it.
    func appendBytesOfHalfLine(_ name: String, from: Int, to: Int) throws {
        let text = Array(RotationTests.line(next).utf8)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path(name)))
        try handle.seekToEnd()
        try handle.write(contentsOf: Data(text[from..<to]))
        try handle.close()
    }
}

private func sqlQuote(_ text: String) -> String { "'" + text.replacingOccurrences(of: "'", with: "''") + "'" }
