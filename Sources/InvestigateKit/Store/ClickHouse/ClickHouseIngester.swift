import Foundation

/// `ingest --store clickhouse://…`: the same importers, parse pipeline (`ParseProducer`, one
/// thread reading and parsing while this one writes) and file order as `Ingester`, with ClickHouse
/// as the sink of the batches, rejected lines and per-file counts instead of SQLite.
///
/// A file is known by the SHA-256 of its bytes: one already committed (by any machine) is not
/// parsed again. A file whose content starts with a committed file's whole content (the same log
/// grown since, or renamed, copied or compressed by logrotate) is read only from the line after
/// it, as `Ingester` does locally (`ParseProducer` candidates), and its `source` row says which
/// file it continues; one with the same content as a committed file adds no lines. Its rows are written under a fresh attempt id, its `source` row last, once the
/// rows of the attempt are counted and found whole (`ClickHouseSchema`). Many machines may ingest
/// disjoint or overlapping parts of an archive at once: when two commit the same file, readers
/// take the smaller attempt and the other machine deletes its own copy.
public final class ClickHouseIngester {
    public let client: ClickHouseClient
    public let registry: ImporterRegistry
    public var options: ImportOptions
    public var formatOverride: String?
    public var progress: ((IngestProgress) -> Void)?
    public var maxLineLength = LineSplitter.defaultMaxLineLength
    /// Rows per INSERT request.
    public var batchRows = 50_000
    /// Who stored a file (`source.ingested_by`): the host name and process id.
    public var ingestedBy = "\(ProcessInfo.processInfo.hostName) pid \(ProcessInfo.processInfo.processIdentifier)"
    /// Waits before each retry of a request that failed on a transient error, seconds (about
    /// 15 s in all: a server restart or a brief network loss is ridden out).
    public var retryBackoff: [Double] = [0.5, 1, 2, 4, 8]
    /// Called after each batch is sent (tests stop a server mid-file with it).
    var afterBatch: (() -> Void)?
    /// Whether the store holds files stored before `head_sha256` was recorded (set per run): only
    /// then is a file that continues nothing looked up by its content digest (`sameContent`).
    private var legacyContent = false

    public init(client: ClickHouseClient, registry: ImporterRegistry = .standard, options: ImportOptions = ImportOptions()) {
        self.client = client
        self.registry = registry
        self.options = options
    }

    public func ingest(paths: [String]) throws -> IngestSummary {
        if let id = formatOverride, registry.importer(id: id) == nil {
            throw ImporterError("unknown format '\(id)'; known formats: \(registry.ids.joined(separator: ", "))")
        }
        try ClickHouseSchema.create(client)
        legacyContent = try hasLegacyContent()
        let walker = InputWalker.expand(paths)
        var results: [FileResult] = walker.problems.map {
            FileResult(path: $0.path, lines: 0, events: 0, rejected: 0, added: 0, status: .failed, skipped: $0.reason, notes: [])
        }
        var planned: [(index: Int, path: String, importer: (any Importer)?, early: FileResult?, keys: ContentHead.Keys?)] = []
        for (index, path) in walker.files.enumerated() {
            do {
                let (importer, early, keys) = try plan(path)
                planned.append((index, path, importer, early, keys))
            } catch {
                planned.append((index, path, nil, failure(path, error), nil))
            }
        }
        // Files that teach others first, as `Ingester` does: the same hints, the same records.
        planned.sort { a, b in
            let oa = a.importer?.ingestOrder ?? 0, ob = b.importer?.ingestOrder ?? 0
            return oa != ob ? oa < ob : a.index < b.index
        }
        let hints = IngestHints()
        var perFile: [(Int, FileResult)] = []
        var added = 0, addedRejected = 0
        for (n, item) in planned.enumerated() {
            if let early = item.early { perFile.append((item.index, early)); continue }
            let result: FileResult
            do {
                result = try store(item.path, importer: item.importer!, keys: item.keys, hints: hints, position: n, of: planned.count)
            } catch {
                result = failure(item.path, error)
            }
            if let format = result.format, let first = result.first, let last = result.last {
                hints.learnSpan(first: first, last: last, format: format, from: item.path)
            }
            added += result.added
            if result.status == .ingested || result.status == .grown { addedRejected += result.rejected }
            perFile.append((item.index, result))
        }
        results += perFile.sorted { $0.0 < $1.0 }.map(\.1)
        return IngestSummary(files: results, events: added, rejected: addedRejected)
    }

