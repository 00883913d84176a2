import Foundation

/// A bounded, blocking hand-over between two threads. Bounded so a fast producer cannot fill
/// memory when the consumer (SQLite) is slower.
final class BoundedChannel<Item> {
    private let condition = NSCondition()
    private var items: [Item] = []
    private let capacity: Int
    private var cancelled = false

    init(capacity: Int) { self.capacity = capacity }

    /// False once the consumer has given up: the producer should stop.
    @discardableResult
    func put(_ item: Item) -> Bool {
        condition.lock()
        defer { condition.unlock() }
        while items.count >= capacity && !cancelled { condition.wait() }
        if cancelled { return false }
        items.append(item)
        condition.broadcast()
        return true
    }

    func take() -> Item {
        condition.lock()
        defer { condition.unlock() }
        while items.isEmpty { condition.wait() }
        let item = items.removeFirst()
        condition.broadcast()
        return item
    }

    /// Items waiting for the consumer.
    var pending: Int {
        condition.lock()
        defer { condition.unlock() }
        return items.count
    }

    var isCancelled: Bool {
        condition.lock()
        defer { condition.unlock() }
        return cancelled
    }

    func cancel() {
        condition.lock()
        cancelled = true
        items.removeAll()
        condition.broadcast()
        condition.unlock()
    }
}

/// The reading side of one file's ingest, run on its own thread: read, hash, inflate, split and
/// parse, handing batches of records to the thread that writes them to SQLite. On a 2-core machine
/// this puts decompression and parsing on one core and the database on the other.
///
/// When stored sources may be the start of this file's content (`candidates`: the same file
/// before it grew, or before logrotate renamed, copied or compressed it), a first pass hashes the
/// content up to the largest candidate's size and compares digests at each candidate's size; the
/// longest match is where parsing starts, so its lines are not stored twice. A file whose whole
/// content is a stored source's is not parsed at all.
final class ParseProducer {
    /// What the file turned out to hold, sent once reading is complete.
    struct Outcome {
        /// Lines read in this version (after `resume`), not counting a held-back last line.
        var lines: Int
        var notes: [String]
        /// SHA-256 and length of the bytes on disk (compressed bytes for gzip).
        var sha256: String
        var size: Int64
        /// SHA-256 and length of the content read: decompressed, without a held-back last line.
        var contentSHA256: String
        var contentSize: Int64
        /// `ContentHead.storedKey` of that content (nil when it is empty).
        var headSHA256: String?
        /// The stored source this content starts with, and where reading resumed after it.
        var resume: ContentResume?
        /// Bytes of an unterminated last line held back (0 when none).
        var heldBack: Int
        /// Line number the held-back line will have.
        var heldBackLine: Int
        /// Lines not parsed: their stamps lie far outside the question's window (`skipper`); the
        /// records they begin, and the span those are known to reach.
        var skippedOutside = 0
        var skippedRecords = 0
        var skippedSpan: ClosedRange<Int64>?
    }

    enum Message {
        /// Sent before any batch: the partly stored versions this content starts with, whose
        /// stored lines the writer leaves out (`PrefixCandidate.partial`).
        case partlyStored([PrefixCandidate])
        case batch(events: EventBatch, rejected: [RejectedLine], bytesRead: Int64)
        case finished(Outcome)
        case failed(Error)
    }

    static let batchSize = 2048

    let channel = BoundedChannel<Message>(capacity: 8)
    private let done = DispatchSemaphore(value: 0)

    private let file: ReadOnlyFile
    private let isGzip: Bool
    private let candidates: [PrefixCandidate]
    private let holdsBackPartialLine: Bool
    private let maxLineLength: Int
    private var parser: any RecordParser
    /// Around a question's window: lines whose stamps lie far outside it are counted, not parsed.
    private var skipper: OutsideLineSkipper?

    /// Whether batches carry `EventBatch.textHashes` for the SQLite writer's `SharedText` (the
    /// ClickHouse path stores text as it is and needs none).
    private let hashesSharedText: Bool

    /// `holdsBackPartialLine`: the file may still be written to (a plain file of a format a
    /// running process appends to), so an unterminated last line may be mid-write: it is left for
    /// a later run instead of being stored as a fragment.
    init(file: ReadOnlyFile, isGzip: Bool, candidates: [PrefixCandidate], holdsBackPartialLine: Bool, maxLineLength: Int,
         parser: any RecordParser, skipper: OutsideLineSkipper? = nil, hashesSharedText: Bool = true) {
        self.hashesSharedText = hashesSharedText
        self.skipper = skipper
        self.file = file
        self.isGzip = isGzip
        self.candidates = candidates
        self.holdsBackPartialLine = holdsBackPartialLine && !isGzip
        self.maxLineLength = maxLineLength
        self.parser = parser
    }

