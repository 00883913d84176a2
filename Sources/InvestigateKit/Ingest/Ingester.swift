import Foundation
import GRDB

/// What happened to one input file in an ingest run. Field names are part of `ingest --json`.
public struct FileResult: Sendable, Equatable, Encodable {
    public enum Status: String, Sendable, Encodable {
        /// Parsed and stored in this run.
        case ingested
        /// Only the lines appended since the last run were stored.
        case grown
        /// Already in the timeline (same content); nothing added.
        case unchanged
        /// No importer recognised it, or it is empty; recorded, nothing parsed.
        case skipped
        /// It could not be read; nothing stored.
        case failed
    }

    public var path: String
    public var format: String?
    public var sha256: String?
    public var size: Int64?
    public var lines: Int
    public var events: Int
    public var rejected: Int
    /// Events this run added (0 for an unchanged file).
    public var added: Int
    public var first: Int64?
    public var last: Int64?
    public var status: Status
    /// Why nothing was parsed, or nil.
    public var skipped: String?
    public var notes: [String]
    /// Read for a question's window: the span of time whose records are stored (nil: all), and
    /// the lines of records outside it that were read and not stored.
    public var covered: ClosedRange<Int64>?
    public var outsideLines = 0

    enum CodingKeys: String, CodingKey {
        case path, format, sha256, size, lines, events, rejected, added, first, last, status, skipped, notes
        case coveredFrom = "covered_from", coveredTo = "covered_to", outsideLines = "outside_lines"
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(path, forKey: .path)
        try c.encode(format, forKey: .format)
        try c.encode(sha256, forKey: .sha256)
        try c.encode(size, forKey: .size)
        try c.encode(lines, forKey: .lines)
        try c.encode(events, forKey: .events)
        try c.encode(rejected, forKey: .rejected)
        try c.encode(added, forKey: .added)
        try c.encode(first.map(TimeFormat.isoUTC), forKey: .first)
        try c.encode(last.map(TimeFormat.isoUTC), forKey: .last)
        try c.encode(status, forKey: .status)
        try c.encode(skipped, forKey: .skipped)
        try c.encode(notes, forKey: .notes)
        if let covered {
            try c.encode(TimeFormat.isoUTC(covered.lowerBound), forKey: .coveredFrom)
            try c.encode(TimeFormat.isoUTC(covered.upperBound), forKey: .coveredTo)
            try c.encode(outsideLines, forKey: .outsideLines)
        }
    }
}

/// The outcome of an ingest run. Encodes as `{"files":[…],"events":N,"rejected":N}`.
public struct IngestSummary: Sendable, Encodable {
    public var files: [FileResult]
    /// Events and rejected lines added by this run.
    public var events: Int
    public var rejected: Int

    public var failed: [FileResult] { files.filter { $0.status == .failed } }
}

/// Progress of a long ingest, for the terminal's progress bar.
public struct IngestProgress: Sendable {
    public var fileIndex: Int
    public var fileCount: Int
    public var path: String
    public var bytesDone: Int64
    public var bytesTotal: Int64
}

/// Reads input files into the timeline: expands directories, recognises each file's format from
/// its content, skips content already stored, and stores each file in one transaction, so an
/// interrupted run leaves every file either wholly in or not at all.
public final class Ingester {
    public let store: TimelineStore
    public let registry: ImporterRegistry
    public var options: ImportOptions
    /// The first record's time of each file planned for a windowed question (`WindowPlan`).
    private var firstStamps: [String: Int64] = [:]
    /// Forces one importer for every file (`--format`).
    public var formatOverride: String?
    public var progress: ((IngestProgress) -> Void)?
    public var maxLineLength = LineSplitter.defaultMaxLineLength
    /// Clock for `ingested_at` (fixed in tests).
    public var now: () -> Int64 = { Int64(Date().timeIntervalSince1970 * 1e6) }

    /// How many leading non-empty lines format detection looks at.
    public static let detectionSampleLines = 40

    public init(store: TimelineStore, registry: ImporterRegistry = .standard, options: ImportOptions = ImportOptions()) {
        self.store = store
        self.registry = registry
        self.options = options
    }

