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
final class ParseProducer {
    enum Message {
        case batch(events: EventBatch, rejected: [RejectedLine], bytesRead: Int64)
        case finished(lines: Int, notes: [String], hasher: SHA256)
        case failed(Error)
    }

    static let batchSize = 2048

    let channel = BoundedChannel<Message>(capacity: 8)
    private let done = DispatchSemaphore(value: 0)

    private let file: ReadOnlyFile
    private let isGzip: Bool
    private let startOffset: Int64
    private let startLine: Int
    private let maxLineLength: Int
    private var parser: any RecordParser
    private var hasher: SHA256

    init(file: ReadOnlyFile, isGzip: Bool, startOffset: Int64, startLine: Int, maxLineLength: Int,
         parser: any RecordParser, hasher: SHA256) {
        self.file = file
        self.isGzip = isGzip
        self.startOffset = startOffset
        self.startLine = startLine
        self.maxLineLength = maxLineLength
        self.parser = parser
        self.hasher = hasher
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

    private func run() {
        var sink = RecordSink()
        var notes: [String] = []
        var bytesRead: Int64 = 0
        var splitter = LineSplitter(maxLineLength: maxLineLength, firstLineNumber: startLine + 1)
        let limit = maxLineLength
        var stopped = false
        func flush(force: Bool) throws {
            if stopped { throw Stop() }
            guard force || sink.eventCount + sink.rejected.count >= Self.batchSize else { return }
            guard channel.put(.batch(events: sink.batch, rejected: sink.rejected, bytesRead: bytesRead)) else { throw Stop() }
            // A fresh batch sized like the last one: the one handed over now belongs to the writer.
            let arenaSize = sink.batch.arena.count
            sink.batch = EventBatch()
            sink.batch.reserve(rows: Self.batchSize, bytes: arenaSize)
            sink.rejected = []
            bytesRead = 0
        }
        // Batches are cut by record count as lines arrive (a 1 MB gzip chunk inflates to tens of
        // thousands of lines): memory stays at channel capacity × batch size.
        // Blank lines are accounted for, not silently gone: counted, and said in the file's notes.
        var blankLines = 0
        let onLine: (Line) -> Void = { line in
            if line.bytes.allSatisfy({ $0 == 0x20 || $0 == 0x09 || $0 == 0x0D }) { blankLines += 1 }
            self.parser.consume(line, into: &sink)
            if !stopped, sink.eventCount + sink.rejected.count >= Self.batchSize {
                do { try flush(force: true) } catch { stopped = true }
            }
        }
        let onOverlong: (Line, Int) -> Void = { line, length in
            sink.reject(line: line.number, reason: "line of \(length) bytes exceeds the \(limit)-byte limit; its first \(line.count) bytes are kept",
                        raw: line.copyBytes())
        }
        do {
            try file.seek(to: startOffset)
            if isGzip {
                let inflater = GzipInflater()
                try file.forEachChunk { chunk in
                    hasher.update(chunk)
                    bytesRead += Int64(chunk.count)
                    inflater.feed(chunk) { out in splitter.feed(out, line: onLine, overlong: onOverlong) }
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
                try file.forEachChunk { chunk in
                    hasher.update(chunk)
                    bytesRead += Int64(chunk.count)
                    splitter.feed(chunk, line: onLine, overlong: onOverlong)
                    try flush(force: false)
                }
                splitter.finish(line: onLine, overlong: onOverlong)
            }
            parser.finish(into: &sink)
            try flush(force: true)
        } catch is Stop {
            stopped = true
        } catch {
            channel.put(.failed(error))
            return
        }
        if !stopped {
            if blankLines > 0 { notes.append("\(blankLines) blank line\(blankLines == 1 ? "" : "s") (empty or whitespace only), no record in \(blankLines == 1 ? "it" : "them")") }
            channel.put(.finished(lines: splitter.lineNumber - startLine, notes: notes + sink.notes, hasher: hasher))
        }
    }
}
