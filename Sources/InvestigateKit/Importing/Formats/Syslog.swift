import Foundation

/// Syslog files and journal output: `/var/log/syslog`, `messages`, `auth.log`, `journalctl` text.
/// Each line's message is read again by what wrote it: gunicorn error and access lines and the
/// app's Flask/Python lines become events of those layers, with both stamps kept.
public struct SyslogImporter: Importer {
    public init() {}

    public let id = "syslog"
    public let title = "syslog (RFC 3164, rsyslog ISO, RFC 5424, journalctl short/short-iso/short-precise/short-full)"
    public let layer = Layer.system
    public let documentation = "https://www.rsyslog.com/doc/reference/templates/templates-reserved-names.html"
    /// Before app files (60): its copy of the app's lines teaches them the app's zone.
    public let ingestOrder = 30

    public let samples = [
        FormatSample(fileName: "syslog", lines: [
            "Feb  6 05:32:45 ip-10-1-1-50 gunicorn[2156944]: INFO 2025-02-06 14:32:45,136 [app] Request: GET http://example.com:443/api/ping",
            "Feb  6 05:32:45 ip-10-1-1-50 gunicorn[2156944]: INFO 2025-02-06 14:32:45,159 [app] Response: 400 http://example.com:443/api/ping",
            "Feb  6 05:32:46 ip-10-1-1-50 gunicorn[2156944]: [2025-02-06 14:32:46 +0900] [2156944] [CRITICAL] WORKER TIMEOUT (pid:2156950)",
            "Feb  6 05:33:10 ip-10-1-1-50 systemd[1]: Stopped gunicorn.service - gunicorn daemon.",
            "Feb  6 05:40:01 ip-10-1-1-50 CRON[2157001]: (root) CMD (command -v debian-sa1 > /dev/null && debian-sa1 1 1)",
            "Jun 21 16:47:48 digital-mlhhyiqscv sshd[13709]: error: PAM: Authentication failure for myhlj1374 from 192.030.0.6",
        ]),
        FormatSample(fileName: "messages", lines: [
            "2025-02-06T05:32:45.123456+00:00 host gunicorn[2156944]: [2025-02-06 14:32:45 +0900] [1234] [CRITICAL] WORKER TIMEOUT (pid:5678)",
            "2015-04-16T18:02:50.568798+00:00 host sshd[2716]: Connection closed by 192.0.2.112 [preauth]",
        ]),
        FormatSample(fileName: "journal.txt", lines: [
            "Feb 24 08:32:39 mymachine gunicorn[8647]: [2020-02-24 08:32:39 +0000] [8647] [INFO] Starting gunicorn 20.0.4",
            "Jul 05 09:13:44 webapps wsgi.sh[3129704]: [2024-07-05 09:13:44 +0200] [3129704] [CRITICAL] WORKER TIMEOUT (pid:3129714)",
            "Jul 05 09:13:44 webapps wsgi.sh[3129704]: [2024-07-05 09:13:44 +0200] [3129704] [ERROR] Worker (pid:3129714) exited with code 1",
        ]),
        FormatSample(fileName: "remote.log", lines: [
            #"<38>1 2019-07-08T17:40:16.954167-04:00 hostname.example.com sshd 57915 - - Failed unknown for invalid user redmond from 192.0.2.1 port 59197 ssh2"#,
            #"<38>1 2019-07-08T17:40:17.954167-04:00 hostname.example.com sshd 55555 - [timeQuality tzKnown="1" isSynced="0"][xxx@123 test="[brackets]"] Failed unknown for invalid user redmond from 192.0.2.2 port 55555 ssh2"#,
        ]),
    ]

