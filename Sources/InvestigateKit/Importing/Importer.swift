import Foundation

/// One physical line of input, without its terminator (`\n`, and a `\r` before it).
/// The bytes are valid only during the call that receives the line: copy what you keep.
public struct Line {
    public let bytes: UnsafeBufferPointer<UInt8>
    /// 1-based line number in the decompressed source.
    public let number: Int

    public init(bytes: UnsafeBufferPointer<UInt8>, number: Int) {
        self.bytes = bytes
        self.number = number
    }

    public var count: Int { bytes.count }
    /// Starts with `#`: a comment in every format the tool reads (`RecordSink.rejectComment`).
    public var isComment: Bool { bytes.first == 0x23 }
    public var isEmpty: Bool { bytes.isEmpty }

    /// The line as text; invalid UTF-8 becomes U+FFFD (the original bytes stay in `copyBytes()`).
    public var text: String { String(decoding: bytes, as: UTF8.self) }

    public func copyBytes() -> [UInt8] { Array(bytes) }

    /// Runs `body` with a line made from a Swift string (tests, wrappers that unpack an inner message).
    public static func with<R>(_ text: String, number: Int, _ body: (Line) throws -> R) rethrows -> R {
        var utf8 = Array(text.utf8)
        return try utf8.withUnsafeMutableBufferPointer { buffer in
            try body(Line(bytes: UnsafeBufferPointer(buffer), number: number))
        }
    }

    public static func with<R>(bytes: [UInt8], number: Int, _ body: (Line) throws -> R) rethrows -> R {
        try bytes.withUnsafeBufferPointer { try body(Line(bytes: $0, number: number)) }
    }
}

/// What a parser hands back: events, rejected lines, and notes for the user (what was inferred,
/// which zone or year was assumed). The ingest pipeline drains it between batches.
public struct RecordSink {
    /// The records parsed so far, in columns (what the writer stores).
    public var batch = EventBatch()
    public var rejected: [RejectedLine] = []
    public var notes: [String] = []
    /// Lines a parser read as the frame around records, not records: a CSV header row. With the
    /// events' and rejected records' lines and the blank lines, they account for every line.
    public var framingLines = 0

    public init() {}

    public mutating func framing(lines: Int = 1) { framingLines += lines }

    /// The records parsed so far as `Event` values (tests, wrappers that re-map an inner parser's
    /// records); decoded from `batch` on each call.
    public var events: [Event] { batch.events }
    public var eventCount: Int { batch.count }

    /// Adds a record, unless its stamp lies outside `EventTime.accepted`: then the record is kept
    /// as a rejected line saying so (every importer emits through here, so none can store a time
    /// that later arithmetic would overflow on). A wrapped stamp (`altTime`) or a duration beyond
    /// what two accepted stamps can be apart is left out of the record, with a note; its bytes stay
    /// in `raw`.
    ///
    /// `client_ip` and `peer_ip` hold an IP address or nothing: the importers check theirs with
    /// `IPAddressText` and keep other text in `extra` under the field's own name; any other text
    /// that still arrives here is moved to `extra.client_ip_text`/`peer_ip_text`, with a note.
    public mutating func emit(_ event: Event) {
        if let time = event.time, let why = EventTime.rejection(time) {
            return rejected.append(RejectedLine(line: event.line, lineEnd: event.lineEnd, reason: why, raw: event.raw))
        }
        let badClient = event.clientIP.map { !IPAddressText.isAddress($0) } ?? false
        let badPeer = event.peerIP.map { !IPAddressText.isAddress($0) } ?? false
        if badClient || badPeer {
            var kept = event
            if badClient { kept.extra["client_ip_text"] = kept.clientIP; kept.clientIP = nil }
            if badPeer { kept.extra["peer_ip_text"] = kept.peerIP; kept.peerIP = nil }
            note(IPAddressText.note(field: "client and peer", key: "client_ip_text/peer_ip_text"))
            return emit(kept)
        }
        let altOutside = event.altTime.map { !EventTime.accepted.contains($0) } ?? false
        let durationOutside = event.duration.map { $0.magnitude > UInt64(EventTime.maxDuration) } ?? false
        guard altOutside || durationOutside else { return batch.append(event) }
        var kept = event
        if altOutside {
            kept.altTime = nil
            note("second stamps out of range (outside the years \(EventTime.firstYear) to \(EventTime.lastYear) UTC) were left out of their records; the lines keep them")
        }
        if durationOutside {
            kept.duration = nil
            note("durations longer than the accepted years \(EventTime.firstYear) to \(EventTime.lastYear) span were left out of their records; the lines keep them")
        }
        batch.append(kept)
    }