    public func ingest(paths: [String]) throws -> IngestSummary {
        if let id = formatOverride, registry.importer(id: id) == nil {
            throw ImporterError("unknown format '\(id)'; known formats: \(registry.ids.joined(separator: ", "))")
        }
        let walker = InputWalker.expand(paths)
        var results: [FileResult] = walker.problems.map {
            FileResult(path: $0.path, lines: 0, events: 0, rejected: 0, added: 0, status: .failed, skipped: $0.reason, notes: [])
        }
        let hints = IngestHints()

        // Recognise every file first, so files that teach others (access logs give the error log
        // beside them its zone) are read before their pupils.
        var planned: [(index: Int, path: String, importer: (any Importer)?, early: FileResult?, keys: ContentHead.Keys?)] = []
        for (index, path) in walker.files.enumerated() {
            do {
                let (importer, early, keys) = try plan(path)
                planned.append((index, path, importer, early, keys))
            } catch {
                planned.append((index, path, nil, failure(path, error), nil))
            }
        }
        // Rotated siblings bound each other's time: a file that begins after the window, or whose
        // newer sibling begins before it, holds none of it.
        if let window = options.window {
            let live = planned.compactMap { p -> WindowPlan.Candidate? in
                guard let importer = p.importer, p.early == nil else { return nil }
                return WindowPlan.Candidate(path: p.path, importer: importer.id, writtenLive: importer.writtenLive, first: firstStamps[p.path])
            }
            let skip = WindowPlan.rotationSkips(live, window: window)
            for i in planned.indices where planned[i].early == nil {
                if let why = skip[planned[i].path] {
                    planned[i].importer = nil
                    planned[i].early = FileResult(path: planned[i].path, lines: 0, events: 0, rejected: 0, added: 0, status: .skipped, skipped: why, notes: [])
                }
            }
        }
        firstStamps = [:]
        planned.sort { a, b in
            let oa = a.importer?.ingestOrder ?? 0, ob = b.importer?.ingestOrder ?? 0
            return oa != ob ? oa < ob : a.index < b.index
        }

        var added = 0, addedRejected = 0
        var perFile: [(index: Int, result: FileResult)] = []
        // Files are stored in groups, one transaction per group and a savepoint per file: a file is
        // still wholly in or not at all (a failed or duplicate file rolls back to its savepoint, a
        // killed run loses the open group), but thousands of small S3 objects no longer pay one
        // synchronous commit each.
        try store.dbQueue.writeWithoutTransaction { db in
          // Repeated text is shared across the run's files, not only within one.
          let shared = SharedText()
          let bulk = try runHasBulkLoad(planned.compactMap { $0.early == nil && $0.importer != nil ? $0.path : nil }, db: db)
          try store.bulkLoad(db, when: bulk) {
            // Foreign keys hold by construction here and are not checked per row: every event,
            // rejected line and per-layer count names the source row inserted in the same savepoint.
            // SQLite's check, a lookup into `source` per inserted event, cost about 5% of the writer's
            // work. The pragma is a no-op inside a transaction, so it is set around the whole run.
            try db.execute(sql: "PRAGMA foreign_keys = OFF")
            defer { try? db.execute(sql: "PRAGMA foreign_keys = ON") }
            var group = CommitGroup()
            // The next file, opened and parsing on its own thread while this one is stored.
            var ahead: (position: Int, file: Result<OpenedFile, Error>)?
            func open(_ n: Int) -> Result<OpenedFile, Error> {
                Result { try openFile(planned[n].path, importer: planned[n].importer!, keys: planned[n].keys, db: db, hints: hints,
                                      position: n) }
            }
            do {
                defer { if let pending = ahead, case .success(let file) = pending.file { file.abandon() } }
                for (n, item) in planned.enumerated() {
                    if let early = item.early {
                        perFile.append((item.index, early))
                        continue
                    }
                    if !db.isInsideTransaction {
                        try db.beginTransaction(.immediate)
                        group = CommitGroup()
                    }
                    let opened: Result<OpenedFile, Error>
                    if let pending = ahead, pending.position == n { opened = pending.file } else { opened = open(n) }
                    ahead = nil
                    // Parsing is what bounds most files (thousands of S3 objects); the writer waits.
                    // So the next file is parsed beside this one while this one is stored, when it
                    // cannot learn anything from it (the same `ingestOrder`: see `Importer`), and
                    // cannot continue its content (the stored sources whose content a file may
                    // start with are looked up when it is opened, so this one must be stored first).
                    if n + 1 < planned.count, planned[n + 1].early == nil,
                       planned[n + 1].importer!.ingestOrder == item.importer!.ingestOrder,
                       !Self.mayContinue(planned[n + 1].keys, item.keys) {
                        ahead = (n + 1, open(n + 1))
                    }
                    let result: FileResult
                    do {
                        result = try storeFile(opened.get(), db: db, shared: shared, position: n, of: planned.count)
                    } catch {
                        // SQLite rolled the whole transaction back (a full disk, an I/O or memory
                        // error in a statement without a statement journal, see `EventWriter`):
                        // the files stored earlier in this group are gone with it, so the run
                        // stops here instead of reporting them as stored.
                        if !db.isInsideTransaction { throw error }
                        result = failure(item.path, error)
                    }
                    if let format = result.format, let first = result.first, let last = result.last {
                        hints.learnSpan(first: first, last: last, format: format, from: item.path)
                    }
                    added += result.added
                    if result.status == .ingested || result.status == .grown { addedRejected += result.rejected }
                    perFile.append((item.index, result))
                    group.add(bytes: result.size ?? 0)
                    if group.isFull { try db.commit() }
                }
                if db.isInsideTransaction { try db.commit() }
            } catch {
                if db.isInsideTransaction { try? db.rollback() }
                throw error
            }
          }
        }
        results += perFile.sorted { $0.index < $1.index }.map(\.result)
        return IngestSummary(files: results, events: added, rejected: addedRejected)
    }

    /// The span of time whose records a question's run stores from long files (its window and
    /// the margin correlation needs); nil: every record (`ingest`).
    var keepRange: ClosedRange<Int64>? {
        options.window.map { ($0.lowerBound - WindowPlan.margin)...($0.upperBound + WindowPlan.margin) }
    }

    /// `keepRange` for files of this format (nil for context stored whole). An application log
    /// whose zone is a guess keeps the hours either side that any zone could put the window at:
    /// `AppZoneAlignment` may move its records by that much once the run is read.
    func keepRange(for importer: any Importer, hints: IngestHints) -> ClosedRange<Int64>? {
        if importer.storedWholeForAWindow { return nil }
        guard let keep = keepRange else { return nil }
        if AppZoneAlignment.zonelessByDefault.contains(importer.id), options.appTimeZone == nil, hints.learnedAppZone() == nil {
            return (keep.lowerBound - AppZoneAlignment.maxShift)...(keep.upperBound + AppZoneAlignment.maxShift)
        }
        return keep
    }

    /// Records of a file counted per layer (`Layer.depth`), with the span of their times.
    struct LayerSpans {
        var spans: [Int: (records: Int, first: Int64, last: Int64)] = [:]
        mutating func add(_ layer: Int, _ t: Int64, count: Int = 1) {
            if let s = spans[layer] { spans[layer] = (s.records + count, min(s.first, t), max(s.last, t)) } else { spans[layer] = (count, t, t) }
        }
    }

