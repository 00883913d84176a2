import Foundation

/// A record head recognised inside a line (a whole line of an app file, or the message of a
/// syslog line): the event it makes and its own stamp, before zone and year are settled.
struct EmbeddedRecord {
    /// Layer, kind, level, message and request fields are set; `time`, `line`, `raw` are not yet.
    var event: Event
    /// The record's own stamp as a wall-clock reading taken as UTC, µs.
    var wallClock: Int64?
    var wallClockText: String?
    /// Seconds east of UTC when the stamp says (gunicorn `%z`, an access log's `+0900`).
    var offset: Int?
    /// Tracebacks may follow (gunicorn error heads, Python heads); access lines stand alone.
    var takesContinuation: Bool

    var utc: Int64? {
        guard let wallClock, let offset else { return nil }
        return wallClock - Int64(offset) * CivilTime.microsPerSecond
    }
}

/// Recognises the heads gunicorn's stderr can carry: gunicorn's own error lines, Flask/Python
/// logging lines, and (when asked) gunicorn access lines.
struct EmbeddedLineParser {
    var pythonFormats: [PythonLogFormat]
    var gunicornHeads = true

    init(pythonFormats: [PythonLogFormat] = PythonLogFormat.builtIn, gunicornHeads: Bool = true) {
        self.pythonFormats = pythonFormats
        self.gunicornHeads = gunicornHeads
    }

    /// - Parameter accessLayer: whose access lines a program writes (gunicorn's, or nginx's own
    ///   `access_log syslog:`), read as that layer's; nil when the program writes none.
    func parse(_ b: UnsafeBufferPointer<UInt8>, accessLines: Bool, accessLayer: Layer = .gunicorn) -> EmbeddedRecord? {
        guard !b.isEmpty else { return nil }
        if gunicornHeads, let head = GunicornErrorHead.parse(b) {
            var event = Event(time: nil, layer: .gunicorn, kind: .log, line: 0, raw: [])
            event.level = head.level
            event.message = head.message
            event.pid = head.pid
            event.extra["local_time"] = head.wallClockText
            GunicornErrorHead.interpret(head.message, into: &event)
            return EmbeddedRecord(event: event, wallClock: head.wallClock, wallClockText: head.wallClockText,
                                  offset: head.offset, takesContinuation: true)
        }
        for format in pythonFormats {
            guard let record = format.match(b) else { continue }
            var event = Event(time: nil, layer: .app, kind: .log, line: 0, raw: [])
            event.level = record.level
            event.message = record.message
            event.pid = record.pid
            if let logger = record.logger { event.extra["logger"] = logger }
            if let module = record.module { event.extra["module"] = module }
            for (k, v) in record.attributes { event.extra[k] = v }
            if let text = record.wallClockText { event.extra["local_time"] = text }
            AppMessage.interpret(record.message, into: &event)
            return EmbeddedRecord(event: event, wallClock: record.wallClock, wallClockText: record.wallClockText,
                                  offset: record.offset, takesContinuation: true)
        }
        if let werkzeug = WerkzeugAccessLine.parse(b) {
            return EmbeddedRecord(event: werkzeug.event, wallClock: werkzeug.wallClock, wallClockText: werkzeug.wallClockText,
                                  offset: nil, takesContinuation: false)
        }
        if accessLayer == .nginx, accessLines, NginxErrorParser.startsWithStamp(b),
           case .success(var event) = NginxErrorParser.parse(Array(b), zone: .utc) {
            // nginx's `error_log syslog:` (or a journal of its stderr): its error-log lines, whose
            // zone-less stamp is the same host's clock as the syslog prefix, which times them.
            event.time = nil
            event.raw = []
            return EmbeddedRecord(event: event, wallClock: nil, wallClockText: nil, offset: nil, takesContinuation: false)
        }
        if accessLines, b.first.map({ $0 != 0x5B && $0 != 0x20 }) ?? false {
            var parser = NginxAccessParser(directory: "", learnZone: nil)
            var sink = RecordSink()
            Line.with(bytes: Array(b), number: 0) { parser.consume($0, into: &sink) }
            if sink.rejected.isEmpty, sink.eventCount > 0, case var event = sink.batch.event(at: 0), let utc = event.time {
                event.layer = accessLayer
                event.time = nil
                event.raw = []
                // The line itself is its message, so a syslog copy pairs with the access file's record.
                event.message = ByteScanner.string(b)
                // The access line's own stamp: kept with its offset so the record compares like the others.
                return EmbeddedRecord(event: event, wallClock: utc, wallClockText: nil, offset: 0, takesContinuation: false)
            }
        }
        return nil
    }
}

/// The most bytes one multi-line record may hold: a head followed by endless non-head lines must
/// not take the memory; further lines are rejected with this reason.
let maxRecordBytes = 1 << 20