    public mutating func removeAllEvents() { batch.removeAll() }

    public mutating func reject(_ line: Line, _ reason: String) {
        rejected.append(RejectedLine(line: line.number, reason: reason, raw: line.copyBytes()))
    }

    public mutating func reject(line: Int, reason: String, raw: [UInt8]) {
        rejected.append(RejectedLine(line: line, reason: reason, raw: raw))
    }

    /// Rejects a line that starts with `#` with the reason every importer gives such a line,
    /// `comment line (starts with #), not <what>`: annotated excerpts and test fixtures (fail2ban's
    /// `# failJSON: …`), a W3C header. Multi-line formats take a `#` line as the continuation of
    /// an open record instead (a message may hold such a line); every one rejects it otherwise.
    public mutating func rejectComment(_ line: Line, notA what: String) {
        reject(line, "\(Self.commentReasonPrefix), not \(what)")
    }

    /// How every comment line's reason starts: what is a comment, not an unread record.
    public static let commentReasonPrefix = "comment line (starts with #)"

    /// Adds a note once (parsers may discover the same fact on every line).
    public mutating func note(_ text: String) {
        if !notes.contains(text) { notes.append(text) }
    }
}

/// Turns the lines of one source into events. Parsers are stateful (multi-line records, year
/// roll-over) and live for one source.
public protocol RecordParser {
    mutating func consume(_ line: Line, into sink: inout RecordSink)
    /// End of input: flush any buffered record.
    mutating func finish(into sink: inout RecordSink)
}

/// Options the user gives on the command line that parsers may need.
public struct ImportOptions: Sendable, Equatable {
    /// Zone of zone-less timestamps in host logs (`--tz`).
    public var timeZone: ZoneSpec?
    /// Zone of the application's own zone-less timestamps (`--app-tz`).
    public var appTimeZone: ZoneSpec?
    /// Year for year-less syslog stamps (`--year`).
    public var year: Int?
    /// An nginx `log_format` definition (`--nginx-log-format`).
    public var nginxLogFormat: String?
    /// A Python logging format string for app logs (`--app-log-format`).
    public var appLogFormat: String?
    /// The span (µs UTC) a question needs (`--at` ± `--window`): files whose names' time stamps lie
    /// outside it are not read (`WindowPlan`); nil reads everything.
    public var window: ClosedRange<Int64>?
    /// Whether a run moves stored sources whose bytes it finds under a new name (log rotation,
    /// `SourceRelocation`). The ClickHouse store does not yet, and a local store compared with
    /// one keeps first names too.
    public var relocatesRotatedFiles = true

    public init(timeZone: ZoneSpec? = nil, appTimeZone: ZoneSpec? = nil, year: Int? = nil,
                nginxLogFormat: String? = nil, appLogFormat: String? = nil) {
        self.timeZone = timeZone
        self.appTimeZone = appTimeZone
        self.year = year
        self.nginxLogFormat = nginxLogFormat
        self.appLogFormat = appLogFormat
    }
}

/// Facts learnt from files already read in this ingest run, shared with the files after them:
/// the zone an nginx access log shows in `$time_local` tells the zone of the error log beside it.
///
/// Files of one `ingestOrder` may be parsed side by side, so two of them can learn the same fact in
/// either order: the file earlier in the run's reading order (`position`) wins, as it would if they
/// had been read one after the other, and every run teaches the same thing.
public final class IngestHints: @unchecked Sendable {
    private let lock = NSLock()
    private var zonesByDirectory: [String: (zone: ZoneSpec, from: String, position: Int)] = [:]
    private var appZone: (zone: ZoneSpec, from: String, position: Int)?
    private var spans: [DatedSpan] = []

