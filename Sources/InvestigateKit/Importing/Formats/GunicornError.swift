import Foundation

/// gunicorn's error log (`--error-logfile`, or its stderr captured to a file): arbiter and worker
/// messages with their tracebacks, often interleaved with the app's own Python logging lines.
public struct GunicornErrorImporter: Importer {
    // `[2025-02-06 14:32:10 +0900]`: read without its zone (the slack covers it); tracebacks follow it.
    public func lineTimeScan(_ options: ImportOptions) -> LineTimeScan? { LineTimeScan(.isoLike, multiline: true) }

    public init() {}

    public let id = "gunicorn-error"
    public let title = "gunicorn error log"
    public let layer = Layer.gunicorn
    public let documentation = "https://docs.gunicorn.org/en/stable/settings.html#errorlog"
    public let ingestOrder = 40

    public let samples = [
        FormatSample(fileName: "gunicorn-error.log", lines: [
            "[2024-01-09 13:24:39 +0000] [1637] [CRITICAL] WORKER TIMEOUT (pid:7214)",
            "[2024-01-09 13:24:40 +0000] [1637] [WARNING] Worker with pid 7214 was terminated due to signal 6",
            "[2024-01-09 13:24:40 +0000] [7310] [INFO] Booting worker with pid: 7310",
            "[2024-11-05 09:26:00 +0000] [16] [ERROR] Worker (pid:17) was sent SIGKILL! Perhaps out of memory?",
            "[2019-06-25 08:18:35 +0000] [8498] [ERROR] Socket error processing request.",
            "Traceback (most recent call last):",
            "  File \"/usr/local/lib/python3.6/site-packages/gunicorn/workers/async.py\", line 62, in handle",
            "    six.reraise(*sys.exc_info())",
            "ConnectionResetError: [Errno 104] Connection reset by peer",
        ]),
    ]

    public let fieldNotes = """
        `[%Y-%m-%d %H:%M:%S %z]` → `time` (its own offset; the pre-19 layout without offset is read in \
        `--app-tz`, else the learnt app zone, else the offset the run's nginx access logs write, else the system zone) and `extra.local_time`; `[pid]` (the \
        logging process: the arbiter for WORKER TIMEOUT) → `pid`; `[LEVEL]` → `level`; the text → `message`. \
        Well-known messages → `extra.gunicorn_event` (`worker_timeout`, `worker_boot`, `worker_exit`, \
        `worker_killed`, `worker_exited`, `request_error`, `listening`, `shutting_down`, …) and the worker \
        they name → `extra.worker_pid`; `Error handling request /path` → `path`. Traceback lines join the \
        record's `raw`, the exception line → `error`. Flask/Python logging lines in the same stream → layer `app`.
        """

    public func recognize(_ lines: [String], fileName: String) -> Double {
        headShare(lines) { GunicornErrorHead.parse($0) != nil }
    }

    public func makeParser(_ context: ParseContext) throws -> any RecordParser {
        var formats = PythonLogFormat.builtIn
        if let definition = context.options.appLogFormat { formats.insert(try PythonLogFormat(definition), at: 0) }
        let zone = appZone(context)
        return PythonStreamParser(heads: EmbeddedLineParser(pythonFormats: formats), zone: zone.zone, zoneNote: zone.note)
    }
}