/// Lines that cannot belong to a text log: control bytes other than tab and ESC (colour codes).
func looksBinary(_ b: UnsafeBufferPointer<UInt8>) -> Bool {
    for c in b where (c < 0x20 && c != 0x09 && c != 0x1B) || c == 0x7F { return true }
    return false
}

/// The exception a traceback ends with (`NameError: …`): its last line that is not indented.
func tracebackSummary(_ lines: [String]) -> String? {
    guard lines.contains(where: { $0.hasPrefix("Traceback (most recent call last)") }) else { return nil }
    return lines.last { !$0.isEmpty && $0.first != " " && $0.first != "\t" && !$0.hasPrefix("Traceback") }
}

/// How a stored file's zone-less app stamps were read, from its note: a file already stored is not
/// read again, so a later `--app-tz` does not change it, and the user must be told.
public enum AppZoneReading {
    /// Between the count and the words of `appZone`'s note.
    static let marker = " records' stamps without zone: "

    /// The zone the note says the stamps were read in ("UTC+09:00", "UTC", "Asia/Tokyo").
    public static func zone(inNotes notes: [String]) -> String? {
        for note in notes {
            guard let m = note.range(of: marker) else { continue }
            let words = note[m.upperBound...]
            for lead in ["read as ", "read in this machine's zone ("] where words.hasPrefix(lead) {
                let rest = words.dropFirst(lead.count)
                return String(rest.prefix { $0 != " " && $0 != "," && $0 != ")" })
            }
        }
        return nil
    }
}

/// The zone for an app's zone-less stamps: `--app-tz`, else the one learnt from a syslog copy of
/// its lines, else the offset the run's nginx access logs write (the server's local time: nginx
/// and the app behind it share a host as a rule, and the investigator's machine is no guide to the
/// server's clock), else this machine's; with the words that say which.
func appZone(_ context: ParseContext) -> (zone: ZoneSpec, note: String) {
    if let given = context.options.appTimeZone {
        return (given, "read as \(given) (--app-tz)")
    }
    if let learnt = context.hints.learnedAppZone() {
        return (learnt.zone, "read as \(learnt.zone), the app zone learnt from the syslog copy of the app's lines in \(learnt.from)")
    }
    if let host = context.hints.soleLearntZone() {
        return (host.zone, "read as \(host.zone), the \(host.zone.isNamed ? "zone whose daylight-saving switch the offsets" : "offset") nginx writes in \(host.from)\(host.zone.isNamed ? " follow" : "") (the server's local time; no --app-tz, and no syslog copy of the app's lines taught one): give --app-tz if the app runs in another zone")
    }
    let system = ZoneSpec.system
    return (system, "read in this machine's zone (\(system)): no --app-tz, no syslog copy of the app's lines, and no offset that every nginx access log of the run agrees on")
}

/// Reads files of Python heads with continuation lines (app logs, gunicorn error logs, which may
/// interleave both, as gunicorn's stderr does): a head opens a record, any other line belongs to
/// the record above it.
struct PythonStreamParser: RecordParser {
    let heads: EmbeddedLineParser
    /// Zone of stamps that carry none (Python's `asctime`).
    let zone: ZoneSpec
    /// Says where `zone` came from; noted once a stamp needed it.
    let zoneNote: String
    private var zonelessStamps = 0
    private var open: (record: EmbeddedRecord, line: Int, lineEnd: Int, raw: [UInt8], continuation: [String])?
    private var orphans = 0
    private var binary = 0
    private var unknownLayouts = 0
    /// The last head was rejected: its continuation lines are its, not the record before.
    private var continuesRejected = false
    private var firstUnknownLayout: Int?

    init(heads: EmbeddedLineParser, zone: ZoneSpec, zoneNote: String) {
        self.heads = heads
        self.zone = zone
        self.zoneNote = zoneNote
    }