    /// About how many records a file of `size` bytes holds (160 bytes a record; gzip about 8:1),
    /// less what is already stored of it.
    static func estimatedRows(size: Int64, isGzip: Bool, alreadyStored: Int64 = 0) -> Int64 {
        max(0, (isGzip ? size * 8 : size) - alreadyStored) / 160
    }

    /// A load that at least doubles the table (and is large) builds its indexes once at the end,
    /// and runs in rollback-journal mode when it can (`TimelineStore.bulkLoad`).
    static func isBulkLoad(estimatedRows: Int64, existingRows: Int64) -> Bool {
        estimatedRows > 200_000 && estimatedRows > existingRows
    }

    /// Whether some file of the run will likely be a bulk load (told by its size and name before
    /// it is opened; `storeFile` decides per file from its bytes).
    private func runHasBulkLoad(_ paths: [String], db: Database) throws -> Bool {
        let existing = try Int64.fetchOne(db, sql: "SELECT max(id) FROM event") ?? 0
        return paths.contains { path in
            guard let st = try? FileStat.of(path) else { return false }
            return Self.isBulkLoad(estimatedRows: Self.estimatedRows(size: st.size, isGzip: path.hasSuffix(".gz")),
                                   existingRows: existing)
        }
    }

    /// Whether a file with the `later` head keys may start with the content of one with the
    /// `earlier` keys: the same first line, and the same first 4 KB when both have that much.
    static func mayContinue(_ later: ContentHead.Keys?, _ earlier: ContentHead.Keys?) -> Bool {
        guard let later, let earlier, later.firstLine == earlier.firstLine else { return false }
        guard let a = later.first4K, let b = earlier.first4K else { return true }
        return a == b
    }

    private func failure(_ path: String, _ error: Error) -> FileResult {
        FileResult(path: path, lines: 0, events: 0, rejected: 0, added: 0, status: .failed,
                   skipped: "cannot read: \(error)", notes: [])
    }

    // MARK: - Planning

    /// Decides what to do with a file before the expensive pass: unchanged since last time (same
    /// path, size, mtime and inode: no re-hash), skipped (empty, unrecognised), or parse with an importer.
    /// What a skipped file's reason says when it is the database this run writes (the timeline
    /// kept inside the folder of logs it reads): not input, and not an input problem.
    public static let ownDatabase = "the timeline database this run writes (or its WAL, shared-memory or journal file)"

    /// The files of the store itself, by device and inode (paths may be spelled differently).
    private lazy var storeFiles: Set<[UInt64]> = {
        guard store.path != ":memory:" else { return [] }
        return Set(["", "-wal", "-shm", "-journal"].compactMap { suffix in
            (try? FileStat.of(store.path + suffix)).map { [$0.device, $0.inode] }
        })
    }()

    private func plan(_ path: String) throws -> ((any Importer)?, FileResult?, ContentHead.Keys?) {
        if let st = try? FileStat.of(path), storeFiles.contains([st.device, st.inode]) {
            return (nil, FileResult(path: path, lines: 0, events: 0, rejected: 0, added: 0, status: .skipped, skipped: Self.ownDatabase, notes: []), nil)
        }
        // A question about a window reads only the files that can hold records in it; the file is
        // not recorded as skipped, so a question about another moment reads it then.
        if let window = options.window, let why = WindowPlan.reasonToSkip(path: path, window: window) {
            return (nil, FileResult(path: path, lines: 0, events: 0, rejected: 0, added: 0, status: .skipped, skipped: why, notes: []), nil)
        }
        let st = try FileStat.of(path)
        // Stored before, unchanged: a complete source is not re-read, and a file skipped under the
        // same detection is skipped again unread (hashing a 900 MB non-log beside the logs cost
        // seconds on every command). A format the user forces is always tried (notes = NULL).
        // Cached statements: over many small files, compiling these two queries per file cost more
        // than running them.
        let identical = try store.lookup { db in
            try SourceRecord.fetchAll(db.cachedStatement(sql: """
                SELECT * FROM source WHERE inode = ? AND size = ? AND mtime = ? AND (path = ? OR device = ?)
                  AND (status = 'complete' OR (status = 'skipped' AND notes = ?))
                ORDER BY status = 'complete' DESC, covered_from IS NULL DESC, id DESC
                """), arguments: [Int64(bitPattern: st.inode), st.size, st.mtime, path, Int64(bitPattern: st.device),
                                  formatOverride == nil ? skippedNotes : nil])
        }
        if let stored = identical.first {
            if stored.status != "complete" {
                return (nil, FileResult(path: path, sha256: stored.sha256, size: stored.size, lines: 0, events: 0, rejected: 0,
                                        added: 0, status: .skipped, skipped: stored.skipped, notes: []), nil)
            }
            // A held-back unterminated last line, the file now under a rotated name (final): its
            // last line is read now, as a rotated copy's is, not left unstored for good.
            let heldBack = !stored.compressed && (stored.contentSize.map { $0 < stored.size } ?? false)
            if heldBack, WindowPlan.rotation(path).number > 0 {
                // Falls through to be read; only the line not yet stored is added.
            } else if stored.covered == nil
                || WindowPlan.spans(identical.filter { $0.status == "complete" }.compactMap(\.covered), hold: keepRange) {
                return (nil, try unchangedResult(path, stored), nil)
            }
        }
        if st.size == 0 {
            return (nil, FileResult(path: path, sha256: SHA256().hexDigest(), size: 0, lines: 0, events: 0, rejected: 0,
                                    added: 0, status: .skipped, skipped: "empty file", notes: []), nil)
        }
        let file = try ReadOnlyFile(path)
        let sample = try Self.leadingLines(file, count: Self.detectionSampleLines)
        let keys = ContentHead.keys(sample.head)
        if let id = formatOverride {
            return (registry.importer(id: id)!, nil, keys)
        }
        let sampleText = sample.lines.map { String(decoding: $0, as: UTF8.self) }
        var detection = registry.detect(sampleText, fileName: Self.detectionName(path), stopAtCertain: true)
        // An app log in the layout the user named: the built-in layouts do not know it.
        if detection.importer == nil, let given = options.appLogFormat, let flask = registry.importer(id: "flask") as? FlaskImporter,
           flask.recognize(sampleText.filter { !$0.allSatisfy(\.isWhitespace) }, appLogFormat: given) >= ImporterRegistry.detectionThreshold {
            detection.importer = flask
        }
        if let importer = detection.importer {
            if options.window != nil {
                firstStamps[path] = WindowPlan.firstStamp(importer, sample.lines, path: path, options: options, registry: registry)
            }
            return (importer, nil, keys)
        }
        var reason: String
        if sample.lines.isEmpty || sample.binary {
            reason = "binary content, not a text log"
        } else {
            reason = "format not recognised from its first \(sample.lines.count) lines"
            if let closest = detection.closest {
                reason += " (closest: \(closest.id), \(Int(closest.score * 100))% of lines)"
            }
            reason += "; use --format to force one"
        }
        if let problem = sample.problem { reason += "; \(problem)" }
        let digest = try FileDigest.compute(file)
        try store.write { db in
            // One row per path: the latest version skipped.
            try db.execute(sql: "DELETE FROM source WHERE path = ? AND status = 'skipped'", arguments: [path])
            try db.execute(sql: """
                INSERT INTO source (path, sha256, size, mtime, inode, device, compressed, status, skipped, notes, ingested_at)
                VALUES (?, ?, ?, ?, ?, ?, ?, 'skipped', ?, ?, ?)
                """, arguments: [path, digest.sha256, digest.size, st.mtime, Int64(bitPattern: st.inode), Int64(bitPattern: st.device),
                                 sample.compressed, reason, skippedNotes, now()])
        }
        return (nil, FileResult(path: path, sha256: digest.sha256, size: digest.size, lines: 0, events: 0, rejected: 0,
                                added: 0, status: .skipped, skipped: reason, notes: []), nil)
    }

