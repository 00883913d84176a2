import Foundation

/// Machinery the CloudWatch Logs wrappers share: the messages they unpack are themselves lines of
/// some format (Lambda, API Gateway execution, WAF JSON, nginx…), detected and parsed by the
/// registry's importers as if they were a file of their own.

/// One message a CloudWatch wrapper unpacked, with the wrapper's stamp and where it sits in the source.
struct WrappedMessage {
    var text: String
    /// The wrapper's timestamp (CloudWatch's event time), µs UTC.
    var time: Int64?
    var line: Int
    var lineEnd: Int
    /// The wrapper record's original bytes (the export line, the JSON event object).
    var raw: [UInt8]
    var logGroup: String?
    var logStream: String?
    /// A line without its own stamp: it continues the message before it (a traceback, pretty JSON).
    var continuation = false
    /// Fields of the wrapper worth keeping on the inner event (Logs Insights columns, ingestion time).
    var extra: [String: String] = [:]
}

/// Detects the format of the wrapped messages from the first ones and feeds every message's lines
/// to that format's parser. Inner lines are numbered by an ordinal so each inner event can be
/// mapped back to the wrapper's line numbers, stamp and original bytes.
///
/// When no format is recognised the messages are kept as plain log events (layer guessed from the
/// log group, stream or path; `system` otherwise) rather than rejected: the text and CloudWatch's
/// time are still evidence, and a format added later can re-read the file.
struct InnerFormatRouter {
    let context: ParseContext
    let wrapperID: String

    private struct Origin {
        var line: Int
        var lineEnd: Int
        var record: Int
        var time: Int64?
        var group: String?
        var stream: String?
        var extra: [String: String]
    }

    private var buffered: [WrappedMessage] = []
    private var bufferedLines = 0
    private var decided = false
    private var innerParser: (any RecordParser)?
    private var innerID = ""
    private var genericLayer: Layer?
    private var pendingGeneric: Event?

    private var origins: [Int: Origin] = [:]
    private var raws: [Int: [UInt8]] = [:]
    private var nextOrdinal = 1
    private var record = 0
    private var lastTime: Int64?

    /// How many inner lines detection looks at (as the ingest pipeline does for files).
    static let detectionLines = Ingester.detectionSampleLines
    /// Ordinals kept for mapping back; older ones are dropped on very long streams.
    static let keptOrigins = 200_000

    init(context: ParseContext, wrapperID: String) {
        self.context = context
        self.wrapperID = wrapperID
    }

    mutating func add(_ message: WrappedMessage, into sink: inout RecordSink) {
        if decided { return process(message, into: &sink) }
        buffered.append(message)
        bufferedLines += Self.pieces(message.text).filter { !$0.isEmpty }.count
        if bufferedLines >= Self.detectionLines { decide(into: &sink) }
    }

    mutating func finish(into sink: inout RecordSink) {
        if !decided { decide(into: &sink) }
        if innerParser != nil {
            var inner = RecordSink()
            innerParser?.finish(into: &inner)
            remap(inner, into: &sink)
        }
        flushGeneric(into: &sink)
    }

    /// A message's lines: split on newlines, without the newline CloudWatch keeps at the end.
    static func pieces(_ text: String) -> [Substring] {
        var parts = text.split(separator: "\n", omittingEmptySubsequences: false)
        if parts.count > 1, parts.last?.isEmpty == true { parts.removeLast() }
        return parts.map { $0.last == "\r" ? $0.dropLast() : $0 }
    }

