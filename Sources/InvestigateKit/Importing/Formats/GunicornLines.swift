import Foundation

/// The head of a gunicorn error-log record: `[2025-02-06 14:32:45 +0900] [pid] [LEVEL] message`
/// (glogging.py `error_fmt` with `datefmt = "[%Y-%m-%d %H:%M:%S %z]"`), or the pre-19 layout
/// `2013-06-06 22:24:29 [26219] [CRITICAL] message` without brackets or offset.
struct GunicornErrorHead: Equatable {
    var wallClock: Int64
    var wallClockText: String
    /// Seconds east of UTC when the stamp carries `%z`.
    var offset: Int?
    var pid: Int
    var level: String
    var message: String

    static func parse(_ b: UnsafeBufferPointer<UInt8>) -> GunicornErrorHead? {
        var s = ByteScanner(b)
        let bracketed = s.skip(0x5B)
        let stampStart = s.pos
        guard let (wall, length) = PythonLogFormat.asctime(b, at: s.pos), length == 19 else { return nil }
        s.pos += length
        var offset: Int?
        if bracketed {
            guard s.skip(0x20), let sign = s.peek(), sign == 0x2B || sign == 0x2D else { return nil }
            s.pos += 1
            guard let oh = s.digits(2), let om = s.digits(2), oh <= 14, om < 60 else { return nil }
            offset = (sign == 0x2D ? -1 : 1) * (oh * 3600 + om * 60)
            guard s.skip(0x5D) else { return nil }
        }
        let text = String(decoding: UnsafeBufferPointer(rebasing: b[stampStart..<(bracketed ? s.pos - 1 : s.pos)]), as: UTF8.self)
        guard s.skip(0x20), s.skip(0x5B), let pidBytes = s.until(0x5D), let pid = ByteScanner.int(pidBytes), pid >= 0 else { return nil }
        guard s.skip(0x20), s.skip(0x5B), let levelBytes = s.until(0x5D), !levelBytes.isEmpty, levelBytes.count <= 10,
              levelBytes.allSatisfy({ $0 >= 0x41 && $0 <= 0x5A }) else { return nil }
        _ = s.skip(0x20)
        return GunicornErrorHead(wallClock: wall, wallClockText: text, offset: offset, pid: Int(pid),
                                 level: ByteScanner.string(levelBytes), message: ByteScanner.string(s.rest))
    }

    /// What the arbiter or a worker reported, as `extra` keys: the event name and the worker's pid.
    static func interpret(_ message: String, into event: inout Event) {
        func number(after prefix: String) -> String? {
            guard let r = message.range(of: prefix) else { return nil }
            let digits = message[r.upperBound...].prefix { $0.isASCII && $0.isNumber }
            return digits.isEmpty ? nil : String(digits)
        }
        let name: String?
        if message.hasPrefix("WORKER TIMEOUT") {
            name = "worker_timeout"; event.extra["worker_pid"] = number(after: "pid:")
        } else if message.hasPrefix("Booting worker with pid:") {
            name = "worker_boot"; event.extra["worker_pid"] = number(after: "pid: ")
        } else if message.hasPrefix("Worker exiting") {
            name = "worker_exit"; event.extra["worker_pid"] = number(after: "pid: ")
        } else if message.hasPrefix("Worker (pid:") && message.contains("was sent") {
            name = message.contains("SIGKILL") ? "worker_killed" : "worker_signalled"; event.extra["worker_pid"] = number(after: "pid:")
        } else if message.hasPrefix("Worker (pid:") && message.contains("exited with code") {
            name = "worker_exited"; event.extra["worker_pid"] = number(after: "pid:")
        } else if message.hasPrefix("Worker with pid") && message.contains("terminated due to signal") {
            name = "worker_killed"; event.extra["worker_pid"] = number(after: "pid ")
        } else if message.hasPrefix("Error handling request") {
            name = "request_error"
            let rest = message.dropFirst("Error handling request".count).trimmingCharacters(in: .whitespaces)
            if let target = rest.split(separator: " ").first, target.hasPrefix("/") { splitTarget(String(target), into: &event) }
        } else if message.hasPrefix("Exception in worker process") {
            name = "worker_exception"
        } else if message.hasPrefix("Socket error processing request") {
            name = "socket_error"
        } else if message.hasPrefix("Starting gunicorn") {
            name = "starting"
        } else if message.hasPrefix("Listening at:") {
            name = "listening"
        } else if message.hasPrefix("Shutting down") {
            name = "shutting_down"
        } else if message.hasPrefix("Handling signal:") {
            name = "signal"
        } else {
            name = nil
        }
        if let name { event.extra["gunicorn_event"] = name }
    }
}

/// systemd's own lines about the gunicorn service (`Stopped gunicorn.service`, `gunicorn.service:
/// Main process exited, code=killed, status=9/KILL`): a stopped or killed service is evidence for
/// the gunicorn layer, so they are kept as its events.
enum SystemdServiceLine {
    /// Programs whose lines describe units.
    static func isSystemd(_ program: String?) -> Bool {
        program == "systemd" || program == "init"
    }