    /// The name detection breaks ties with: the file's name with its folder's, since
    /// `gunicorn/access.log` says what its combined-format lines cannot.
    static func detectionName(_ path: String) -> String {
        let name = (path as NSString).lastPathComponent
        let folder = ((path as NSString).deletingLastPathComponent as NSString).lastPathComponent
        return folder.isEmpty || folder == "/" ? name : folder + "/" + name
    }

    /// What a skipped file's row records of the detection that skipped it (`notes`): the formats
    /// known and the formats the user described. A file is re-read when any of them changes, since
    /// it may be recognised now.
    private lazy var skippedNotes: String = {
        let detection = "skipped by investigate \(version); formats \(registry.ids.joined(separator: ","))"
            + "; nginx log format \(options.nginxLogFormat ?? "-"); app log format \(options.appLogFormat ?? "-")"
        return String(decoding: (try? JSONEncoder().encode([detection])) ?? Data("[]".utf8), as: UTF8.self)
    }()

    private func unchangedResult(_ path: String, _ stored: SourceRecord) throws -> FileResult {
        try store.lookup { db in try unchangedResult(path, stored, db: db) }
    }

    private func unchangedResult(_ path: String, _ stored: SourceRecord, db: Database) throws -> FileResult {
        // Totals across the versions of this path (a grown file has several rows).
        let totals = try Row.fetchOne(db.cachedStatement(sql: """
            WITH RECURSIVE chain(id, parent_id) AS (
                SELECT id, parent_id FROM source WHERE id = ?
                UNION ALL SELECT s.id, s.parent_id FROM source s JOIN chain c ON s.id = c.parent_id)
            SELECT SUM(events) AS e, SUM(rejected) AS r, MIN(first_time) AS f, MAX(last_time) AS l
            FROM source WHERE id IN (SELECT id FROM chain)
            """), arguments: [stored.id])
        var notes = ["already in the timeline (ingested as \(stored.path), sha256 \(stored.sha256.prefix(12))…)"]
        if let asked = options.appTimeZone?.description, let json = try String.fetchOne(db, sql: "SELECT notes FROM source WHERE id = ?", arguments: [stored.id]),
           let read = AppZoneReading.zone(inNotes: SourceRecord.notes(json)), read != asked {
            notes.append(InputProblems.storedInAnotherZone + "\(read), not --app-tz \(asked): stored content is not read again, so its records keep "
                         + "the times read then. Give a new --db (or remove this one) to read it as \(asked).")
        }
        return FileResult(path: path, format: stored.format, sha256: stored.sha256, size: stored.size, lines: stored.totalLines,
                          events: totals?["e"] ?? stored.events, rejected: totals?["r"] ?? stored.rejected, added: 0,
                          first: totals?["f"], last: totals?["l"], status: .unchanged,
                          skipped: stored.status == "skipped" ? stored.skipped : nil,
                          notes: notes,
                          covered: stored.covered, outsideLines: stored.outsideLines)
    }

    struct LeadingSample {
        var lines: [[UInt8]]
        var binary: Bool
        var problem: String?
        var compressed = false
        /// Decompressed bytes read to take the sample.
        var scanned = 0
        /// The first `ContentHead.length` bytes of the decompressed content.
        var head: [UInt8] = []
    }