    public let fieldNotes = """
        Prefix: the stamp → `time` (RFC 3164 has no year and no zone: the year comes from `--year` (the year of the first stamps), else the \
        file's modification time or gzip MTIME anchoring the latest stamp read, corrected by embedded dated \
        records or by dated files of other layers read earlier in the run that hold most of its records, \
        with December→January roll-over inside the file; a `Feb 29` in a year so inferred that has none is kept with no `time` and \
        `extra.time_problem`, never moved to 1 March; the zone is `--tz`, else the offset that at least three gunicorn stamps embedded in the lines \
        (which carry their own) agree the prefixes are off by, to the quarter hour (a journal exported in local time), else UTC; notes say \
        which); host → `hostname`; tag `prog[pid]:` → `program`, `pid`; the text after the tag → `message`; \
        PRI → `level` (severity) and `extra.facility`; RFC 5424 MSGID and structured data → `extra.msgid`, \
        `extra.structured_data`. `last message repeated N times` → an event of the repeated record's layer \
        with `extra.repeats` and `extra.repeated_line`; rsyslog's `message repeated N times: [ … ]` → \
        `extra.repeated`. Lines starting with a tab or space continue the record above (`raw`, `message`). \
        Messages are parsed again: gunicorn error heads and (from a gunicorn program) access lines → layer \
        `gunicorn`; access lines from an `nginx` program (`access_log syslog:`, a journal) → layer `nginx`, kind \
        `access` (beside nginx's own file, each is marked a copy of the file's record with the same time, path and status), and its error-log lines \
        (`error_log syslog:`) → layer `nginx`, kind `log`, fields as in `nginx-error`, timed by the prefix (a copy beside nginx's error.log when time, path and message agree); Flask/Python logging heads → layer `app` (fields as in `flask`); their own stamp → `time` \
        and the prefix → `alt_time`. An app stamp without zone is converted with the offset estimated from \
        the prefix (median over the first records, rounded to 15 minutes, reported in a note and taught to \
        app files read later); a gunicorn stamp's offset is its own. Later lines of the same `prog[pid]` that \
        are not heads (traceback lines) join the record; rsyslog's `#012` escapes are split the same way. \
        Werkzeug dev-server request lines → layer `app`, kind `access` (fields as in `flask`). \
        systemd lines about the gunicorn service → layer `gunicorn` with `extra.systemd` = `started`, \
        `stopped`, `killed` or `failed`. Other programs (sshd, cron, kernel) → layer `system`.
        """

    public func recognize(_ lines: [String], fileName: String) -> Double {
        var ok = 0, counted = 0
        for line in lines {
            // Comments (test fixtures) and indented continuation lines neither count for nor against.
            if line.hasPrefix("#") || line.first == " " || line.first == "\t" { continue }
            counted += 1
            if Line.with(line, number: 1, { SyslogPrefix.parse($0.bytes) }) != nil { ok += 1 }
        }
        return counted == 0 ? 0 : Double(ok) / Double(counted)
    }

    public func makeParser(_ context: ParseContext) throws -> any RecordParser {
        var formats = PythonLogFormat.builtIn
        if let definition = context.options.appLogFormat { formats.insert(try PythonLogFormat(definition), at: 0) }
        if let year = context.options.year, !(EventTime.firstYear...EventTime.lastYear).contains(year) {
            throw ImporterError("year \(year) is outside the accepted years \(EventTime.firstYear) to \(EventTime.lastYear)")
        }
        return SyslogParser(context: context, embedded: EmbeddedLineParser(pythonFormats: formats))
    }
}

/// Parses syslog lines, holding records back until the year and the app's clock offset are known.
struct SyslogParser: RecordParser {
    private struct Pending {
        var event: Event
        var stamp: SyslogPrefix.Stamp
        var yearDelta: Int
        var embedded: EmbeddedRecord?
        var continuation: [String] = []
        /// Later lines of the same program and pid that are not heads belong to this record.
        var takesContinuation: Bool
    }

    /// The zone of zone-less prefixes: --tz, else the offset of gunicorn stamps embedded in
    /// the lines (`settle`), else UTC.
    private var hostZone: ZoneSpec
    private let hostZoneGiven: Bool
    private let yearOption: Int?
    private let referenceTime: Int64?
    private let appZoneOption: ZoneSpec?
    private let hints: IngestHints
    private let path: String
    private let position: Int
    private let embedded: EmbeddedLineParser
    private var impossibleLeapDays = 0

    private var open: Pending?
    private var pending: [Pending] = []
    private var settled = false
    private var baseYear = 1970
    private var appOffset: Int?
    private var appSamples: [Int] = []
    private var zonedSamples: [Int] = []
    /// The year the first dated embedded record implies for year delta 0.
    private var embeddedBaseYear: Int?

