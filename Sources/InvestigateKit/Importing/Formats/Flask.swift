import Foundation

/// Flask/Python application log files (`logs/2025-02-06.log`): Python `logging` records in any of
/// the common layouts, or the layout given with `--app-log-format`; tracebacks stay in their record.
public struct FlaskImporter: Importer {
    // Python logging's `%(asctime)s` near the start of a record's head line; tracebacks follow it.
    public func lineTimeScan(_ options: ImportOptions) -> LineTimeScan? { options.appLogFormat == nil ? LineTimeScan(.isoLike, multiline: true) : nil }

    public init() {}

    public let id = "flask"
    public let title = "Flask / Python logging application log"
    public let layer = Layer.app
    public let documentation = "https://docs.python.org/3/library/logging.html#logrecord-attributes"
    /// After syslog (30): a syslog copy of the app's lines teaches the app's zone.
    public let ingestOrder = 60

    public let samples = [
        FormatSample(fileName: "2025-02-06.log", lines: [
            "INFO 2025-02-06 14:32:45,136 [app] Request: GET http://example.com:443/api/ping",
            "INFO 2025-02-06 14:32:45,159 [app] Response: 400 http://example.com:443/api/ping",
        ]),
        FormatSample(fileName: "flask.log", lines: [
            "[2025-02-06 14:32:45,123] ERROR in app: Exception on /api/orders [POST]",
            "Traceback (most recent call last):",
            "  File \"/srv/app/venv/lib/python3.12/site-packages/flask/app.py\", line 1511, in wsgi_app",
            "    response = self.full_dispatch_request()",
            "ZeroDivisionError: division by zero",
            "[2025-02-06 14:32:46,001] INFO in routes: order 42 created",
        ]),
        FormatSample(fileName: "flask-dev.log", lines: [
            "[2025-02-06 14:32:44,002] INFO in app: starting order service",
            #"127.0.0.1 - - [06/Feb/2025 14:32:45] "GET /api/orders HTTP/1.1" 200 -"#,
            #"127.0.0.1 - - [06/Feb/2025 14:32:46] "POST /api/orders HTTP/1.1" 500 -"#,
        ]),
        FormatSample(fileName: "app.log", lines: [
            "2019-02-01 18:33:56,528 - app - INFO - Entered app",
            "2019-02-01 18:33:56,530 - app.db - WARNING - slow query: 1.2s",
        ]),
        FormatSample(fileName: "python-example.log", lines: [
            "2025-09-26 21:12:39,384 DEBUG debug message: initializing demo",
            "2025-09-26 21:12:39,385 INFO info message:",
            "processing started -- log_example.py",
            "2025-09-26 21:12:39,385 ERROR error message: failed to open resource",
        ]),
    ]

    public let fieldNotes = """
        `%(asctime)s` with a zone its `datefmt` wrote (`Z`, `+09:00`, `+0900`, a trailing ` UTC`/` GMT`) → `time` in that zone; \
        without one (Python's default, local time) → `time`, converted with `--app-tz`, else the app zone learnt from \
        a syslog copy of the same lines read earlier in the run, else the offset every nginx access log of the run writes (the server's local time; when nginx's offsets change at a \
        daylight-saving switch, the zone with those rules, e.g. `Europe/Berlin` for +0100 then +0200 at the EU switch), else the system zone (a note says which). \
        A line that opens with a date and time but matches no known layout is a record of its own (its time, a level word right after the stamp, \
        the rest as `message`; a note counts them), never a continuation of the record above. \
        The last two are guesses: once the run is read, the file's lines that name a request (`Request: GET …`, `Exception on /p [POST]`, \
        `GET /p …` in a message) are compared with the nginx and ALB access records of the same paths within 3 s, over a 20-minute \
        stretch, at every half-hour shift within 14 hours; when one shift gathers at least 5 meetings beyond chance (a path requested \
        every few seconds meets at any shift) and twice as many as any other, the records are moved by it and the note says so \
        (`AppZoneAlignment`); read for a question's window, such a file keeps 14 hours either side for this. Whatever the \
        zone, a clock minutes off is found the same way at every whole-second shift within 15 minutes (3-second windows, at least 8 \
        meetings beyond chance and twice any other shift); a shift of 10 s or more moves the records and a note says by how much \
        (`AppClockSkew`). The \
        stamp as written → `extra.local_time`. `%(levelname)s` → `level`; `%(message)s` (first line) → `message`; \
        `%(name)s` → `extra.logger`; `%(module)s` → `extra.module`; `%(process)d` → `pid`; other attributes → \
        `extra.<name>`. Following lines that are not a record head (tracebacks, multi-line messages) join the \
        record's `raw`; a traceback's final exception line → `error`. `Request: GET <url>` → `method`, `host`, \
        `path`, `query`, `extra.url`; `Response: 400 <url>` → `status` and kind `access`; Flask's \
        `Exception on /path [POST]` → `method`, `path`. Layouts read without options: \
        `LEVEL YYYY-MM-DD HH:MM:SS,mmm [module] message`, Flask's `[%(asctime)s] %(levelname)s in %(module)s: \
        %(message)s`, the cookbook `%(asctime)s - %(name)s - %(levelname)s - %(message)s`, \
        `%(asctime)s %(levelname)s %(message)s` and similar, `%(asctime)s [%(process)d] %(levelname)-8s %(name)s: %(message)s`, \
        `%(levelname)s:%(name)s:%(message)s`; a file in the layout given with `--app-log-format` is recognised by it; gunicorn \
        error heads interleaved in the same stream → layer `gunicorn`. The Werkzeug development server's \
        request lines (`127.0.0.1 - - [06/Feb/2025 14:32:45] "GET /p HTTP/1.1" 200 -`, ANSI colours removed) → \
        kind `access` with `peer_ip`, `client_ip`, `method`, `path`, `query`, `status`, `bytes`, `extra.server` = `werkzeug`.
        """