    mutating func consume(_ line: Line, into sink: inout RecordSink) {
        if line.isEmpty { return }
        if let record = heads.parse(line.bytes, accessLines: false) {
            flush(into: &sink)
            continuesRejected = false
            open = (record, line.number, line.number, line.copyBytes(), [])
            return
        }
        if let record = Self.stampedLine(line.bytes) {
            // A line opening with a date and time is a record of its own even when no known layout
            // matches the rest: folded into the record above it would vanish from the timeline.
            flush(into: &sink)
            continuesRejected = false
            unknownLayouts += 1
            if firstUnknownLayout == nil { firstUnknownLayout = line.number }
            open = (record, line.number, line.number, line.copyBytes(), [])
            return
        }
        if Self.hasStampShape(line.bytes) {
            // Shaped like a stamped record but no valid date or time (Feb 30, hour 25): a record
            // whose time is unknown, not a continuation of the record above.
            flush(into: &sink)
            continuesRejected = true
            return sink.reject(line, "the line opens with an impossible date or time")
        }
        if continuesRejected, !looksBinary(line.bytes) {
            return sink.reject(line, "continuation of a rejected line above (a record with an impossible date or time)")
        }
        if looksBinary(line.bytes) {
            binary += 1
            return sink.reject(line, "binary data, not log text")
        }
        if open == nil, line.isComment { return sink.rejectComment(line, notA: "a gunicorn or Python log record") }
        guard open != nil else {
            orphans += 1
            return sink.reject(line, "no record head before this line (the file starts mid-record)")
        }
        if (open?.raw.count ?? 0) + line.count > maxRecordBytes {
            return sink.reject(line, "continuation line beyond the \(maxRecordBytes)-byte limit of one record")
        }
        open?.lineEnd = line.number
        open?.raw.append(0x0A)
        open?.raw.append(contentsOf: line.bytes)
        open?.continuation.append(line.text)
    }

    mutating func finish(into sink: inout RecordSink) {
        flush(into: &sink)
        if zonelessStamps > 0 { sink.note("\(zonelessStamps)\(AppZoneReading.marker)\(zoneNote)") }
        if orphans > 0 { sink.note("\(orphans) leading lines belong to a record that started before the file: kept as rejected lines") }
        if binary > 0 { sink.note("\(binary) lines of binary data kept as rejected lines") }
        if unknownLayouts > 0 {
            sink.note("\(unknownLayouts) lines open with a date and time but match no known layout (first at line \(firstUnknownLayout ?? 0)): each is a record of its own with its time, the level word right after the stamp if there is one, and the rest as its message; give --app-log-format for their other fields")
        }
    }

    /// `YYYY-MM-DD HH:MM:SS` or `YYYY/MM/DD HH:MM:SS` by its digits and separators alone, at the
    /// start or after `[`.
    static func hasStampShape(_ b: UnsafeBufferPointer<UInt8>) -> Bool {
        let o = b.first == 0x5B ? 1 : 0
        guard b.count >= o + 19 else { return false }
        func digit(_ i: Int) -> Bool { b[o + i] >= 0x30 && b[o + i] <= 0x39 }
        let dateSep = b[o + 4]
        return (dateSep == 0x2D || dateSep == 0x2F) && b[o + 7] == dateSep && (b[o + 10] == 0x20 || b[o + 10] == 0x54)
            && b[o + 13] == 0x3A && b[o + 16] == 0x3A
            && [0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18].allSatisfy(digit)
    }

    /// A line opening with `YYYY-MM-DD HH:MM:SS` (ISO `T`, a fraction, a zone; or in brackets):
    /// the time, a level word right after it, the rest as the message. Traceback and continuation
    /// lines never open with a date.
    static func stampedLine(_ b: UnsafeBufferPointer<UInt8>) -> EmbeddedRecord? {
        let start = b.first == 0x5B ? 1 : 0
        guard b.count >= start + 19, let (wall, length, offset) = PythonLogFormat.asctimeZoned(b, at: start) else { return nil }
        var pos = start + length
        if start == 1 {
            guard pos < b.count, b[pos] == 0x5D else { return nil }
            pos += 1
        }
        let rest = ByteScanner.string(UnsafeBufferPointer(rebasing: b[pos...])).trimmingCharacters(in: .whitespaces)
        var event = Event(time: nil, layer: .app, kind: .log, line: 0, raw: [])
        var message = Substring(rest)
        let word = message.prefix { $0 != " " }
        let bare = word.trimmingCharacters(in: CharacterSet(charactersIn: "[]:-"))
        if PythonLogFormat.levels.contains(bare) {
            event.level = bare == "WARN" ? "WARNING" : bare
            message = message.dropFirst(word.count).drop { $0 == " " || $0 == "-" || $0 == ":" }
        }
        event.message = String(message)
        AppMessage.interpret(event.message ?? "", into: &event)
        return EmbeddedRecord(event: event, wallClock: wall, wallClockText: String(decoding: UnsafeBufferPointer(rebasing: b[start..<(start + length)]), as: UTF8.self),
                              offset: offset, takesContinuation: true)
    }

    private mutating func flush(into sink: inout RecordSink) {
        guard let o = open else { return }
        open = nil
        var event = o.record.event
        event.line = o.line
        event.lineEnd = o.lineEnd
        event.raw = o.raw
        if let utc = o.record.utc {
            event.time = utc
        } else if let wall = o.record.wallClock {
            event.time = zone.utc(fromLocal: wall)
            zonelessStamps += 1
        }
        if let summary = tracebackSummary(o.continuation) {
            event.error = summary
            if event.level == nil { event.level = "ERROR" }
        }
        sink.emit(event)
    }
}