    /// The first non-empty lines of the decompressed content (gzip is recognised by its bytes).
    static func leadingLines(_ file: ReadOnlyFile, count: Int) throws -> LeadingSample {
        struct Enough: Error {}
        var lines: [[UInt8]] = []
        var controlCount = 0, scanned = 0
        var splitter = LineSplitter(maxLineLength: 256 * 1024, keptPrefix: 4096)
        var contentHead: [UInt8] = []
        let keepHead: (UnsafeRawBufferPointer) -> Void = { bytes in
            if contentHead.count < ContentHead.length { contentHead.append(contentsOf: bytes.prefix(ContentHead.length - contentHead.count)) }
        }
        let take: (Line) -> Void = { line in
            if !line.isEmpty, lines.count < count { lines.append(line.copyBytes()) }
        }
        let overlong: (Line, Int) -> Void = { line, _ in if lines.count < count { lines.append(line.copyBytes()) } }
        let head = try file.prefix(2)
        var problem: String?
        do {
            try file.seek(to: 0)
            if GzipInflater.isGzip(head) {
                let inflater = GzipInflater()
                try file.forEachChunk { chunk in
                    // A 1 MB compressed chunk inflates to 5–10 MB, and detection needs a few KB of
                    // it: feed slices and stop as soon as the sample and the binary check have enough.
                    var start = 0
                    while start < chunk.count {
                        let end = min(start + Self.detectionSliceBytes, chunk.count)
                        inflater.feed(UnsafeRawBufferPointer(rebasing: chunk[start..<end])) { out in
                            scanned += out.count
                            keepHead(out)
                            controlCount += Self.controlBytes(out)
                            splitter.feed(out, line: take, overlong: overlong)
                        }
                        start = end
                        if (lines.count >= count && scanned >= Self.detectionMinimumScan) || scanned > 4 << 20 { throw Enough() }
                        if case .corrupt(let m) = inflater.state { problem = "gzip data is corrupt: \(m)"; throw Enough() }
                    }
                }
            } else {
                try file.forEachChunk { chunk in
                    scanned += chunk.count
                    keepHead(chunk)
                    controlCount += Self.controlBytes(chunk)
                    splitter.feed(chunk, line: take, overlong: overlong)
                    if lines.count >= count || scanned > 4 << 20 { throw Enough() }
                }
            }
            splitter.finish(line: take, overlong: overlong)
        } catch is Enough {}
        if lines.isEmpty, splitter.hasPartialLine {
            let head = splitter.partialPrefix(64 * 1024)
            if !head.isEmpty { lines.append(head) }
        }
        // Text logs have almost no control bytes besides tab, CR and LF; binary data is full of them.
        let binary = scanned > 0 && controlCount * 100 / scanned >= 5
        return LeadingSample(lines: lines, binary: binary, problem: problem, compressed: GzipInflater.isGzip(head), scanned: scanned,
                             head: contentHead)
    }

    /// Compressed bytes fed to the inflater at a time while detecting a gzip file's format.
    static let detectionSliceBytes = 16 * 1024
    /// Decompressed bytes the binary check sees at least (when the file has that many).
    static let detectionMinimumScan = 64 * 1024

    static func controlBytes(_ bytes: UnsafeRawBufferPointer) -> Int {
        var n = 0
        for b in bytes where b < 0x09 || (b > 0x0D && b < 0x20) || b == 0x7F { n += 1 }
        return n
    }

    // MARK: - Parsing

    /// When an open group of files is committed: after this much input or this many files or this
    /// long, so a kill loses little work and a long run shows its progress in the database.
    struct CommitGroup {
        static let maxBytes: Int64 = 64 << 20
        static let maxFiles = 1000
        static let maxSeconds = 5.0
        private let started = Date()
        private var bytes: Int64 = 0
        private var files = 0

        mutating func add(bytes: Int64) {
            self.bytes += bytes
            files += 1
        }

        var isFull: Bool {
            bytes >= Self.maxBytes || files >= Self.maxFiles || Date().timeIntervalSince(started) >= Self.maxSeconds
        }
    }

    /// A file whose reading and parsing has started on its own thread (`ParseProducer`): what
    /// storing it needs besides its records.
    struct OpenedFile {
        let path: String
        let importer: any Importer
        let st: FileStat
        let isGzip: Bool
        /// The longest stored content it may start with (bytes), for the size estimate of the load.
        let largestCandidate: Int64
        let producer: ParseProducer
        /// The span whose records are stored (nil: all).
        let keep: ClosedRange<Int64>?

        /// Stops the parsing thread of a file that will not be stored, and waits for it.
        func abandon() {
            producer.channel.cancel()
            producer.waitUntilDone()
        }
    }

    /// Opens a file and starts parsing it on its own thread; the transaction need not be open.
    private func openFile(_ path: String, importer: any Importer, keys: ContentHead.Keys?, db: Database, hints: IngestHints,
                          position: Int) throws -> OpenedFile {
        let st = try FileStat.of(path)
        let file = try ReadOnlyFile(path)
        let head = try file.prefix(10)
        let isGzip = GzipInflater.isGzip(head)
        var gzipMTime: Int64?
        if isGzip, head.count >= 8 {
            let t = UInt32(head[4]) | UInt32(head[5]) << 8 | UInt32(head[6]) << 16 | UInt32(head[7]) << 24
            if t != 0 { gzipMTime = Int64(t) * 1_000_000 }
        }
        // The stored sources this file's content may start with: the producer hashes the content
        // up to them before parsing, and parses only what follows the longest that matches.
        let candidates = try prefixCandidates(path: path, keys: keys, plainSize: isGzip ? nil : st.size, db: db)

        let referenceTime = gzipMTime ?? st.mtime
        let context = ParseContext(path: path, options: options, referenceTime: referenceTime, hints: hints, registry: registry,
                                   position: position)
        let parser = try importer.makeParser(context)
        // Around a question's window, records far outside it are not even parsed.
        let keep = keepRange(for: importer, hints: hints)
        let skipper = keep.flatMap { keep in importer.lineTimeScan(options).map { OutsideLineSkipper(scan: $0, keep: keep) } }
        let producer = ParseProducer(file: file, isGzip: isGzip, candidates: candidates, holdsBackPartialLine: Self.mayStillBeWritten(path, importer),
                                     maxLineLength: max(maxLineLength, importer.maxRecordBytes ?? 0), parser: parser, skipper: skipper)
        producer.start()
        return OpenedFile(path: path, importer: importer, st: st, isGzip: isGzip,
                          largestCandidate: candidates.filter { !$0.partial }.map(\.contentSize).max() ?? 0, producer: producer, keep: keep)
    }