    // Year roll-over bookkeeping for year-less stamps.
    private var yearDelta = 0
    private var lastYearlessKey: Int64?
    private var latestYearless: (month: Int, day: Int, micros: Int64, delta: Int)?
    private var lastFull: Int64?
    private var sawZoneless = false

    // Counts for the notes.
    private var rollovers: [Int] = []
    private var outOfOrder = 0
    private var firstOutOfOrder: Int?
    private var continuationLines = 0
    private var orphanLines = 0
    private var comments = 0
    private var untagged = 0
    private var repeats = 0
    private var headlessTracebacks = 0
    private var oversized = 0
    private var lastTime: Int64?

    /// Records held back while the year and the app offset are still open, at most.
    static let settleAfter = 5000
    /// Embedded app stamps whose median gives the app offset.
    static let offsetSamples = 25
    /// Embedded zoned stamps needed before their offset names the host zone.
    static let hostZoneSamples = 3

    init(context: ParseContext, embedded: EmbeddedLineParser) {
        hostZone = context.options.timeZone ?? .utc
        hostZoneGiven = context.options.timeZone != nil
        yearOption = context.options.year
        referenceTime = context.referenceTime
        appZoneOption = context.options.appTimeZone
        hints = context.hints
        path = context.path
        position = context.position
        self.embedded = embedded
    }

    // MARK: - Lines