    /// `stopped`, `started`, `killed` or `failed` when the line is about the gunicorn service; nil
    /// when it is about something else. Lines about the service that change nothing (`Consumed 1.2s
    /// CPU time`) give `other`.
    static func classify(_ message: String) -> String? {
        guard message.range(of: "gunicorn", options: .caseInsensitive) != nil else { return nil }
        if message.contains("Failed") || message.contains("failed") { return "failed" }
        if message.contains("code=killed") || message.hasPrefix("Killing") || message.contains(": Killing")
            || message.contains("status=9/KILL") { return "killed" }
        if message.hasPrefix("Stopped") || message.hasPrefix("Stopping") || message.contains("Deactivated successfully")
            || message.contains("Main process exited") { return "stopped" }
        if message.hasPrefix("Started") || message.hasPrefix("Starting") || message.hasPrefix("Reloaded") { return "started" }
        return "other"
    }
}

/// The Werkzeug development server's request line (`flask run`), which lands in the same stream as
/// the app's logging: `127.0.0.1 - - [06/Feb/2025 14:32:45] "GET /api/orders HTTP/1.1" 200 -`.
/// Local time without zone and without `:` between date and time; on a terminal the request
/// line may be wrapped in ANSI colour codes.
enum WerkzeugAccessLine {
    static func parse(_ input: UnsafeBufferPointer<UInt8>) -> (event: Event, wallClock: Int64, wallClockText: String)? {
        guard let first = input.first, first == 0x1B || isAddressStart(first) else { return nil }
        if first == 0x1B || input.contains(0x1B) {
            let cleaned = stripANSI(input)
            return cleaned.withUnsafeBufferPointer { parsePlain($0) }
        }
        return parsePlain(input)
    }

    private static func parsePlain(_ b: UnsafeBufferPointer<UInt8>) -> (event: Event, wallClock: Int64, wallClockText: String)? {
        // An address starts with a digit, a hex letter or `:` (IPv6): a cheap test for most lines.
        guard let first = b.first, isAddressStart(first) else { return nil }
        var s = ByteScanner(b)
        let address = s.token()
        guard !address.isEmpty, address.count <= 45, address.allSatisfy(SyslogPrefix.isHostByte),
              s.skip(0x2D), s.skip(0x20), s.skip(0x2D), s.skip(0x20), s.skip(0x5B) else { return nil }
        let stampStart = s.pos
        guard let day = s.digits(2), s.skip(0x2F), s.remaining >= 3,
              let month = CivilTime.month(b[s.pos], b[s.pos + 1], b[s.pos + 2]) else { return nil }
        s.pos += 3
        guard s.skip(0x2F), let year = s.digits(4), s.skip(0x20), let h = s.digits(2), s.skip(0x3A), let mi = s.digits(2),
              s.skip(0x3A), let sec = s.digits(2), CivilTime.isValid(year: year, month: month, day: day, hour: h, minute: mi, second: sec) else { return nil }
        let stampText = ByteScanner.string(UnsafeBufferPointer(rebasing: b[stampStart..<s.pos]))
        guard s.skip(0x5D), s.skip(0x20), let request = s.quoted() else { return nil }
        s.skipSpaces()
        let statusBytes = s.token()
        guard statusBytes.count == 3, let status = ByteScanner.int(statusBytes) else { return nil }
        let sizeBytes = s.token()
        guard s.atEnd, !sizeBytes.isEmpty else { return nil }
        var event = Event(time: nil, layer: .app, kind: .access, line: 0, raw: [])
        if event.setAddress(.peer, ByteScanner.string(address), elseKeep: "remote_addr_text") { event.clientIP = event.peerIP }
        event.status = Int(status)
        event.bytes = ByteScanner.int(sizeBytes)
        splitRequest(request, into: &event)
        event.message = ByteScanner.string(b)
        event.extra["server"] = "werkzeug"
        event.extra["local_time"] = stampText
        return (event, CivilTime.micros(year: year, month: month, day: day, hour: h, minute: mi, second: sec), stampText)
    }

    static func isAddressStart(_ c: UInt8) -> Bool {
        (c >= 0x30 && c <= 0x39) || c == 0x3A || (c >= 0x61 && c <= 0x66) || (c >= 0x41 && c <= 0x46)
    }

    /// Removes `ESC [ … letter` sequences.
    static func stripANSI(_ b: UnsafeBufferPointer<UInt8>) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(b.count)
        var i = 0
        while i < b.count {
            if b[i] == 0x1B, i + 1 < b.count, b[i + 1] == 0x5B {
                i += 2
                while i < b.count, !((b[i] >= 0x40 && b[i] <= 0x7E)) { i += 1 }
                i += 1
                continue
            }
            out.append(b[i])
            i += 1
        }
        return out
    }
}