    /// Stored sources whose whole content a file may start with (the file before it grew, or
    /// before logrotate renamed, copied or compressed it): those whose key of their first bytes
    /// is this file's (`ContentHead`), no longer than the file. Two indexed lookups; only the
    /// digest of the file's content decides. Plain sources stored before keys were recorded are
    /// found by their path.
    private func prefixCandidates(path: String, keys: ContentHead.Keys?, plainSize: Int64?, db: Database) throws -> [PrefixCandidate] {
        let select = "SELECT id, path, content_sha256, content_size, start_line + lines AS total_lines, covered_from IS NOT NULL AS partial FROM source"
        let fits = "status = 'complete' AND content_sha256 IS NOT NULL AND content_size > 0 AND content_size <= :most"
        // One statement, prepared once per run: thousands of small files pay a lookup each.
        let statement = try db.cachedStatement(sql: """
            \(select) WHERE head_sha256 = :first4K AND content_size >= \(ContentHead.length) AND \(fits)
            UNION ALL \(select) WHERE head_sha256 = :firstLine AND content_size < \(ContentHead.length) AND \(fits)
            UNION ALL \(select) WHERE head_sha256 IS NULL AND path = :path AND compressed = 0 AND \(fits)
            """)
        let rows = try Row.fetchAll(statement, arguments: ["first4K": keys?.first4K, "firstLine": keys?.firstLine, "path": path,
                                                           "most": plainSize ?? Int64.max])
        return rows.map {
            PrefixCandidate(id: $0["id"], path: $0["path"], contentSize: $0["content_size"], contentSHA256: $0["content_sha256"],
                            totalLines: $0["total_lines"], partial: $0["partial"])
        }
    }

    /// The lines (first line of each record, and rejected lines) the given versions stored.
    static func storedLines(of sources: [Int64], db: Database) throws -> Set<Int> {
        var lines = Set<Int>()
        for id in sources {
            for line in try Int.fetchAll(db, sql: "SELECT line FROM event WHERE source_id = ?", arguments: [id]) { lines.insert(line) }
            for line in try Int.fetchAll(db, sql: "SELECT line FROM rejected WHERE source_id = ?", arguments: [id]) { lines.insert(line) }
        }
        return lines
    }

    /// What a version that continues a stored source's content says about it (the ClickHouse
    /// ingest path says the same).
    static func resumeNote(_ resume: ContentResume, path: String) -> String {
        let source = resume.source
        var note: String
        if source.path == path {
            note = "file grew since it was ingested: read only its new lines, from line \(resume.line + 1)"
        } else {
            note = "continues \(source.path) (its first \(source.totalLines) lines are that file's content, renamed, copied or "
                + "compressed since, as logrotate does): read only the lines after them, from line \(resume.line + 1)"
        }
        if resume.restartsLine {
            note += "; line \(resume.line + 1) ended without a newline in the stored content and is read again whole"
        }
        return note
    }

    /// What a version with no lines of its own (the same content as a stored source) says about it.
    static func sameContentNote(_ source: String, path: String) -> String {
        source == path
            ? "same content as when it was ingested; 0 new lines"
            : "same content as \(source) (renamed, copied or compressed, as logrotate does); 0 new lines"
    }

    static func heldBackNote(_ outcome: ParseProducer.Outcome) -> String {
        "last line (\(outcome.heldBack) bytes) has no newline yet: held back, as its writer may be mid-line; "
            + "a later run stores it whole as line \(outcome.heldBackLine) once it is finished (a compressed or rotated copy is final: "
            + "its last line is read as it is)"
    }

    /// Whether a process may still be appending to the file, so that an unterminated last line
    /// may be caught mid-write: a plain, unrotated file of a format written live on a host.
    /// logrotate's numbered copies (`access.log.1`) are final, and a torn last line there is
    /// read as it is (and rejected with its reason when it does not parse), never dropped.
    static func mayStillBeWritten(_ path: String, _ importer: any Importer) -> Bool {
        importer.writtenLive && WindowPlan.rotation(path).number == 0
    }