    mutating func consume(_ line: Line, into sink: inout RecordSink) {
        if line.isEmpty { return }
        let b = line.bytes
        if b[0] == 0x09 || b[0] == 0x20 {
            guard open != nil else {
                orphanLines += 1
                return sink.reject(line, "indented continuation line with no syslog record before it")
            }
            appendContinuation(line, text: line.text.trimmingCharacters(in: .whitespaces), physical: true, into: &sink)
            return
        }
        guard let prefix = SyslogPrefix.parse(b) else {
            if b[0] == 0x23 {
                comments += 1
                return sink.rejectComment(line, notA: "a syslog record")
            }
            if b.count >= 3, b[0] == 0x2D, b[1] == 0x2D, b[2] == 0x20 {
                return sink.reject(line, "journalctl marker line (boot or range notice), not a record")
            }
            if looksBinary(b) { return sink.reject(line, "binary data, not a syslog line") }
            return sink.reject(line, "no syslog timestamp and host at the start of the line")
        }
        let delta = trackYear(prefix.stamp, line: line.number)
        let messageBytes = UnsafeBufferPointer(rebasing: b[min(prefix.messageStart, b.count)...])

        if let n = prefix.repeated {
            repeats += 1
            var event = Event(time: nil, layer: open?.event.layer ?? .system, kind: .log, line: line.number, raw: line.copyBytes())
            event.hostname = prefix.hostname ?? open?.event.hostname
            event.program = open?.event.program
            event.pid = open?.event.pid
            event.message = "last message repeated \(n) times"
            event.extra["repeats"] = String(n)
            if let o = open { event.extra["repeated_line"] = String(o.event.line) }
            start(Pending(event: event, stamp: prefix.stamp, yearDelta: delta, takesContinuation: false), into: &sink)
            return
        }

        let isGunicornProgram = prefix.program.map { $0.lowercased().contains("gunicorn") } ?? false
        // rsyslog escapes a multi-line message's newlines as `#012`: the head is the first part.
        let escapedParts = splitEscapedNewlines(messageBytes)
        let headBytes = escapedParts == nil ? messageBytes
            : UnsafeBufferPointer(rebasing: messageBytes[0..<(PythonLogFormat.firstIndex(of: Self.escapedNewline, in: messageBytes, from: 0) ?? messageBytes.count)])
        // nginx's `access_log syslog:…` (and journald capturing an access log on stdout) sends
        // its access lines tagged `nginx:`: they are nginx's records, not system messages.
        let isNginxProgram = prefix.program.map { $0.lowercased().hasPrefix("nginx") } ?? false
        let inner = embedded.parse(headBytes, accessLines: isGunicornProgram || isNginxProgram, accessLayer: isNginxProgram ? .nginx : .gunicorn)

        // A traceback line gunicorn wrote to stderr arrives as a syslog line of its own, under the
        // same `prog[pid]` (journald). Without a pid (a syslog handler's datagrams) every line is whole.
        if inner == nil, let o = open, o.takesContinuation, prefix.program != nil, prefix.pid != nil,
           o.event.program == prefix.program, o.event.pid == prefix.pid {
            appendContinuation(line, text: ByteScanner.string(messageBytes), physical: false, into: &sink)
            return
        }

        var event = Event(time: nil, layer: .system, kind: .log, line: line.number, raw: line.copyBytes())
        var takesContinuation = false
        // gunicorn's own syslog handler sends a traceback in one message (`#012`-escaped): its
        // message is the head part, the rest is the traceback.
        let messageText = ByteScanner.string(isGunicornProgram ? headBytes : messageBytes)
        if let record = inner {
            event = record.event
            event.line = line.number
            event.lineEnd = line.number
            event.raw = line.copyBytes()
            if let innerPid = record.event.pid, innerPid != prefix.pid { event.extra["process_pid"] = String(innerPid) }
            takesContinuation = record.takesContinuation
            var pendingRecord = Pending(event: event, stamp: prefix.stamp, yearDelta: delta, embedded: record, takesContinuation: takesContinuation)
            if let parts = escapedParts { pendingRecord.continuation = Array(parts.dropFirst()) }
            fill(&pendingRecord.event, prefix)
            sample(pendingRecord)
            start(pendingRecord, into: &sink)
            return
        }
        event.message = messageText
        if prefix.program == nil { untagged += 1 }
        if SystemdServiceLine.isSystemd(prefix.program), let state = SystemdServiceLine.classify(messageText) {
            event.layer = .gunicorn
            if state != "other" { event.extra["systemd"] = state }
        } else if isGunicornProgram {
            event.layer = .gunicorn
            takesContinuation = true
            // gunicorn's own syslog handler writes `[pid] message` with no level.
            if messageText.hasPrefix("["), let close = messageText.firstIndex(of: "]"),
               let pid = Int(messageText[messageText.index(after: messageText.startIndex)..<close]) {
                event.extra["process_pid"] = String(pid)
                event.message = String(messageText[messageText.index(after: close)...]).trimmingCharacters(in: .whitespaces)
            }
            if messageText.hasPrefix("Traceback (most recent call last)") {
                headlessTracebacks += 1
                event.level = "ERROR"
            }
        } else if messageText.hasPrefix("Traceback (most recent call last)") {
            // Some Python program's traceback with no head: one record, whoever wrote it.
            headlessTracebacks += 1
            event.level = "ERROR"
            takesContinuation = true
        } else if let range = messageText.range(of: "message repeated "), range.lowerBound == messageText.startIndex {
            let count = messageText[range.upperBound...].prefix { $0.isNumber }
            if !count.isEmpty { event.extra["repeated"] = String(count) }
        }
        var pendingRecord = Pending(event: event, stamp: prefix.stamp, yearDelta: delta, takesContinuation: takesContinuation)
        if let parts = escapedParts, isGunicornProgram { pendingRecord.continuation = Array(parts.dropFirst()) }
        fill(&pendingRecord.event, prefix)
        start(pendingRecord, into: &sink)
    }