    private mutating func decide(into sink: inout RecordSink) {
        decided = true
        var sample: [String] = []
        for m in buffered {
            for p in Self.pieces(m.text) where !p.trimmingCharacters(in: .whitespaces).isEmpty {
                if sample.count < Self.detectionLines { sample.append(String(p)) }
            }
        }
        let names = [buffered.first?.logGroup, buffered.first?.logStream, context.path]
        let hint = AWSLogGroupHint.layer(names)
        let candidates = ImporterRegistry(context.registry.importers.filter { !$0.id.hasPrefix("cloudwatch-") })
        let hintName = buffered.first?.logGroup.map { ($0 as NSString).lastPathComponent } ?? context.fileName
        let detection = candidates.detect(sample, fileName: hintName)
        var chosen = detection.importer
        // Identical shapes (API Gateway's CLF is nginx's combined) are told apart by the log group.
        if let best = chosen, let hint, best.layer != hint {
            let bestScore = detection.scores.first { $0.id == best.id }?.score ?? 0
            let tied = detection.scores.filter { $0.score >= bestScore }.map(\.id)
            if let preferred = candidates.importers.first(where: { tied.contains($0.id) && $0.layer == hint }) { chosen = preferred }
        }
        // A Lambda stream full of print() output scores low as Lambda; the log group still says what it is.
        if chosen == nil, let hint {
            let partial = detection.scores.filter { $0.score > 0 }.sorted { $0.score > $1.score }
            chosen = partial.lazy.compactMap { s in candidates.importers.first { $0.id == s.id && $0.layer == hint } }.first
        }
        if let importer = chosen {
            do {
                innerParser = try importer.makeParser(context)
                innerID = importer.id
                sink.note("\(wrapperID): messages read as \(importer.id)")
            } catch {
                sink.note("\(wrapperID): inner format \(importer.id) cannot be read (\(error)); messages kept as plain log events")
            }
        }
        if innerParser == nil {
            genericLayer = hint ?? .system
            if chosen == nil, !sample.isEmpty {
                sink.note("\(wrapperID): inner format not recognised; messages kept as plain \(genericLayer?.rawValue ?? "system") log events")
            }
        }
        let pending = buffered
        buffered = []
        for m in pending { process(m, into: &sink) }
    }

    private mutating func process(_ m: WrappedMessage, into sink: inout RecordSink) {
        if m.continuation, record > 0 {
            raws[record, default: []].append(0x0A)
            raws[record, default: []].append(contentsOf: m.raw)
        } else {
            record += 1
            raws[record] = m.raw
            if let t = m.time { lastTime = t }
        }
        let time = m.continuation ? (m.time ?? lastTime) : m.time
        // An event whose message is empty holds no record; counted and said, not passed to an
        // inner parser that would skip it without a trace.
        if m.text.allSatisfy({ $0 == " " || $0 == "\t" || $0 == "\n" || $0 == "\r" }) {
            sink.framing(lines: max(1, m.lineEnd - m.line + 1))
            sink.note("events with an empty message hold no record")
            return
        }
        if let layer = genericLayer {
            return generic(m, layer: layer, time: time, into: &sink)
        }
        var inner = RecordSink()
        for piece in Self.pieces(m.text) {
            let ordinal = nextOrdinal
            nextOrdinal += 1
            origins[ordinal] = Origin(line: m.line, lineEnd: m.lineEnd, record: record, time: time,
                                      group: m.logGroup, stream: m.logStream, extra: m.extra)
            Line.with(String(piece), number: ordinal) { line in
                innerParser?.consume(line, into: &inner)
            }
        }
        remap(inner, into: &sink)
        prune()
    }