    func start() {
        let thread = Thread { [self] in
            run()
            done.signal()
        }
        thread.stackSize = 8 << 20
        thread.start()
    }

    /// Blocks until the producer thread has exited (after `finished`, `failed` or a cancel).
    func waitUntilDone() { done.wait() }

    private struct Stop: Error {}
    private struct Enough: Error {}

    /// Hashes the content up to the largest candidate's size (one byte beyond, to know whether
    /// the file is longer) and returns the longest stored source it starts with, and whether the
    /// content ended exactly there.
    private func matchPrefix(raw: inout StreamDigest, content: inout StreamDigest, notes: inout [String]) throws
        -> (resume: ContentResume?, wholeContent: Bool, partlyStored: [PrefixCandidate]) {
        var matcher = PrefixMatcher(candidates)
        let limit = matcher.limit
        try file.seek(to: 0)
        var contentOffset: Int64 = 0
        var atEnd = true
        if isGzip {
            let inflater = GzipInflater()
            var rawOffset: Int64 = 0
            do {
                try file.forEachChunk { chunk in
                    if channel.isCancelled { throw Stop() }
                    raw.feed(chunk, at: rawOffset)
                    rawOffset += Int64(chunk.count)
                    inflater.feed(chunk) { out in
                        matcher.consume(out, at: contentOffset, into: &content)
                        contentOffset += Int64(out.count)
                    }
                    if contentOffset > limit { throw Enough() }
                }
            } catch is Enough { atEnd = false }
            if atEnd {
                inflater.finish()
                switch inflater.state {
                case .truncated: notes.append("gzip stream is truncated")
                case .corrupt(let m): notes.append("gzip data is corrupt (\(m))")
                default: break
                }
            }
        } else {
            try file.forEachChunk(limit: limit + 1) { chunk in
                if channel.isCancelled { throw Stop() }
                matcher.consume(chunk, at: contentOffset, into: &content)
                contentOffset += Int64(chunk.count)
            }
            atEnd = contentOffset <= limit
        }
        guard let best = matcher.best else { return (nil, false, matcher.partialMatches) }
        return (best, atEnd && contentOffset == best.source.contentSize, matcher.partialMatches)
    }