    mutating func finish(into sink: inout RecordSink) {
        flushOpen(into: &sink)
        if !settled { settle(into: &sink) }
        if !rollovers.isEmpty {
            let where_ = rollovers.prefix(5).map { "line \($0)" }.joined(separator: ", ")
            sink.note("stamps go from December back to January at \(where_): the year advances there")
        }
        if outOfOrder > 0 {
            sink.note("\(outOfOrder) lines are earlier than the line before them (out of order, first at line \(firstOutOfOrder ?? 0)): kept with their own times")
        }
        if continuationLines > 0 { sink.note("\(continuationLines) continuation lines (indented lines, traceback lines of the same process) joined the record above them") }
        if orphanLines > 0 { sink.note("\(orphanLines) continuation lines with no record before them (the file starts mid-record): kept as rejected lines") }
        if comments > 0 { sink.note("\(comments) comment lines (`#`) kept as rejected lines") }
        if untagged > 0 { sink.note("\(untagged) lines have no `program[pid]:` tag: the text after the host is their message") }
        if repeats > 0 { sink.note("\(repeats) `last message repeated N times` lines kept as events naming the repeated line (the repeats are not multiplied)") }
        if oversized > 0 { sink.note("\(oversized) continuation lines beyond the \(maxRecordBytes)-byte limit of one record kept as rejected lines") }
        if impossibleLeapDays > 0 {
            sink.note("\(impossibleLeapDays) lines are stamped Feb 29 in \(baseYear), no leap year: kept without a time (extra.time_problem); give --year if the file is from a leap year")
        }
        if headlessTracebacks > 0 { sink.note("\(headlessTracebacks) tracebacks with no head line before them: each kept as its own record") }
        if let ref = referenceTime, let last = lastTime, last > ref + 86_400 * CivilTime.microsPerSecond, yearOption == nil {
            sink.note("the latest stamp (\(TimeFormat.isoUTC(last))) is after the file's modification time (\(TimeFormat.isoUTC(ref))): check the year or use --year")
        }
    }

    // MARK: - Records

    private func fill(_ event: inout Event, _ prefix: SyslogPrefix) {
        event.hostname = prefix.hostname
        event.program = prefix.program
        event.pid = prefix.pid
        if let p = prefix.priority {
            if event.level == nil { event.level = SyslogPrefix.level(priority: p) }
            let facility = p >> 3
            if facility < SyslogPrefix.facilities.count { event.extra["facility"] = SyslogPrefix.facilities[facility] }
        }
        if let m = prefix.msgid { event.extra["msgid"] = m }
        if let sd = prefix.structuredData { event.extra["structured_data"] = sd }
    }

    private mutating func appendContinuation(_ line: Line, text: String, physical: Bool, into sink: inout RecordSink) {
        guard open != nil else { return }
        if (open?.event.raw.count ?? 0) + line.count > maxRecordBytes {
            oversized += 1
            return sink.reject(line, "continuation line beyond the \(maxRecordBytes)-byte limit of one record")
        }
        continuationLines += 1
        // In place through the optional: a copy would make long records quadratic.
        open?.event.lineEnd = line.number
        open?.event.raw.append(0x0A)
        open?.event.raw.append(contentsOf: line.bytes)
        open?.continuation.append(text)
        // Physical continuation lines of a plain syslog record are part of its message.
        if physical, open?.embedded == nil { open?.event.message?.append("\n" + text) }
    }

    private mutating func start(_ record: Pending, into sink: inout RecordSink) {
        flushOpen(into: &sink)
        open = record
    }

    private mutating func flushOpen(into sink: inout RecordSink) {
        guard var o = open else { return }
        open = nil
        if let summary = tracebackSummary([o.event.message ?? ""] + o.continuation) {
            o.event.error = summary
            if o.event.level == nil { o.event.level = "ERROR" }
        }
        if settled {
            if o.embedded?.wallClock != nil, o.embedded?.offset == nil, appOffset == nil, let s = appSample(o) {
                // The first app stamp after the year was settled: one sample is all there is.
                adoptAppOffset(s, samples: 1, into: &sink)
            }
            sink.emit(finalize(o))
        } else {
            pending.append(o)
            if pending.count >= Self.settleAfter || appSamples.count >= Self.offsetSamples { settle(into: &sink) }
        }
    }