    private mutating func remap(_ inner: RecordSink, into sink: inout RecordSink) {
        for note in inner.notes { sink.note("\(innerID) (inside \(wrapperID)): \(note)") }
        for e in inner.events {
            guard let first = origins[e.line] else { sink.emit(e); continue }
            let last = origins[e.lineEnd] ?? first
            var out = e
            out.line = first.line
            out.lineEnd = max(first.lineEnd, last.lineEnd, first.line)
            if out.time == nil { out.time = first.time } else if let t = first.time, t != out.time { out.altTime = t }
            // The wrapper's original bytes when the inner record is a contiguous run of messages;
            // a record gathered from interleaved lines (API Gateway execution) keeps its own lines.
            let span = e.lineEnd - e.line + 1
            let innerLines = e.raw.reduce(1) { $0 + ($1 == 0x0A ? 1 : 0) }
            if span == innerLines, last.record - first.record < 256 {
                var joined: [UInt8] = []
                for r in first.record...last.record {
                    guard let bytes = raws[r] else { continue }
                    if !joined.isEmpty { joined.append(0x0A) }
                    joined.append(contentsOf: bytes)
                }
                if !joined.isEmpty { out.raw = joined }
            }
            if let g = first.group, out.extra["log_group"] == nil { out.extra["log_group"] = g }
            if let s = first.stream, out.extra["log_stream"] == nil { out.extra["log_stream"] = s }
            for (k, v) in first.extra where out.extra[k] == nil { out.extra[k] = v }
            out.extra["inner_format"] = innerID
            sink.emit(out)
        }
        for r in inner.rejected {
            guard let origin = origins[r.line] else { sink.reject(line: r.line, reason: "\(innerID): \(r.reason)", raw: r.raw); continue }
            // A rejected inner record may span several messages (a traceback): it covers the
            // wrapper's lines of all of them, with their original bytes, as an event would.
            let last = origins[r.lineEnd] ?? origin
            var joined: [UInt8] = []
            if last.record - origin.record < 256 {
                for record in origin.record...max(origin.record, last.record) {
                    guard let bytes = raws[record] else { continue }
                    if !joined.isEmpty { joined.append(0x0A) }
                    joined.append(contentsOf: bytes)
                }
            }
            sink.rejected.append(RejectedLine(line: origin.line, lineEnd: max(origin.lineEnd, last.lineEnd),
                                              reason: "\(innerID) (inside \(wrapperID)): \(r.reason)", raw: joined.isEmpty ? r.raw : joined))
        }
    }

    private mutating func generic(_ m: WrappedMessage, layer: Layer, time: Int64?, into sink: inout RecordSink) {
        if m.continuation, var p = pendingGeneric {
            p.lineEnd = max(p.lineEnd, m.lineEnd)
            p.raw.append(0x0A)
            p.raw.append(contentsOf: m.raw)
            p.message = (p.message ?? "") + "\n" + m.text
            pendingGeneric = p
            return
        }
        flushGeneric(into: &sink)
        var e = Event(time: time, layer: layer, kind: .log, line: m.line, lineEnd: m.lineEnd, raw: m.raw)
        var text = m.text
        if text.hasSuffix("\n") { text.removeLast() }
        e.message = text
        e.extra = m.extra
        e.extra["inner_format"] = "unrecognised"
        if let g = m.logGroup { e.extra["log_group"] = g }
        if let s = m.logStream { e.extra["log_stream"] = s }
        pendingGeneric = e
    }

    private mutating func flushGeneric(into sink: inout RecordSink) {
        if let e = pendingGeneric { sink.emit(e) }
        pendingGeneric = nil
    }

    private mutating func prune() {
        guard origins.count > Self.keptOrigins + Self.keptOrigins / 2 else { return }
        let floor = nextOrdinal - Self.keptOrigins
        let oldestRecord = origins[floor]?.record ?? 0
        origins = origins.filter { $0.key >= floor }
        raws = raws.filter { $0.key >= oldestRecord }
    }
}

/// A whole JSON document (CLI output, possibly pretty-printed, several pages back to back) held
/// in memory up to a bound, with the line number of every byte offset.
struct JSONDocumentBuffer {
    static let limit = 256 << 20
    private(set) var bytes: [UInt8] = []
    private var lineStarts: [Int] = []
    private var lineNumbers: [Int] = []
    private var overflowed = false

    mutating func append(_ line: Line, into sink: inout RecordSink) {
        guard !overflowed, bytes.count + line.count + 1 <= Self.limit else {
            overflowed = true
            sink.reject(line, "JSON document exceeds the \(Self.limit >> 20) MB this importer holds in memory; the rest is not parsed")
            return
        }
        lineStarts.append(bytes.count)
        lineNumbers.append(line.number)
        bytes.append(contentsOf: line.bytes)
        bytes.append(0x0A)
    }