    public init() {}

    public func learnZone(_ zone: ZoneSpec, directory: String, from source: String, position: Int = 0) {
        lock.lock(); defer { lock.unlock() }
        // A named zone (learnt from a daylight-saving switch in the offsets) says more than the
        // fixed offset of a first line, whichever file taught it.
        if let known = zonesByDirectory[directory] {
            let upgrade: Bool
            switch (known.zone, zone) {
            case (.fixed, .named): upgrade = true
            case (.named, .fixed): upgrade = false
            default: upgrade = position < known.position
            }
            guard upgrade else { return }
        }
        zonesByDirectory[directory] = (zone, source, position)
    }

    public func zone(forDirectory directory: String) -> (zone: ZoneSpec, from: String)? {
        lock.lock(); defer { lock.unlock() }
        return zonesByDirectory[directory].map { ($0.zone, $0.from) }
    }

    /// The zone every directory's access log agreed on (nginx's `$time_local` offset), with the
    /// file that taught it first: the server's local time, which an app on the same host writes
    /// its zone-less stamps in. Nil when none was learnt, or when directories disagree (two hosts
    /// or two zones: no one of them can speak for the app).
    public func soleLearntZone() -> (zone: ZoneSpec, from: String)? {
        lock.lock(); defer { lock.unlock() }
        let learnt = zonesByDirectory.values.sorted { $0.position < $1.position }
        guard let first = learnt.first, learnt.allSatisfy({ $0.zone == first.zone }) else {
            // One named zone, with fixed offsets elsewhere that it gives at some time of year
            // (a directory whose files lie before the switch): the named zone speaks for all.
            let named = Set(learnt.compactMap { if case .named(let id) = $0.zone { return id } else { return nil } })
            guard named.count == 1, let id = named.first, let teacher = learnt.first(where: { $0.zone == .named(id) }) else { return nil }
            let zone = ZoneSpec.named(id)
            let offsets = Set([0, 91, 182, 273].map { zone.offset(atUTC: Int64($0) * 86_400_000_000 + 1_735_689_600_000_000) })
            guard learnt.allSatisfy({ if case .fixed(let s) = $0.zone { return offsets.contains(s) } else { return true } }) else { return nil }
            return (zone, teacher.from)
        }
        return (first.zone, first.from)
    }

    /// The application's zone, learnt from a syslog copy of app lines (see the syslog importer).
    public func learnAppZone(_ zone: ZoneSpec, from source: String, position: Int = 0) {
        lock.lock(); defer { lock.unlock() }
        if let known = appZone, known.position <= position { return }
        appZone = (zone, source, position)
    }

    public func learnedAppZone() -> (zone: ZoneSpec, from: String)? {
        lock.lock(); defer { lock.unlock() }
        return appZone.map { ($0.zone, $0.from) }
    }

    /// The time spans of files read so far, with their format: dated records of other layers
    /// tell year-less syslog stamps their year when the file's modification time cannot.
    public func learnSpan(first: Int64, last: Int64, format: String, from source: String) {
        lock.lock(); defer { lock.unlock() }
        spans.append(DatedSpan(first: first, last: last, format: format, source: source))
    }

    public func learnedSpans() -> [DatedSpan] {
        lock.lock(); defer { lock.unlock() }
        return spans
    }

    public struct DatedSpan: Sendable, Equatable {
        public var first: Int64
        public var last: Int64
        public var format: String
        public var source: String
    }
}

/// Everything a parser may know about the source it reads.
public struct ParseContext {
    /// Path as the user gave it (after directory expansion).
    public var path: String
    public var options: ImportOptions
    /// The source's modification time, or the gzip header's MTIME when set: anchors year-less stamps.
    public var referenceTime: Int64?
    public var hints: IngestHints
    /// The importers known to this run, for wrappers (CloudWatch exports) that detect an inner format.
    public var registry: ImporterRegistry
    /// The file's place in the run's reading order: what it teaches `hints` ranks by it.
    public var position: Int