    private mutating func finalize(_ p: Pending) -> Event {
        var event = p.event
        let prefixTime = utc(p.stamp, delta: p.yearDelta)
        if let record = p.embedded {
            if let u = record.utc {
                event.time = u
                event.altTime = prefixTime
            } else if let wall = record.wallClock {
                if let zone = appZoneOption {
                    event.time = zone.utc(fromLocal: wall)
                } else if let offset = appOffset {
                    event.time = wall - Int64(offset) * CivilTime.microsPerSecond
                } else {
                    event.time = prefixTime
                }
                event.altTime = prefixTime
            } else {
                event.time = prefixTime
            }
        } else {
            event.time = prefixTime
        }
        // `Feb 29` in a year that has none: the inferred year is wrong for this line, and 1 March
        // would be a wrong time in silence. Its own embedded zoned stamp, if any, still times it.
        if case .yearless(2, 29, _) = p.stamp, CivilTime.daysInMonth(year: baseYear + p.yearDelta, month: 2) == 28 {
            if p.embedded?.utc == nil { event.time = nil }
            event.altTime = nil
            event.extra["time_problem"] = "Feb 29 in \(baseYear + p.yearDelta), which is no leap year: the year of the year-less stamp is uncertain"
            impossibleLeapDays += 1
        }
        if let t = event.time { lastTime = max(lastTime ?? t, t) }
        return event
    }

    private func utc(_ stamp: SyslogPrefix.Stamp, delta: Int) -> Int64 {
        switch stamp {
        case .zoned(let u): return u
        case .local(let wall): return hostZone.utc(fromLocal: wall)
        case .yearless(let month, let day, let micros):
            let year = baseYear + delta
            let local = CivilTime.daysFromCivil(year: year, month: month, day: day) * 86_400 * CivilTime.microsPerSecond + micros
            return hostZone.utc(fromLocal: local)
        }
    }

    // MARK: - Year and offsets

    /// The year delta of this stamp relative to the file's first year, noting roll-overs and
    /// lines out of order.
    private mutating func trackYear(_ stamp: SyslogPrefix.Stamp, line: Int) -> Int {
        let halfYear: Int64 = 183 * 86_400 * CivilTime.microsPerSecond
        switch stamp {
        case .yearless(let month, let day, let micros):
            sawZoneless = true
            // Compared within a leap year so that Feb 29 has a place.
            let key = CivilTime.daysFromCivil(year: 2000, month: month, day: day) * 86_400 * CivilTime.microsPerSecond + micros
            var delta = yearDelta
            if let last = lastYearlessKey {
                if key < last - halfYear {
                    yearDelta += 1
                    delta = yearDelta
                    rollovers.append(line)
                } else if key > last + halfYear {
                    // A stray line from before the roll-over: the previous year, and out of order.
                    delta = yearDelta - 1
                    countOutOfOrder(line)
                    return delta
                } else if key < last {
                    countOutOfOrder(line)
                }
            }
            lastYearlessKey = key
            latestYearless = (month, day, micros, delta)
            return delta
        case .zoned(let u), .local(let u):
            if case .local = stamp { sawZoneless = true }
            if let last = lastFull, u < last { countOutOfOrder(line) }
            lastFull = u
            return 0
        }
    }

    /// Files of other formats read earlier in the run whose spans hold most (≥ half) of the
    /// year-less records held back so far when the first stamps are in year `base` (a day of
    /// slack for zones); empty when they do not. A span merely touching a long syslog is no evidence.
    private func overlappingSources(base: Int) -> [String] {
        let others = hints.learnedSpans().filter { $0.format != "syslog" }
        guard !others.isEmpty else { return [] }
        let slack = 86_400 * CivilTime.microsPerSecond
        var inside = 0, total = 0
        var sources: [String] = []
        for p in pending {
            guard case .yearless(let month, let day, let micros) = p.stamp else { continue }
            total += 1
            let t = hostZone.utc(fromLocal: CivilTime.daysFromCivil(year: base + p.yearDelta, month: month, day: day) * 86_400 * CivilTime.microsPerSecond + micros)
            if let span = others.first(where: { $0.first - slack <= t && t <= $0.last + slack }) {
                inside += 1
                if !sources.contains(span.source) { sources.append(span.source) }
            }
        }
        return total > 0 && inside * 2 >= total ? sources : []
    }

    private mutating func countOutOfOrder(_ line: Int) {
        outOfOrder += 1
        if firstOutOfOrder == nil { firstOutOfOrder = line }
    }