    var isEmpty: Bool { bytes.isEmpty }

    /// The source line holding the byte at `offset`.
    func line(at offset: Int) -> Int {
        var lo = 0, hi = lineStarts.count - 1
        guard hi >= 0 else { return 1 }
        while lo < hi {
            let mid = (lo + hi + 1) / 2
            if lineStarts[mid] <= offset { lo = mid } else { hi = mid - 1 }
        }
        return lineNumbers[lo]
    }

    /// The bytes of a range without the newline the buffer added after the last line.
    func slice(_ r: Range<Int>) -> [UInt8] {
        let lower = min(max(0, r.lowerBound), bytes.count)
        var end = max(lower, min(r.upperBound, bytes.count))
        while end > lower, bytes[end - 1] == 0x0A { end -= 1 }
        return Array(bytes[lower..<end])
    }

    func lineRange(_ r: Range<Int>) -> (Int, Int) {
        (line(at: r.lowerBound), line(at: max(r.lowerBound, r.upperBound - 1)))
    }

    /// Rejects the bytes of a range with the source lines it really spans. A `#` line inside the
    /// document is rejected on its own and never enters the buffer, so the range's newlines alone
    /// would end the rejected record before its last line, which then belonged to nothing.
    func reject(_ r: Range<Int>, _ reason: String, into sink: inout RecordSink) {
        let (first, last) = lineRange(r)
        sink.rejected.append(RejectedLine(line: first, lineEnd: max(first, last), reason: reason, raw: slice(r)))
    }

    /// Accounts for the lines of a top-level value that no record covers: the document's frame
    /// (brackets, `"events": [`, `"nextToken": "…",`) is counted as framing; any other text there is
    /// kept as rejected with the reason, so a damaged document loses no line in silence.
    func accountOutside(_ records: [Range<Int>], in value: Range<Int>, into sink: inout RecordSink) {
        let (first, last) = lineRange(value)
        guard first <= last else { return }
        var covered = Set<Int>()
        for r in records {
            let (a, b) = lineRange(r)
            if a <= b { covered.formUnion(a...b) }
        }
        for (index, number) in lineNumbers.enumerated() where number >= first && number <= last && !covered.contains(number) {
            let start = lineStarts[index]
            let end = index + 1 < lineStarts.count ? lineStarts[index + 1] - 1 : bytes.count
            var stop = max(start, end)
            while stop > start, bytes[stop - 1] == 0x0A { stop -= 1 }
            let text = Array(bytes[start..<stop])
            if JSONFraming.isFrame(text) { sink.framing() } else {
                sink.reject(line: number, reason: "text in the JSON document outside any log record, and not JSON framing", raw: text)
            }
        }
    }
}

/// The lines that frame records in a pretty-printed JSON document: brackets, and page metadata of
/// keys and scalars (`"events": [`, `"nextForwardToken": "f/1", "nextBackwardToken": "b/1"`). A line
/// that names a record's own fields (`"message"`, `"field"`) outside any record is debris of a
/// damaged record, not frame.
enum JSONFraming {
    private static let strings = try! NSRegularExpression(pattern: #""(?:[^"\\]|\\.)*""#)
    private static let scalars = try! NSRegularExpression(pattern: #"-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?|\btrue\b|\bfalse\b|\bnull\b"#)
    static let recordKeys = ["\"message\"", "\"@message\"", "\"field\""]

    static func isFrame(_ bytes: [UInt8]) -> Bool {
        let text = String(decoding: bytes, as: UTF8.self)
        if recordKeys.contains(where: text.contains) { return false }
        var rest = strings.stringByReplacingMatches(in: text, range: NSRange(text.startIndex..., in: text), withTemplate: "S")
        rest = scalars.stringByReplacingMatches(in: rest, range: NSRange(rest.startIndex..., in: rest), withTemplate: "S")
        return rest.allSatisfy { "[]{},:S \t\r\n".contains($0) }
    }
}