    /// Stores an opened file inside the open transaction, under its own savepoint.
    private func storeFile(_ opened: OpenedFile, db: Database, shared: SharedText, position: Int, of total: Int) throws -> FileResult {
        let path = opened.path, importer = opened.importer, st = opened.st, isGzip = opened.isGzip
        let producer = opened.producer
        var notes: [String] = []
        var outcome: ParseProducer.Outcome?
        // Whatever happens below, the parsing thread is stopped and joined before this returns.
        var producerDone = false
        defer { if !producerDone { opened.abandon() } }
        var eventCount = 0, rejectCount = 0
        var first: Int64?, last: Int64?
        // Per layer, indexed by `Layer.depth` (a dictionary lookup per record costs more than the insert).
        var perLayer = [(events: Int, first: Int64?, last: Int64?)](repeating: (0, nil, nil), count: Layer.allCases.count)

        struct AlreadyStored: Error { var record: SourceRecord; var outcome: ParseProducer.Outcome }
        let clock = PhaseClock()
        var waited = 0.0
        var storedID: Int64 = 0
        // Lines of records read but not stored: outside the window, or stored already by a version
        // read for another window (`storedLines`, from `partlyStored`).
        var outsideLines = 0, alreadyStoredLines = 0
        var partlyStored: [PrefixCandidate] = []
        var storedLines = Set<Int>()
        // Per layer, the records read for a window but not stored: `source_layer` still says how
        // many this file holds and which span they reach, so coverage (does this layer's log span
        // the question?) reads the same as after a full ingest.
        var outside = LayerSpans()
        do {
        try db.inSavepoint {
            try db.execute(sql: """
                INSERT INTO source (path, sha256, size, mtime, inode, device, compressed, format, status, ingested_at)
                VALUES (?, '', ?, ?, ?, ?, ?, ?, 'complete', ?)
                """, arguments: [path, st.size, st.mtime, Int64(bitPattern: st.inode), Int64(bitPattern: st.device),
                                 isGzip, importer.id, now()])
            let id = db.lastInsertedRowID
            // A bulk load that at least doubles the table builds its indexes once at the end, which
            // is much faster than maintaining them row by row. DDL is transactional: a kill rolls
            // this back with everything else.
            let existing = try Int64.fetchOne(db, sql: "SELECT max(id) FROM event") ?? 0
            let estimatedRows = Self.estimatedRows(size: st.size, isGzip: isGzip, alreadyStored: opened.largestCandidate)
            let deferIndexes = Self.isBulkLoad(estimatedRows: estimatedRows, existingRows: existing)
            if deferIndexes { try Schema.dropEventIndexes(db) }
            let flusher = deferIndexes ? WritebackFlusher(path: store.path) : nil
            defer { flusher?.stop() }
            let writer = try EventWriter(db: db, sourceID: id, shared: shared)

            // Reading and parsing run on their own thread; this one writes.
            var bytesDone: Int64 = 0
            let keep = opened.keep
            reading: while true {
                let asked = clock.enabled ? Date() : nil
                let message = producer.channel.take()
                if let asked { waited += Date().timeIntervalSince(asked) }
                switch message {
                case .partlyStored(let versions):
                    // This content starts with versions stored around other windows: their lines
                    // are in already, whatever this run's window.
                    partlyStored = versions
                    storedLines = try Self.storedLines(of: versions.map(\.id), db: db)
                case .batch(let events, let rejected, let bytesRead):
                    // Around a question's window, only the records of its span are stored; a
                    // record without a time is kept (nothing says it lies outside).
                    var kept: [Int]?
                    if keep != nil || !storedLines.isEmpty {
                        var rows: [Int] = []
                        rows.reserveCapacity(events.count)
                        for row in 0..<events.count {
                            let line = Int(events.number(row, .line) ?? 0)
                            if storedLines.contains(line) { alreadyStoredLines += 1; continue }
                            if let keep, let t = events.number(row, .time), !keep.contains(t) {
                                outsideLines += Int((events.number(row, .lineEnd) ?? Int64(line)) - Int64(line) + 1)
                                if events.kinds[row].isLogRecord { outside.add(events.layers[row].depth, t) }
                                continue
                            }
                            rows.append(row)
                        }
                        kept = rows
                    }
                    for row in kept ?? Array(0..<events.count) {
                        let layer = events.layers[row].depth
                        // Metric datapoints and findings are signals about a layer, not its logs:
                        // `source_layer` (what coverage reads) counts only log records.
                        guard events.kinds[row].isLogRecord else {
                            if let t = events.number(row, .time) {
                                if first == nil || t < first! { first = t }
                                if last == nil || t > last! { last = t }
                            }
                            continue
                        }
                        var span = perLayer[layer]
                        span.events += 1
                        if let t = events.number(row, .time) {
                            if first == nil || t < first! { first = t }
                            if last == nil || t > last! { last = t }
                            if span.first == nil || t < span.first! { span.first = t }
                            if span.last == nil || t > span.last! { span.last = t }
                        }
                        perLayer[layer] = span
                    }
                    let stored = kept?.count ?? events.count
                    if let kept { try writer.insert(events, rows: kept) } else { try writer.insert(events) }
                    let keptRejects = storedLines.isEmpty ? rejected : rejected.filter { !storedLines.contains($0.line) }
                    try writer.insert(keptRejects)
                    let storedRejects = keptRejects.count
                    alreadyStoredLines += rejected.count - storedRejects
                    eventCount += stored
                    rejectCount += storedRejects
                    bytesDone += bytesRead
                    progress?(IngestProgress(fileIndex: position, fileCount: total, path: path, bytesDone: bytesDone,
                                             bytesTotal: st.size))
                case .finished(let finished):
                    outcome = finished
                    break reading
                case .failed(let error):
                    throw error
                }
            }
            producer.waitUntilDone()
            producerDone = true
            clock.lap("ingest \(Escape.terminal(path)): read, parse and insert (of which \(String(format: "%.3f", waited)) s waiting for the parser)", minimum: 0.5)
            let read = outcome!
            notes = read.notes
            outsideLines += read.skippedOutside
            // The same bytes or content stored under another name, not found from its first bytes
            // (a gzip file stored before content digests were recorded): roll this back.
            if read.resume == nil, let stored = try SourceRecord.fetchOne(db, sql: """
                SELECT * FROM source WHERE (sha256 = ? OR content_sha256 = ?) AND status = 'complete' AND covered_from IS NULL
                  AND id <> ? ORDER BY id LIMIT 1
                """, arguments: [read.sha256, read.contentSize > 0 ? read.contentSHA256 : nil, id]) {
                throw AlreadyStored(record: stored, outcome: read)
            }
            if let resume = read.resume {
                notes.insert(read.lines == 0 && eventCount == 0 && rejectCount == 0
                             ? Self.sameContentNote(resume.source.path, path: path) : Self.resumeNote(resume, path: path), at: 0)
            }
            if read.heldBack > 0 { notes.append(Self.heldBackNote(read)) }
            // Records outside the window were read and not stored: this version holds the
            // window's span only, and a question about another time reads the file again.
            let covered = outsideLines > 0 ? keep : nil
            if let covered {
                notes.append("read for a question's window: the records from \(TimeFormat.isoUTC(covered.lowerBound)) to "
                    + "\(TimeFormat.isoUTC(covered.upperBound)) are stored, \(outsideLines) lines of records outside it are not "
                    + "(a question about another time, or `ingest`, reads the file again and adds them)")
            }
            if alreadyStoredLines > 0 {
                notes.append("\(alreadyStoredLines) records already stored from "
                    + "\(Set(partlyStored.map(\.path)).sorted().joined(separator: ", ")) for an earlier question's window are not stored again")
            }
            if deferIndexes {
                try Schema.createEventIndexes(db)
                clock.lap("ingest \(Escape.terminal(path)): index build", minimum: 0.5)
            }
            let notesJSON = String(decoding: try JSONEncoder().encode(notes), as: UTF8.self)
            // This transaction alone inserted events, in order: they hold one contiguous run of ids.
            let lastEventID = eventCount > 0 ? try Int64.fetchOne(db, sql: "SELECT max(id) FROM event") : nil
            try db.execute(sql: """
                UPDATE source SET sha256 = ?, size = ?, content_sha256 = ?, content_size = ?, head_sha256 = ?,
                    parent_id = ?, start_offset = ?, start_line = ?, lines = ?, events = ?, rejected = ?,
                    first_time = ?, last_time = ?, notes = ?, first_event_id = ?, last_event_id = ?,
                    covered_from = ?, covered_to = ?, outside_lines = ? WHERE id = ?
                """, arguments: [read.sha256, read.size, read.contentSHA256, read.contentSize, read.headSHA256,
                                 read.resume?.source.id, read.resume?.offset ?? 0, read.resume?.line ?? 0,
                                 read.lines, eventCount, rejectCount, first, last, notesJSON,
                                 lastEventID.map { $0 - Int64(eventCount) + 1 }, lastEventID,
                                 covered?.lowerBound, covered?.upperBound, outsideLines, id])
            if read.skippedRecords > 0, let span = read.skippedSpan {
                outside.add(importer.layer.depth, span.lowerBound, count: read.skippedRecords)
                outside.add(importer.layer.depth, span.upperBound, count: 0)
            }
            // Versions read for other windows counted records they did not store; this version
            // stores or counts them now (their lines are left out above), so they count here only.
            for version in partlyStored {
                try db.execute(sql: "UPDATE source_layer SET outside_records = 0 WHERE source_id = ?", arguments: [version.id])
            }
            for layer in Layer.allCases {
                var span = perLayer[layer.depth]
                let o = outside.spans[layer.depth]
                if let o {
                    span.first = min(span.first ?? o.first, o.first)
                    span.last = max(span.last ?? o.last, o.last)
                }
                guard span.events > 0 || (o?.records ?? 0) > 0 else { continue }
                try db.execute(sql: "INSERT INTO source_layer (source_id, layer, events, first_time, last_time, outside_records) VALUES (?,?,?,?,?,?)",
                               arguments: [id, layer.rawValue, span.events, span.first, span.last, o?.records ?? 0])
            }
            storedID = id
            return .commit
        }
        clock.lap("ingest \(Escape.terminal(path)): stored", minimum: 0.5)
        } catch let known as AlreadyStored {
            return try storeSameContent(opened, as: known.record, outcome: known.outcome, db: db)
        }
        let read = outcome!
        if read.resume != nil, read.lines == 0, eventCount == 0, rejectCount == 0 {
            // Nothing of its own: report it like the content it repeats, with its notes.
            let stored = try SourceRecord.fetchOne(db, sql: "SELECT * FROM source WHERE id = ?", arguments: [storedID])!
            var result = try unchangedResult(path, stored, db: db)
            result.notes = notes
            return result
        }
        var result = FileResult(path: path, format: importer.id, sha256: read.sha256, size: read.size, lines: read.lines,
                                events: eventCount, rejected: rejectCount, added: eventCount, first: first, last: last,
                                status: read.resume == nil ? .ingested : .grown, skipped: nil, notes: notes)
        result.covered = outsideLines > 0 ? opened.keep : nil
        result.outsideLines = outsideLines
        return result
    }