    public init(path: String, options: ImportOptions = ImportOptions(), referenceTime: Int64? = nil,
                hints: IngestHints = IngestHints(), registry: ImporterRegistry = .standard, position: Int = 0) {
        self.path = path
        self.options = options
        self.referenceTime = referenceTime
        self.hints = hints
        self.registry = registry
        self.position = position
    }

    public var directory: String { (path as NSString).deletingLastPathComponent }
    public var fileName: String { (path as NSString).lastPathComponent }
}

/// A sample an importer carries for the registry test and `investigate formats`.
public struct FormatSample: Sendable {
    /// A typical file name for such a log (detection may use it to break ties between identical shapes).
    public var fileName: String
    public var lines: [String]

    public init(fileName: String, lines: [String]) {
        self.fileName = fileName
        self.lines = lines
    }
}

/// A log format: how to recognise it and how to parse it.
///
/// To add a format: write one file in `Importing/Formats/` with a type conforming to this protocol
/// (carrying its samples and vendor documentation link) and add one line to `ImporterRegistry.standard`.
public protocol Importer: Sendable {
    /// Stable identifier users pass to `--format` (e.g. `nginx-access`).
    var id: String { get }
    var title: String { get }
    /// The layer most of its events belong to.
    var layer: Layer { get }
    /// The vendor's documentation of the format.
    var documentation: String { get }
    /// Lines as the vendor writes them; the registry test parses them all.
    var samples: [FormatSample] { get }
    /// Field-by-field description for docs/formats.md.
    var fieldNotes: String { get }
    /// Files read earlier in a run can teach later ones (access logs teach error logs their zone):
    /// lower runs first. Files of one order may be parsed side by side (the next while the one
    /// before is stored), so a format must learn only from formats of a lower order.
    var ingestOrder: Int { get }
    /// Longest physical line this format legitimately writes, when more than the pipeline's default
    /// (4 MiB): Firehose writes a whole object of WAF records without a newline.
    var maxRecordBytes: Int? { get }
    /// Whether a running process appends to files of this format line by line (a server's own log
    /// file), so the unterminated last line of a plain file may be caught mid-write: it is then held
    /// back until a later run finds it finished. False for the formats AWS delivers (to S3,
    /// Firehose or CloudWatch Logs: a file of them is a finished object or an export), whose last
    /// line is read as it is.
    var writtenLive: Bool { get }
    /// How to read a line's stamp without parsing it (`Ingest/LineTimeScan.swift`), when the
    /// format's lines begin with one of the shapes it knows: a question about a window then skips
    /// the records far outside it. nil: every line is parsed. `options` tells whether the user
    /// described a layout of their own (then nothing is assumed).
    func lineTimeScan(_ options: ImportOptions) -> LineTimeScan?
    /// Whether a question about a window stores every record of such a file, not only those near
    /// the window: context the diagnosis reads well before it (a WAF change an hour before a
    /// block, a metric datapoint whose period began a day before, a finding active for days).
    var storedWholeForAWindow: Bool { get }

    /// Share (0…1) of these leading lines that look like this format. `fileName` breaks ties between
    /// formats whose lines are identical in shape (gunicorn's access log is nginx's `combined`).
    func recognize(_ lines: [String], fileName: String) -> Double

    func makeParser(_ context: ParseContext) throws -> any RecordParser
}

extension Importer {
    public var ingestOrder: Int { 50 }
    public var maxRecordBytes: Int? { nil }
    public var writtenLive: Bool { true }
    public var fieldNotes: String { "" }
    public func lineTimeScan(_ options: ImportOptions) -> LineTimeScan? { nil }
    public var storedWholeForAWindow: Bool { false }
}

/// Errors importers raise before parsing starts (a bad `--nginx-log-format`, say).
public struct ImporterError: Error, CustomStringConvertible, Equatable {
    public var description: String
    public init(_ description: String) { self.description = description }
}