    private func failure(_ path: String, _ error: Error) -> FileResult {
        FileResult(path: path, lines: 0, events: 0, rejected: 0, added: 0, status: .failed, skipped: "\(error)", notes: [])
    }

    private func plan(_ path: String) throws -> ((any Importer)?, FileResult?, ContentHead.Keys?) {
        let st = try FileStat.of(path)
        if st.size == 0 {
            return (nil, FileResult(path: path, sha256: SHA256().hexDigest(), size: 0, lines: 0, events: 0, rejected: 0,
                                    added: 0, status: .skipped, skipped: "empty file", notes: []), nil)
        }
        let file = try ReadOnlyFile(path)
        let sample = try Ingester.leadingLines(file, count: Ingester.detectionSampleLines)
        // The keys of its first bytes, by which committed files it may continue are found.
        let keys = ContentHead.keys(sample.head)
        if let id = formatOverride { return (registry.importer(id: id)!, nil, keys) }
        let detection = registry.detect(sample.lines.map { String(decoding: $0, as: UTF8.self) }, fileName: Ingester.detectionName(path), stopAtCertain: true)
        if let importer = detection.importer { return (importer, nil, keys) }
        var reason = sample.lines.isEmpty || sample.binary ? "binary content, not a text log"
            : "format not recognised from its first \(sample.lines.count) lines"
        if let closest = detection.closest, !(sample.lines.isEmpty || sample.binary) {
            reason += " (closest: \(closest.id), \(Int(closest.score * 100))% of lines)"
        }
        if !(sample.lines.isEmpty || sample.binary) { reason += "; use --format to force one" }
        if let problem = sample.problem { reason += "; \(problem)" }
        return (nil, FileResult(path: path, size: st.size, lines: 0, events: 0, rejected: 0, added: 0, status: .skipped,
                                skipped: reason, notes: []), nil)
    }

    /// Committed files whose whole content a file may start with (the same log before it grew, or
    /// before logrotate renamed, copied or compressed it): those whose content-head key is this
    /// file's (`ContentHead`, as `Ingester.prefixCandidates` finds them locally), no longer than
    /// the file; plain files stored before keys were recorded (`head_sha256` '') by their path.
    /// Only the digest of the file's content decides (`ParseProducer`). The candidates' ids are
    /// their positions in the returned list of SHA-256s, oldest stored first (the one cited when
    /// several hold the same content).
    ///
    /// Any `source` row will do, not only the committed attempt's: a row is written only once its
    /// attempt is whole, and every attempt of a SHA-256 holds the same content (digest, size and
    /// `start_line + lines`); readers then read the committed one. So the lookup scans a few
    /// columns of `source` instead of grouping the whole table per file.
    private func prefixCandidates(path: String, keys: ContentHead.Keys?, plainSize: Int64?) throws -> (candidates: [PrefixCandidate], sha256s: [String]) {
        guard let keys else { return ([], []) }
        let db = client.url.database
        let length = ContentHead.length
        var match = ["(head_sha256 = \(SQLLiteral.token(keys.firstLine)) AND content_size < \(length))"]
        if let first4K = keys.first4K { match.append("(head_sha256 = \(SQLLiteral.token(first4K)) AND content_size >= \(length))") }
        // The path travels as hex (checked), not as SQL text.
        let pathHex = Array(path.utf8).map { String(format: "%02x", $0) }.joined()
        if !pathHex.isEmpty { match.append("(head_sha256 = '' AND compressed = 0 AND path = unhex(\(SQLLiteral.token(pathHex))))") }
        let out = try client.query("""
            SELECT sha256, path, content_sha256, content_size, start_line + lines FROM \(db).source
            WHERE content_size > 0 AND content_size <= \(plainSize ?? Int64.max) AND (\(match.joined(separator: " OR ")))
            ORDER BY ingested_at, sha256 FORMAT TabSeparated
            """)
        var candidates: [PrefixCandidate] = [], shas: [String] = []
        var seen = Set<String>()
        for row in try TabSeparated.parse(out, columns: 5) {
            guard let sha = TabSeparated.string(row[0]), SQLLiteral.isToken(sha), seen.insert(sha).inserted,
                  let content = TabSeparated.string(row[2]),
                  let size = TabSeparated.int(row[3]), let total = TabSeparated.int(row[4]) else { continue }
            candidates.append(PrefixCandidate(id: Int64(shas.count), path: TabSeparated.string(row[1]) ?? "?", contentSize: size,
                                              contentSHA256: content, totalLines: Int(total)))
            shas.append(sha)
        }
        return (candidates, shas)
    }