    /// The prefix time of a record, taking the year from its embedded stamp (whichever of the
    /// neighbouring years puts them closest): usable before the file's year is settled.
    private func prefixNear(_ p: Pending, wall: Int64) -> (utc: Int64, year: Int)? {
        switch p.stamp {
        case .zoned(let u): return (u, 0)
        case .local(let w): return (hostZone.utc(fromLocal: w), 0)
        case .yearless(let month, let day, let micros):
            let days = wall / (86_400 * CivilTime.microsPerSecond)
            let year = CivilTime.civilFromDays(days).year
            var best: (Int64, Int)?
            for y in (year - 1)...(year + 1) {
                let local = CivilTime.daysFromCivil(year: y, month: month, day: day) * 86_400 * CivilTime.microsPerSecond + micros
                let u = hostZone.utc(fromLocal: local)
                if let current = best, abs(wall - current.0) <= abs(wall - u) { continue }
                best = (u, y)
            }
            return best
        }
    }

    /// Embedded local stamp minus prefix time, seconds.
    private func appSample(_ p: Pending) -> Int? {
        guard let record = p.embedded, record.offset == nil, let wall = record.wallClock, let near = prefixNear(p, wall: wall) else { return nil }
        let diff = (wall - near.utc) / CivilTime.microsPerSecond
        return abs(diff) <= 15 * 3600 ? Int(diff) : nil
    }

    private mutating func sample(_ p: Pending) {
        guard let record = p.embedded, let wall = record.wallClock else { return }
        if let near = prefixNear(p, wall: record.utc ?? wall), case .yearless = p.stamp, embeddedBaseYear == nil {
            embeddedBaseYear = near.year - p.yearDelta
        }
        if let u = record.utc {
            if let near = prefixNear(p, wall: u) {
                let diff = (u - near.utc) / CivilTime.microsPerSecond
                if abs(diff) <= 15 * 3600, zonedSamples.count < Self.offsetSamples { zonedSamples.append(Int(diff)) }
            }
        } else if let s = appSample(p), appSamples.count < Self.offsetSamples {
            appSamples.append(s)
        }
    }

    static func roundedMedian(_ values: [Int]) -> Int {
        let sorted = values.sorted()
        let median = sorted[sorted.count / 2]
        return Int((Double(median) / 900).rounded()) * 900
    }

    private mutating func adoptAppOffset(_ seconds: Int, samples: Int, into sink: inout RecordSink) {
        let offset = Int((Double(seconds) / 900).rounded()) * 900
        appOffset = offset
        let zone = ZoneSpec.fixed(seconds: offset)
        let hostClock = "\(hostZone)"
        sink.note("app clock is UTC\(TimeFormat.offsetString(seconds: offset, colon: true)) relative to the syslog host clock (\(hostClock)), "
                  + "from the median of \(samples) embedded Flask/Python stamps: their times are converted with it; the prefix time is kept in alt_time")
        if let given = appZoneOption {
            sink.note("--app-tz \(given) is used for embedded app stamps instead of the estimated offset")
        } else {
            hints.learnAppZone(zone, from: path, position: position)
        }
    }

