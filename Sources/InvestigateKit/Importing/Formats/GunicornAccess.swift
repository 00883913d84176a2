import Foundation

/// gunicorn's access log (`--access-logfile`). Its default `access_log_format` writes the very shape
/// of nginx's `combined`, so only a file name saying "gunicorn" tells them apart.
public struct GunicornAccessImporter: Importer {
    // gunicorn's `%(t)s` is the common log stamp.
    public func lineTimeScan(_ options: ImportOptions) -> LineTimeScan? { LineTimeScan(.commonLog, multiline: false) }

    public init() {}

    public let id = "gunicorn-access"
    public let title = "gunicorn access log"
    public let layer = Layer.gunicorn
    public let documentation = "https://docs.gunicorn.org/en/stable/settings.html#access-log-format"
    public let ingestOrder = 40

    public let samples = [
        FormatSample(fileName: "gunicorn-access.log", lines: [
            #"172.24.0.2 - - [01/Feb/2019:18:33:56 +0000] "GET / HTTP/1.0" 200 14 "-" "ApacheBench/2.3""#,
            #"10.1.1.50 - - [06/Feb/2025:14:32:45 +0900] "GET /api/ping HTTP/1.0" 400 31 "-" "Mozilla/5.0 (X11; Linux x86_64)""#,
        ]),
    ]

    public let fieldNotes = """
        Default `%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s"`: `h` (the proxy in front, \
        usually nginx) → `peer_ip` and `client_ip` (when an IP address; a socket name → `extra.remote_addr_text`); `t` (local time with offset) → `time`; `r` → `method`, \
        `path`, `query`, `extra.protocol`; `s` → `status`; `b` → `bytes`; `f` → `extra.referer`; `a` → \
        `user_agent`; `u` → `extra.remote_user`. Read by the nginx access-log parser, so common trailing \
        additions (`%(L)s` request time, a request id) are understood the same way. Recognised only when \
        the file name contains `gunicorn`.
        """

    public func recognize(_ lines: [String], fileName: String) -> Double {
        guard fileName.lowercased().contains("gunicorn") else { return 0 }
        var parser = NginxAccessParser(directory: "", learnZone: nil)
        var ok = 0
        for line in lines {
            var sink = RecordSink()
            Line.with(line, number: 1) { parser.consume($0, into: &sink) }
            if sink.rejected.isEmpty && sink.eventCount > 0 { ok += 1 }
        }
        return Double(ok) / Double(max(lines.count, 1))
    }

    public func makeParser(_ context: ParseContext) throws -> any RecordParser {
        GunicornAccessParser(inner: NginxAccessParser(directory: context.directory, learnZone: nil))
    }
}

/// The combined-format parser with its events moved to the gunicorn layer.
struct GunicornAccessParser: RecordParser {
    var inner: NginxAccessParser
    private var scratch = RecordSink()

    init(inner: NginxAccessParser) { self.inner = inner }

    mutating func consume(_ line: Line, into sink: inout RecordSink) {
        inner.consume(line, into: &scratch)
        move(into: &sink)
    }

    mutating func finish(into sink: inout RecordSink) {
        inner.finish(into: &scratch)
        move(into: &sink)
    }

    private mutating func move(into sink: inout RecordSink) {
        for var event in scratch.events {
            event.layer = .gunicorn
            // The line is the message (as in a syslog copy of it), so the two copies can be paired.
            event.message = String(decoding: event.raw, as: UTF8.self)
            sink.emit(event)
        }
        sink.rejected += scratch.rejected
        scratch.notes.forEach { sink.note($0) }
        scratch.removeAllEvents()
        scratch.rejected.removeAll(keepingCapacity: true)
        scratch.notes.removeAll()
    }
}