    /// Records a file whose content is already stored under another source as a version with no
    /// lines of its own, pointing at it (`parent_id`): later runs find it unchanged by its
    /// path, size, mtime and inode without reading it, and later versions can continue it.
    private func storeSameContent(_ opened: OpenedFile, as stored: SourceRecord, outcome: ParseProducer.Outcome,
                                  db: Database) throws -> FileResult {
        let st = opened.st
        var notes = [Self.sameContentNote(stored.path, path: opened.path)]
        if outcome.heldBack > 0 { notes.append(Self.heldBackNote(outcome)) }
        let notesJSON = String(decoding: try JSONEncoder().encode(notes), as: UTF8.self)
        try db.execute(sql: """
            INSERT INTO source (path, sha256, size, mtime, inode, device, compressed, format, status, parent_id, start_offset,
                                start_line, notes, ingested_at, content_sha256, content_size, head_sha256)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'complete', ?, ?, ?, ?, ?, ?, ?, ?)
            """, arguments: [opened.path, outcome.sha256, outcome.size, st.mtime, Int64(bitPattern: st.inode),
                             Int64(bitPattern: st.device), opened.isGzip, opened.importer.id, stored.id,
                             outcome.contentSize, stored.totalLines, notesJSON, now(), outcome.contentSHA256, outcome.contentSize,
                             outcome.headSHA256])
        let row = try SourceRecord.fetchOne(db, sql: "SELECT * FROM source WHERE id = ?", arguments: [db.lastInsertedRowID])!
        var result = try unchangedResult(opened.path, row, db: db)
        result.notes = notes
        return result
    }
}