    private mutating func settle(into sink: inout RecordSink) {
        settled = true
        // gunicorn's own stamps inside the lines carry their offset: when they sit a whole number
        // of quarter hours from the prefixes read as UTC, the host writes its prefixes in that
        // zone (a journal exported in local time), and every record here is read in it.
        var hostShift = 0
        if !hostZoneGiven, sawZoneless, zonedSamples.count >= Self.hostZoneSamples {
            let offset = Self.roundedMedian(zonedSamples)
            if offset != 0 {
                hostShift = offset
                hostZone = .fixed(seconds: hostZone.offset(atUTC: 0) - offset)
                sink.note("syslog stamps without zone read as \(hostZone): the offset the gunicorn stamps embedded in them write "
                          + "(median of \(zonedSamples.count)); give --tz to read them in another zone")
            }
        }
        if sawZoneless && hostShift == 0 {
            sink.note(hostZoneGiven ? "syslog stamps without zone read in \(hostZone) (--tz)"
                                    : "syslog stamps without zone read as UTC (no --tz given)")
        }
        if let latest = latestYearless {
            if let year = yearOption {
                // --year names the year of the file's first stamps; roll-overs inside advance it.
                baseYear = year
                sink.note("year \(year) for the first year-less syslog stamps from --year" + (latest.delta > 0 ? " (later ones roll over into the next year)" : ""))
            } else if let ref = referenceTime {
                let refLocal = ref + Int64(hostZone.offset(atUTC: ref)) * CivilTime.microsPerSecond
                var year = CivilTime.civilFromDays(refLocal / (86_400 * CivilTime.microsPerSecond)).year
                let stamp = CivilTime.daysFromCivil(year: year, month: latest.month, day: latest.day) * 86_400 * CivilTime.microsPerSecond + latest.micros
                if stamp > refLocal + 86_400 * CivilTime.microsPerSecond { year -= 1 }
                baseYear = year - latest.delta
                let fromReference = baseYear
                if embeddedBaseYear == nil, overlappingSources(base: fromReference).isEmpty,
                   let other = ((fromReference - 5)...(fromReference + 1)).reversed().first(where: { !overlappingSources(base: $0).isEmpty }) {
                    let sources = overlappingSources(base: other)
                    baseYear = other
                    sink.note("the file's modification time (\(TimeFormat.isoUTC(ref))) suggests year \(fromReference) for year-less stamps, "
                              + "but dated records of other layers cover most of these days in \(other) (\(sources.prefix(3).joined(separator: ", "))): using \(other)")
                } else if let embeddedYear = embeddedBaseYear, embeddedYear != baseYear {
                    sink.note("the file's modification time (\(TimeFormat.isoUTC(ref))) suggests year \(baseYear) for year-less stamps, but the embedded gunicorn/app dates say \(embeddedYear): using \(embeddedYear)")
                    baseYear = embeddedYear
                } else {
                    sink.note("year \(baseYear) inferred for year-less syslog stamps: the latest stamp read is at or before the file's modification time (\(TimeFormat.isoUTC(ref)))"
                              + (embeddedBaseYear != nil ? ", confirmed by embedded gunicorn/app dates" : ""))
                }
            } else if let embeddedYear = embeddedBaseYear {
                baseYear = embeddedYear
                sink.note("year \(baseYear) for year-less syslog stamps from the embedded gunicorn/app dates")
            } else if let other = (1970...CivilTime.civilFromDays(Int64(Date().timeIntervalSince1970) / 86_400).year).reversed()
                        .first(where: { !overlappingSources(base: $0).isEmpty }) {
                baseYear = other
                sink.note("year \(other) for year-less syslog stamps: dated records of other layers cover these days then (\(overlappingSources(base: other).prefix(3).joined(separator: ", ")))")
            } else {
                let nowDays = Int64(Date().timeIntervalSince1970) / 86_400
                baseYear = CivilTime.civilFromDays(nowDays).year - latest.delta
                sink.note("year \(baseYear + latest.delta) assumed for year-less syslog stamps: no file time and no dated records (use --year)")
            }
        }
        if appOffset == nil, !appSamples.isEmpty {
            // Sampled against the prefixes as first read: a host zone adopted above moved them.
            adoptAppOffset(Self.roundedMedian(appSamples) - hostShift, samples: appSamples.count, into: &sink)
        }
        if !zonedSamples.isEmpty, hostShift == 0 {
            let offset = Self.roundedMedian(zonedSamples)
            if offset == 0 {
                sink.note("embedded gunicorn stamps (with their own offset) agree with the syslog prefix times")
            } else {
                sink.note("embedded gunicorn stamps are \(TimeFormat.offsetString(seconds: offset, colon: true)) from the syslog prefix times: the host zone is probably not \(hostZoneGiven ? "\(hostZone)" : "UTC") (use --tz); event times use gunicorn's own stamps")
            }
        }
        let held = pending
        pending = []
        for p in held { sink.emit(finalize(p)) }
    }

    // MARK: - rsyslog escapes

    static let escapedNewline = Array("#012".utf8)

    /// The parts of a message whose newlines rsyslog escaped as `#012`, or nil when there are none.
    private func splitEscapedNewlines(_ b: UnsafeBufferPointer<UInt8>) -> [String]? {
        guard PythonLogFormat.firstIndex(of: Self.escapedNewline, in: b, from: 0) != nil else { return nil }
        return ByteScanner.string(b).components(separatedBy: "#012")
    }
}