    private func run() {
        var sink = RecordSink()
        var notes: [String] = []
        var bytesRead: Int64 = 0
        // The bytes on disk (gzip only: for a plain file they are the content) and the content.
        var raw = StreamDigest(keepsHead: false)
        var content = StreamDigest()
        var resume: ContentResume?
        let limit = maxLineLength
        var stopped = false
        func flush(force: Bool) throws {
            if stopped { throw Stop() }
            guard force || sink.eventCount + sink.rejected.count >= Self.batchSize else { return }
            // The original bytes are compressed by whichever thread has time: here when the
            // writer has batches waiting (this thread is ahead), else by the writer.
            if channel.pending >= 2 { sink.batch.packRaw() }
            // Cheap here, and the writer is what bounds a large file.
            if hashesSharedText { sink.batch.hashTexts(columns: EventWriter.sharedTexts) }
            guard channel.put(.batch(events: sink.batch, rejected: sink.rejected, bytesRead: bytesRead)) else { throw Stop() }
            // A fresh batch sized like the last one: the one handed over now belongs to the writer.
            let arenaSize = sink.batch.arena.count
            sink.batch = EventBatch()
            sink.batch.reserve(rows: Self.batchSize, bytes: arenaSize)
            sink.rejected = []
            bytesRead = 0
        }
        var lines = 0, heldBack = 0, heldBackLine = 0
        // Blank lines are accounted for, not silently gone: counted, and said in the file's notes.
        var blankLines = 0
        do {
            var wholeContent = false
            if !candidates.isEmpty {
                let partlyStored: [PrefixCandidate]
                (resume, wholeContent, partlyStored) = try matchPrefix(raw: &raw, content: &content, notes: &notes)
                if !partlyStored.isEmpty, !channel.put(.partlyStored(partlyStored)) { throw Stop() }
            }
            let startOffset = resume?.offset ?? 0
            let startLine = resume?.line ?? 0
            var splitter = LineSplitter(maxLineLength: maxLineLength, firstLineNumber: startLine + 1)
            // Batches are cut by record count as lines arrive (a 1 MB gzip chunk inflates to tens of
            // thousands of lines): memory stays at channel capacity × batch size.
            let onLine: (Line) -> Void = { line in
                if line.bytes.allSatisfy({ $0 == 0x20 || $0 == 0x09 || $0 == 0x0D }) { blankLines += 1 }
                if self.skipper?.skips(UnsafeRawBufferPointer(line.bytes)) == true { return }
                self.parser.consume(line, into: &sink)
                if !stopped, sink.eventCount + sink.rejected.count >= Self.batchSize {
                    do { try flush(force: true) } catch { stopped = true }
                }
            }
            let onOverlong: (Line, Int) -> Void = { line, length in
                sink.reject(line: line.number, reason: "line of \(length) bytes exceeds the \(limit)-byte limit; its first \(line.count) bytes are kept",
                            raw: line.copyBytes())
            }
            if wholeContent {
                // The same content as a stored source: nothing to parse.
            } else if isGzip {
                // The content before `startOffset` is inflated again but not parsed.
                try file.seek(to: 0)
                let inflater = GzipInflater()
                var rawOffset: Int64 = 0, contentOffset: Int64 = 0
                try file.forEachChunk { chunk in
                    // Re-inflating a long prefix hands nothing over: a cancel is noticed here.
                    if channel.isCancelled { throw Stop() }
                    raw.feed(chunk, at: rawOffset)
                    rawOffset += Int64(chunk.count)
                    bytesRead += Int64(chunk.count)
                    inflater.feed(chunk) { out in
                        content.feed(out, at: contentOffset)
                        let end = contentOffset + Int64(out.count)
                        if end > startOffset {
                            let skip = Int(max(0, startOffset - contentOffset))
                            splitter.feed(UnsafeRawBufferPointer(rebasing: out[skip...]), line: onLine, overlong: onOverlong)
                        }
                        contentOffset = end
                    }
                    try flush(force: false)
                }
                inflater.finish()
                switch inflater.state {
                case .finished, .running:
                    splitter.finish(line: onLine, overlong: onOverlong)
                    if inflater.members > 1 { notes.append("gzip stream of \(inflater.members) members, all read") }
                    if inflater.trailingGarbage > 0 { notes.append("\(inflater.trailingGarbage) bytes of non-gzip data after the last member ignored") }
                case .truncated, .corrupt:
                    let why: String
                    if case .corrupt(let m) = inflater.state { why = "\(InputProblems.corruptGzip) (\(m))" } else { why = InputProblems.truncatedGzip }
                    // The unfinished last line is evidence too, but not a record: keep it as rejected.
                    var keptPartial = false
                    splitter.finish(line: { line in
                        keptPartial = true
                        sink.reject(line, "incomplete last line: \(why)")
                    }, overlong: { line, length in
                        keptPartial = true
                        sink.reject(line: line.number, reason: "incomplete last line of \(length) bytes: \(why)", raw: line.copyBytes())
                    })
                    notes.append("\(why): kept every complete line decoded before it (\(splitter.lineNumber - (keptPartial ? 1 : 0) - startLine) lines)")
                }
            } else {
                try file.seek(to: startOffset)
                var offset = startOffset
                bytesRead = startOffset
                try file.forEachChunk { chunk in
                    content.feed(chunk, at: offset)
                    offset += Int64(chunk.count)
                    bytesRead += Int64(chunk.count)
                    splitter.feed(chunk, line: onLine, overlong: onOverlong)
                    try flush(force: false)
                }
                if holdsBackPartialLine && splitter.hasPartialLine {
                    // Possibly a line caught mid-write: stored as a fragment now, its rest would
                    // become a second fragment and shift every later line number. A later run reads
                    // it whole from its start, which is where this version's content ends.
                    heldBack = splitter.partialLength
                    heldBackLine = splitter.lineNumber + 1
                } else {
                    splitter.finish(line: onLine, overlong: onOverlong)
                }
            }
            if !wholeContent {
                parser.finish(into: &sink)
                try flush(force: true)
            }
            lines = splitter.lineNumber - startLine
        } catch is Stop {
            stopped = true
        } catch {
            channel.put(.failed(error))
            return
        }
        if stopped { return }
        if blankLines > 0 { notes.append("\(blankLines) blank line\(blankLines == 1 ? "" : "s") (empty or whitespace only), no record in \(blankLines == 1 ? "it" : "them")") }
        // A plain file's bytes are its content; a held-back line is not part of what was read.
        let disk = isGzip ? raw : content
        let contentHasher = heldBack > 0 ? content.atLastNewline : content.hasher
        let contentSize = heldBack > 0 ? content.lastNewlineEnd : content.covered
        let outcome = Outcome(lines: lines, notes: notes + sink.notes, sha256: disk.hasher.hexDigest(), size: disk.covered,
                              contentSHA256: contentHasher.hexDigest(), contentSize: contentSize,
                              headSHA256: ContentHead.storedKey(content.head, size: contentSize), resume: resume,
                              heldBack: heldBack, heldBackLine: heldBackLine, skippedOutside: skipper?.skipped ?? 0,
                              skippedRecords: skipper?.skippedRecords ?? 0,
                              skippedSpan: skipper.flatMap { s in s.earliest.flatMap { e in s.latest.map { e...max(e, $0) } } })
        channel.put(.finished(outcome))
    }
}