    /// Whether some file with content was stored before `head_sha256` was recorded ('' there).
    private func hasLegacyContent() throws -> Bool {
        let out = try client.query("SELECT count() FROM \(client.url.database).source WHERE head_sha256 = '' AND content_size > 0")
        return (Int(String(decoding: out, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0) > 0
    }

    /// A stored file with the same content as `read` under other bytes (oldest first), as a
    /// candidate it repeats.
    private func sameContent(_ read: ParseProducer.Outcome, sha256: String) throws -> (sha256: String, candidate: PrefixCandidate)? {
        guard SQLLiteral.isToken(read.contentSHA256) else { return nil }
        let out = try client.query("""
            SELECT sha256, path, start_line + lines FROM \(client.url.database).source
            WHERE content_sha256 = \(SQLLiteral.token(read.contentSHA256)) AND content_size = \(read.contentSize)
              AND sha256 != \(SQLLiteral.token(sha256))
            ORDER BY ingested_at, sha256 LIMIT 1 FORMAT TabSeparated
            """)
        guard let row = try TabSeparated.parse(out, columns: 3).first, let sha = TabSeparated.string(row[0]), SQLLiteral.isToken(sha),
              let total = TabSeparated.int(row[2]) else { return nil }
        return (sha, PrefixCandidate(id: 0, path: TabSeparated.string(row[1]) ?? "?", contentSize: read.contentSize,
                                     contentSHA256: read.contentSHA256, totalLines: Int(total)))
    }

    /// The committed `source` row of a file's SHA-256, if any: (path, attempt, lines, events, rejected, first, last).
    private func committed(_ sha256: String) throws -> TabSeparated.Row? {
        let db = client.url.database
        let out = try client.query("""
            SELECT path, attempt, lines, events, rejected, first_time, last_time, format FROM \(db).source
            WHERE sha256 = \(SQLLiteral.token(sha256)) ORDER BY attempt LIMIT 1 FORMAT TabSeparated
            """)
        return try TabSeparated.parse(out, columns: 8).first
    }

    private func unchanged(_ path: String, sha256: String, size: Int64, row: TabSeparated.Row, note: String) -> FileResult {
        FileResult(path: path, format: TabSeparated.string(row[7]), sha256: sha256, size: size,
                   lines: Int(TabSeparated.int(row[2]) ?? 0), events: Int(TabSeparated.int(row[3]) ?? 0),
                   rejected: Int(TabSeparated.int(row[4]) ?? 0), added: 0, first: TabSeparated.int(row[5]), last: TabSeparated.int(row[6]),
                   status: .unchanged, skipped: nil,
                   notes: ["\(note) (stored as \(TabSeparated.string(row[0]) ?? "?"), sha256 \(sha256.prefix(12))…)"])
    }

    /// Parses one file and stores it under a new attempt, its `source` row last.
    private func store(_ path: String, importer: any Importer, keys: ContentHead.Keys?, hints: IngestHints, position: Int,
                       of total: Int) throws -> FileResult {
        let st = try FileStat.of(path)
        let file = try ReadOnlyFile(path)
        let digest = try FileDigest.compute(file)
        if let row = try committed(digest.sha256) {
            return unchanged(path, sha256: digest.sha256, size: digest.size, row: row, note: "already in ClickHouse")
        }
        // The committed files this one's content may start with: the producer hashes the content
        // up to them first, and parses only what follows the longest that matches.
        let (candidates, candidateSHAs) = try prefixCandidates(path: path, keys: keys, plainSize: digest.isGzip ? nil : digest.size)
        let referenceTime = digest.gzipMTime ?? st.mtime
        let context = ParseContext(path: path, options: options, referenceTime: referenceTime, hints: hints, registry: registry,
                                   position: position)
        let parser = try importer.makeParser(context)
        // A plain file of a format a running process appends to may end mid-line: that line is held
        // back, as `Ingester` does, and stored whole by the ingest that finds it finished (else
        // its fragment, then the whole line, would both be stored once the file grew).
        let producer = ParseProducer(file: file, isGzip: digest.isGzip, candidates: candidates, holdsBackPartialLine: Ingester.mayStillBeWritten(path, importer),
                                     maxLineLength: max(maxLineLength, importer.maxRecordBytes ?? 0), parser: parser,
                                     hashesSharedText: false)
        producer.start()
        var producerDone = false
        defer {
            if !producerDone {
                producer.channel.cancel()
                producer.waitUntilDone()
            }
        }
        let sha = digest.sha256
        var attempt = UUID().uuidString.lowercased()
        let events = ClickHouseBatchInserter(client: client, table: "event", columns: ClickHouseSchema.eventColumns, sha256: sha,
                                             attempt: attempt, maxRows: batchRows)
        events.backoff = retryBackoff
        let rejected = ClickHouseBatchInserter(client: client, table: "rejected", columns: ClickHouseSchema.rejectedColumns,
                                               sha256: sha, attempt: attempt, maxRows: batchRows)
        rejected.backoff = retryBackoff
        var first: Int64?, last: Int64?
        var perLayer = [(events: Int, first: Int64?, last: Int64?)](repeating: (0, nil, nil), count: Layer.allCases.count)
        var outcome: ParseProducer.Outcome?
        var bytesDone: Int64 = 0
        do {
            reading: while true {
                switch producer.channel.take() {
                case .partlyStored:
                    // Only sent for candidates stored around a question's window; ClickHouse holds whole files.
                    continue
                case .batch(let batch, let rejectedLines, let bytesRead):
                    for row in 0..<batch.count {
                        let layer = batch.layers[row].depth
                        if let t = batch.number(row, .time) {
                            if first == nil || t < first! { first = t }
                            if last == nil || t > last! { last = t }
                        }
                        // Metric datapoints and findings are signals about a layer, not its logs:
                        // the per-layer counts (what coverage reads) take only log records.
                        if batch.kinds[row].isLogRecord {
                            perLayer[layer].events += 1
                            if let t = batch.number(row, .time) {
                                if perLayer[layer].first == nil || t < perLayer[layer].first! { perLayer[layer].first = t }
                                if perLayer[layer].last == nil || t > perLayer[layer].last! { perLayer[layer].last = t }
                            }
                        }
                        events.beginRow()
                        events.withBuffer { Self.appendEvent(batch, row, to: &$0) }
                        try events.endRow()
                    }
                    for r in rejectedLines {
                        rejected.beginRow()
                        rejected.withBuffer { out in
                            out.append(0x09); TabSeparated.append(Int64(r.line), to: &out)
                            out.append(0x09); TabSeparated.append(r.reason, to: &out)
                            out.append(0x09); r.raw.withUnsafeBufferPointer { TabSeparated.appendEscaped($0, to: &out) }
                        }
                        try rejected.endRow()
                    }
                    bytesDone += bytesRead
                    afterBatch?()
                    progress?(IngestProgress(fileIndex: position, fileCount: total, path: path, bytesDone: bytesDone, bytesTotal: st.size))
                case .finished(let finished):
                    outcome = finished
                    break reading
                case .failed(let error):
                    throw error
                }
            }
            producer.waitUntilDone()
            producerDone = true
            try events.flush()
            try rejected.flush()
            // The attempt is committed only when ClickHouse holds exactly what was sent.
            let storedEvents = try events.storedRows(), storedRejected = try rejected.storedRows()
            guard storedEvents == events.sent, storedRejected == rejected.sent else {
                throw ClickHouseError(message: "ClickHouse holds \(storedEvents) events and \(storedRejected) rejected lines of this attempt, "
                                      + "\(events.sent) and \(rejected.sent) were sent", transient: false, maybeApplied: true)
            }
            var read = outcome!
            var eventsStored = events.sent, rejectedStored = rejected.sent
            var parent: String = read.resume.map { candidateSHAs[Int($0.source.id)] } ?? ""
            // The same content under other bytes that its first bytes did not find (a file stored
            // by an earlier release, without `head_sha256`: say yesterday's access.log.1, now
            // compressed): what was sent is dropped, and the file is recorded as a version with no
            // lines of its own under a fresh attempt, as `Ingester` records it.
            if legacyContent, read.resume == nil, read.contentSize > 0, let same = try sameContent(read, sha256: sha) {
                discard(sha: sha, attempt: attempt, includingSource: false)
                attempt = UUID().uuidString.lowercased()
                read.resume = ContentResume(source: same.candidate, offset: read.contentSize, line: same.candidate.totalLines)
                read.lines = 0
                read.notes = []
                eventsStored = 0
                rejectedStored = 0
                first = nil
                last = nil
                perLayer = perLayer.map { _ in (0, nil, nil) }
                parent = same.sha256
            }
            var layers: [UInt8] = []
            for layer in Layer.allCases where perLayer[layer.depth].events > 0 {
                let span = perLayer[layer.depth]
                for (i, field) in [sha, attempt, layer.rawValue].enumerated() {
                    if i > 0 { layers.append(0x09) }
                    TabSeparated.appendEscaped(field, to: &layers)
                }
                for v in [Int64(span.events), span.first, span.last] { layers.append(0x09); TabSeparated.append(v, to: &layers) }
                layers.append(0x0A)
            }
            if !layers.isEmpty { try insertRetrying("source_layer", ClickHouseSchema.layerColumns, layers, sha: sha, attempt: attempt, rows: layers.filter { $0 == 0x0A }.count) }
            var notes = read.notes
            let nothingNew = read.lines == 0 && eventsStored == 0 && rejectedStored == 0
            if let resume = read.resume {
                notes.insert(nothingNew ? Ingester.sameContentNote(resume.source.path, path: path) : Ingester.resumeNote(resume, path: path), at: 0)
            }
            if read.heldBack > 0 { notes.append(Ingester.heldBackNote(read)) }
            let notesJSON = String(decoding: try JSONEncoder().encode(notes), as: UTF8.self)
            let startOffset: Int64 = read.resume?.offset ?? 0, startLine = Int64(read.resume?.line ?? 0)
            let head: String = read.headSHA256 ?? ""
            var source: [UInt8] = []
            let fields: [Any?] = [sha, attempt, path, read.size, Int64(digest.isGzip ? 1 : 0), importer.id, read.contentSHA256,
                                  read.contentSize, Int64(read.lines), Int64(eventsStored), Int64(rejectedStored), first, last,
                                  notesJSON, ingestedBy, Int64(Date().timeIntervalSince1970 * 1e6),
                                  head, parent, startOffset, startLine]
            for (i, f) in fields.enumerated() {
                if i > 0 { source.append(0x09) }
                if let s = f as? String { TabSeparated.appendEscaped(s, to: &source) }
                else if let v = f as? Int64 { TabSeparated.append(v, to: &source) }
                else { TabSeparated.appendNull(to: &source) }
            }
            source.append(0x0A)
            // The commit marker: one row, one block, stored whole or not at all.
            try insertRetrying("source", ClickHouseSchema.sourceColumns, source, sha: sha, attempt: attempt, rows: 1)
            // Another machine may have committed the same file meanwhile: the smaller attempt is
            // the one read; the other's rows are deleted by the machine that wrote them.
            if let row = try committed(sha), let winner = TabSeparated.string(row[1]), winner != attempt {
                discard(sha: sha, attempt: attempt, includingSource: true)
                return unchanged(path, sha256: sha, size: read.size, row: row, note: "stored meanwhile by another ingest")
            }
            // This attempt was the one read when checked. Another machine may have committed the
            // same file and checked before this commit arrived (so it kept its copy): a larger
            // attempt is never read, and deleting it here leaves the file stored once. A smaller
            // one committed since the check is the one read now: this attempt lost after all and
            // deletes itself (only ever a larger attempt than one's own is deleted, so the smallest,
            // the one readers take, never is; deleting a smaller one here, as before, could leave
            // two machines deleting each other's copy and the file absent).
            let db = client.url.database
            let others = try TabSeparated.parse(client.query("""
                SELECT attempt FROM \(db).source WHERE sha256 = \(SQLLiteral.token(sha)) AND attempt != \(SQLLiteral.token(attempt)) FORMAT TabSeparated
                """), columns: 1).compactMap { TabSeparated.string($0[0]) }
            if others.contains(where: { $0 < attempt }), let row = try committed(sha) {
                discard(sha: sha, attempt: attempt, includingSource: true)
                return unchanged(path, sha256: sha, size: read.size, row: row, note: "stored meanwhile by another ingest")
            }
            for other in others where other > attempt { discard(sha: sha, attempt: other, includingSource: true) }
            let status: FileResult.Status = read.resume == nil ? .ingested : nothingNew ? .unchanged : .grown
            return FileResult(path: path, format: importer.id, sha256: sha, size: read.size, lines: read.lines, events: eventsStored,
                              rejected: rejectedStored, added: eventsStored, first: first, last: last, status: status, skipped: nil,
                              notes: notes)
        } catch {
            discard(sha: sha, attempt: attempt, includingSource: false)
            throw ClickHouseError(message: "not stored: \(error); \(events.sent) events and \(rejected.sent) rejected lines of it had been "
                                  + "sent under attempt \(attempt), without its commit marker (readers ignore them); ingest it again",
                                  transient: false, maybeApplied: true)
        }
    }

    /// A small insert (one commit marker, a few per-layer rows) retried like a batch.
    private func insertRetrying(_ table: String, _ columns: [String], _ rows: [UInt8], sha: String, attempt: String, rows count: Int) throws {
        var tries = 0
        while true {
            do { try client.insert(table, columns: columns, rows: rows); return }
            catch let error as ClickHouseError where error.transient && tries < retryBackoff.count {
                Thread.sleep(forTimeInterval: retryBackoff[tries])
                tries += 1
                if error.maybeApplied, let n = try? countAttempt(table, sha: sha, attempt: attempt) {
                    if n == count { return }
                    if n != 0 { throw error }
                }
            }
        }
    }

    private func countAttempt(_ table: String, sha: String, attempt: String) throws -> Int {
        let out = try client.query("SELECT count() FROM \(client.url.database).\(table) WHERE sha256 = \(SQLLiteral.token(sha)) AND attempt = \(SQLLiteral.token(attempt))")
        return Int(String(decoding: out, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)) ?? -1
    }

    /// Deletes an attempt's rows (best effort: the server may be the reason it failed; readers
    /// ignore an attempt without its `source` row either way).
    private func discard(sha: String, attempt: String, includingSource: Bool) {
        let db = client.url.database
        let tables = ["event", "rejected", "source_layer"] + (includingSource ? ["source"] : [])
        for table in tables {
            _ = try? client.query("ALTER TABLE \(db).\(table) DELETE WHERE sha256 = \(SQLLiteral.token(sha)) AND attempt = \(SQLLiteral.token(attempt))")
        }
    }

    /// One event's fields after `sha256, attempt, seq`, in `ClickHouseSchema.eventColumns` order.
    static func appendEvent(_ batch: EventBatch, _ row: Int, to out: inout [UInt8]) {
        out.append(0x09)
        TabSeparated.append(batch.number(row, .time) ?? 0, to: &out)
        out.append(0x09)
        out.append(contentsOf: batch.layers[row].rawValue.utf8)
        out.append(0x09)
        out.append(contentsOf: batch.kinds[row].rawValue.utf8)
        for (column, _) in ClickHouseSchema.eventNumberColumns {
            out.append(0x09)
            let v = batch.number(row, column)
            TabSeparated.append(v ?? ((column == .line || column == .lineEnd) ? 0 : nil), to: &out)
        }
        batch.arena.withUnsafeBufferPointer { arena in
            for (column, _) in ClickHouseSchema.eventTextColumns {
                out.append(0x09)
                let span = batch.span(row, column)
                if span.isNull {
                    if column == .raw { continue }
                    TabSeparated.appendNull(to: &out)
                } else {
                    TabSeparated.appendEscaped(UnsafeBufferPointer(rebasing: arena[span.start..<(span.start + span.count)]), to: &out)
                }
            }
        }
    }
}