    public func recognize(_ lines: [String], fileName: String) -> Double {
        let heads = EmbeddedLineParser(gunicornHeads: false)
        // Werkzeug request lines alone are not enough to call a file an app log: nginx-like
        // shapes must not be taken, so at least one logging head must be among the lines.
        var loggingHeads = 0
        let share = headShare(lines) { bytes in
            guard let record = heads.parse(bytes, accessLines: false) else { return false }
            if record.event.extra["server"] == nil { loggingHeads += 1 }
            return true
        }
        return loggingHeads > 0 ? share : 0
    }

    /// How well lines fit the layout the user gave with `--app-log-format` (detection knows only
    /// the built-in layouts, and a layout of one's own is what the option is for).
    public func recognize(_ lines: [String], appLogFormat definition: String) -> Double {
        guard let format = try? PythonLogFormat(definition) else { return 0 }
        let heads = EmbeddedLineParser(pythonFormats: [format], gunicornHeads: false)
        var loggingHeads = 0
        let share = headShare(lines) { bytes in
            guard let record = heads.parse(bytes, accessLines: false), record.event.extra["server"] == nil else { return false }
            loggingHeads += 1
            return true
        }
        return loggingHeads > 0 ? share : 0
    }

    public func makeParser(_ context: ParseContext) throws -> any RecordParser {
        var formats = PythonLogFormat.builtIn
        if let definition = context.options.appLogFormat {
            formats = [try PythonLogFormat(definition)]
        }
        let zone = appZone(context)
        return PythonStreamParser(heads: EmbeddedLineParser(pythonFormats: formats), zone: zone.zone, zoneNote: zone.note)
    }
}

/// The share of leading lines that are record heads, not counting the lines that plainly continue
/// a record (indented, tracebacks): a file of long tracebacks is still a file of these records.
///
/// Lines before the first head are left out: a file that logrotate cut in the middle of a
/// traceback begins with the rest of a record whose head is in the previous file.
func headShare(_ lines: [String], isHead: (UnsafeBufferPointer<UInt8>) -> Bool) -> Double {
    var heads = 0, counted = 0
    for line in lines {
        let head = Line.with(line, number: 1) { isHead($0.bytes) }
        if head { heads += 1; counted += 1; continue }
        if heads == 0 || isTracebackContinuation(line) { continue }
        counted += 1
    }
    return counted == 0 ? 0 : Double(heads) / Double(counted)
}

/// A line that continues a Python record: indented frames and source, the traceback's header, the
/// chained-exception sentences, and the exception line itself (`KeyError: 'id'`,
/// `sqlalchemy.exc.OperationalError: …`, `werkzeug.exceptions.NotFound: 404 Not Found`).
func isTracebackContinuation(_ line: String) -> Bool {
    if line.first == " " || line.first == "\t" || line.hasPrefix("Traceback (") { return true }
    if line.hasPrefix("During handling of the above exception") || line.hasPrefix("The above exception was the direct cause") { return true }
    let name = line.firstIndex(of: ":").map { line[..<$0] } ?? Substring(line)
    guard !name.isEmpty, !name.contains(" "), name.first.map({ $0.isLetter || $0 == "_" }) ?? false,
          name.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" || $0 == "." }) else { return false }
    let last = name.split(separator: ".").last.map(String.init) ?? String(name)
    return ["Error", "Exception", "Exit", "Interrupt", "Warning", "Timeout", "NotFound", "Iteration"].contains { last.hasSuffix($0) }
        || (line.contains(":") && name.contains("."))
}
