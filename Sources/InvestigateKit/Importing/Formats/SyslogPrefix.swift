import Foundation

/// The header of one syslog line in any of the layouts syslog daemons and journalctl write:
/// RFC 3164 / `RSYSLOG_TraditionalFileFormat` (`Feb  6 05:32:45 host prog[pid]: msg`, journalctl
/// `short` with its zero-padded day and `short-precise` fraction), `RSYSLOG_FileFormat` and journalctl
/// `short-iso` (`2025-02-06T05:32:45.123456+00:00 host prog[pid]: msg`), and RFC 5424
/// (`<38>1 2019-07-08T17:40:16.95-04:00 host app procid msgid [sd] msg`), and journalctl
/// `short-full` (`Thu 2025-02-06 14:32:47 JST host prog[pid]: msg`).
struct SyslogPrefix: Equatable {
    enum Stamp: Equatable {
        /// RFC 3164: no year, no zone. `micros` is the time of day.
        case yearless(month: Int, day: Int, micros: Int64)
        /// A full stamp with an offset: UTC µs.
        case zoned(Int64)
        /// A full stamp without zone: wall-clock µs taken as UTC.
        case local(Int64)
    }

    var stamp: Stamp
    var priority: Int?
    var hostname: String?
    var program: String?
    var pid: Int?
    /// Byte offset where the message starts.
    var messageStart: Int
    /// `last message repeated N times`.
    var repeated: Int?
    var msgid: String?
    var structuredData: String?

    static func parse(_ b: UnsafeBufferPointer<UInt8>) -> SyslogPrefix? {
        var s = ByteScanner(b)
        var priority: Int?
        if s.peek() == 0x3C {
            s.pos += 1
            var v = 0, n = 0
            while let c = s.peek(), c >= 0x30, c <= 0x39, n < 3 { v = v * 10 + Int(c - 0x30); n += 1; s.pos += 1 }
            guard n > 0, v <= 191, s.skip(0x3E) else { return nil }
            priority = v
            if let version = s.peek(), version >= 0x31, version <= 0x39, s.peek(1) == 0x20 {
                s.pos += 2
                return parse5424(&s, priority: priority)
            }
        }
        let stamp: Stamp
        guard let first = s.peek() else { return nil }
        if first >= 0x30 && first <= 0x39 {
            let token = s.token()
            guard let iso = isoStamp(token) else { return nil }
            stamp = iso
        } else if let full = shortFullStamp(&s) {
            stamp = full
        } else {
            guard s.remaining >= 15, let month = CivilTime.month(b[s.pos], b[s.pos + 1], b[s.pos + 2]) else { return nil }
            s.pos += 3
            guard s.skip(0x20) else { return nil }
            _ = s.skip(0x20)
            guard let d1 = s.digits(1) else { return nil }
            var day = d1
            if let d2 = s.digits(1) { day = day * 10 + d2 }
            guard s.skip(0x20), let h = s.digits(2), s.skip(0x3A), let mi = s.digits(2), s.skip(0x3A), let sec = s.digits(2) else { return nil }
            guard day >= 1, day <= CivilTime.daysInMonth(year: 2000, month: month),
                  CivilTime.isValid(year: 2000, month: month, day: day, hour: h, minute: mi, second: sec) else { return nil }
            var micro = 0
            if s.peek() == 0x2E {
                s.pos += 1
                var digits = 0
                while let c = s.peek(), c >= 0x30, c <= 0x39 { if digits < 6 { micro = micro * 10 + Int(c - 0x30) }; digits += 1; s.pos += 1 }
                guard digits > 0 else { return nil }
                for _ in min(digits, 6)..<6 { micro *= 10 }
            }
            guard s.skip(0x20) else { return nil }
            stamp = .yearless(month: month, day: day, micros: Int64(h * 3600 + mi * 60 + sec) * CivilTime.microsPerSecond + Int64(micro))
        }
        s.skipSpaces()
        var prefix = SyslogPrefix(stamp: stamp, priority: priority, messageStart: s.pos)
        if let n = repeatCount(s.rest) {
            prefix.repeated = n
            prefix.messageStart = s.pos
            return prefix
        }
        let hostStart = s.pos
        let host = s.token()
        // A JSON record after a stamp (a CloudWatch export's `2025-…Z {"requestId": …}`) is no
        // host or tag: syslog names neither with a brace or a quote.
        guard !host.isEmpty, host[0] != 0x7B, host[0] != 0x22 else { return nil }
        if host[host.count - 1] == 0x3A {
            // Some writers leave the host out: `Nov 23 21:50:37 sshd[8148]: msg`; the token is the tag.
            s.pos = hostStart
        } else if host[0] == 0x5B, host[host.count - 1] == 0x5D, host.count > 2 {
            // `[sshd] msg`: a bracketed program name and no host.
            prefix.program = ByteScanner.string(UnsafeBufferPointer(rebasing: host[1..<(host.count - 1)]))
            prefix.messageStart = s.pos
            return prefix
        } else {
            // Host names and addresses only: anything else (`2025/02/06/[$LATEST]…` after an ISO
            // stamp in CloudWatch output) means this is not syslog.
            guard host.count <= 255, host.allSatisfy(isHostByte) else { return nil }
            // A log level where the host goes is an app's `%(asctime)s %(levelname)s …` line, whose
            // ISO stamp looks like rsyslog's: no host is named ERROR.
            // Bytes first: this runs for every syslog line, and almost no host is an uppercase word.
            if host.count >= 4, host.count <= 8, host.allSatisfy({ $0 >= 0x41 && $0 <= 0x5A }),
               Self.levelWords.contains(ByteScanner.string(host)) { return nil }
            prefix.hostname = ByteScanner.string(host)
        }
        if let n = repeatCount(s.rest) {
            prefix.repeated = n
            prefix.messageStart = s.pos
            return prefix
        }
        // The tag: `prog[pid]:` or `prog:`. A line without one keeps everything after the host.
        let tagStart = s.pos
        var end = s.pos
        while end < b.count, b[end] != 0x20 { end += 1 }
        if end > tagStart, b[end - 1] == 0x3A, end - tagStart > 1 {
            let tag = UnsafeBufferPointer(rebasing: b[tagStart..<(end - 1)])
            // `<ISO> START RequestId: …`, `REPORT RequestId: …`: a Lambda log exported from
            // CloudWatch, whose platform keyword looks like a host and `RequestId:` like a tag.
            if case .yearless = stamp {} else if ByteScanner.string(tag) == "RequestId", host.allSatisfy({ ($0 >= 0x41 && $0 <= 0x5A) || $0 == 0x5F }) {
                return nil
            }
            if tag.count > 2, tag[0] == 0x5B, tag[tag.count - 1] == 0x5D {
                prefix.program = ByteScanner.string(UnsafeBufferPointer(rebasing: tag[1..<(tag.count - 1)]))
            } else if tag.count >= 3, tag[tag.count - 1] == 0x5D, let open = tag.firstIndex(of: 0x5B), open > 0,
               let pid = ByteScanner.int(UnsafeBufferPointer(rebasing: tag[(open + 1)..<(tag.count - 1)])), pid >= 0 {
                prefix.program = ByteScanner.string(UnsafeBufferPointer(rebasing: tag[0..<open]))
                prefix.pid = Int(pid)
            } else {
                prefix.program = ByteScanner.string(tag)
            }
            // rsyslog adds one space after the tag unless the message has one (`sp-if-no-1st-sp`).
            prefix.messageStart = end < b.count ? end + 1 : end
        } else {
            // rsyslog's ISO file format always writes a tag; an ISO stamp, an address and free text
            // is another format (ALB connection logs), not untagged syslog.
            if case .yearless = stamp {} else { return nil }
            prefix.messageStart = tagStart
        }
        return prefix
    }

    private static func parse5424(_ s: inout ByteScanner, priority: Int?) -> SyslogPrefix? {
        let ts = s.token()
        guard let stamp = isoStamp(ts) else { return nil }
        let host = s.token(), app = s.token(), procid = s.token(), msgid = s.token()
        guard !host.isEmpty, !app.isEmpty, !procid.isEmpty, !msgid.isEmpty else { return nil }
        var prefix = SyslogPrefix(stamp: stamp, priority: priority, messageStart: s.pos)
        prefix.hostname = ByteScanner.optionalString(host)
        prefix.program = ByteScanner.optionalString(app)
        if let pid = ByteScanner.int(procid) { prefix.pid = Int(pid) } else if let p = ByteScanner.optionalString(procid) { prefix.msgid = p }
        if let m = ByteScanner.optionalString(msgid) { prefix.msgid = m }
        // Structured data: `-` or one or more `[id k="v"]` elements, `\]` escaped inside values.
        if s.peek() == 0x2D {
            s.pos += 1
        } else {
            let start = s.pos
            while s.peek() == 0x5B {
                var i = s.pos + 1
                while i < s.bytes.count, s.bytes[i] != 0x5D { i += s.bytes[i] == 0x5C ? 2 : 1 }
                guard i < s.bytes.count else { return nil }
                s.pos = i + 1
            }
            guard s.pos > start else { return nil }
            prefix.structuredData = ByteScanner.string(UnsafeBufferPointer(rebasing: s.bytes[start..<s.pos]))
        }
        _ = s.skip(0x20)
        // A UTF-8 byte-order mark may open the message.
        if s.peek() == 0xEF, s.peek(1) == 0xBB, s.peek(2) == 0xBF { s.pos += 3 }
        prefix.messageStart = s.pos
        return prefix
    }

    static let levelWords: Set<String> = ["DEBUG", "INFO", "NOTICE", "WARN", "WARNING", "ERROR", "CRITICAL", "FATAL", "TRACE"]

    /// `2025-02-06T05:32:45.123456+00:00`, `…Z`, `…+0000`, or without zone.
    static func isoStamp(_ token: UnsafeBufferPointer<UInt8>) -> Stamp? {
        guard token.count >= 19, token[10] == 0x54, let (wall, length) = PythonLogFormat.asctime(token, at: 0) else { return nil }
        var s = ByteScanner(token, pos: length)
        // rsyslog and journalctl always write a zone; a bare ISO stamp is another writer (`aws logs tail --format short`).
        if s.atEnd { return nil }
        if s.skip(0x5A) || s.skip(0x7A) { return s.atEnd ? .zoned(wall) : nil }
        guard let sign = s.peek(), sign == 0x2B || sign == 0x2D else { return nil }
        s.pos += 1
        guard let oh = s.digits(2) else { return nil }
        _ = s.skip(0x3A)
        guard let om = s.digits(2), s.atEnd, oh <= 14, om < 60 else { return nil }
        let offset = (sign == 0x2D ? -1 : 1) * (oh * 3600 + om * 60)
        return .zoned(wall - Int64(offset) * CivilTime.microsPerSecond)
    }

    /// journalctl `short-full`: `Thu 2025-02-06 05:32:45 UTC` (weekday, date, time, zone name or offset).
    /// Leaves the scanner after the stamp's trailing space; untouched when the line is not of this shape.
    static func shortFullStamp(_ s: inout ByteScanner) -> Stamp? {
        let start = s.pos
        guard s.remaining >= 24, let w0 = s.peek(), w0 >= 0x41, w0 <= 0x5A, s.peek(3) == 0x20,
              let d = s.peek(4), d >= 0x30, d <= 0x39 else { return nil }
        let weekday = String(decoding: UnsafeBufferPointer(rebasing: s.bytes[start..<(start + 3)]), as: UTF8.self)
        guard ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"].contains(weekday),
              let (wall, length) = PythonLogFormat.asctime(s.bytes, at: start + 4), s.bytes[start + 14] == 0x20 else { return nil }
        s.pos = start + 4 + length
        guard s.skip(0x20) else { s.pos = start; return nil }
        let zoneToken = s.token()
        guard !zoneToken.isEmpty, let zone = ZoneSpec(ByteScanner.string(zoneToken)) else { s.pos = start; return nil }
        return .zoned(zone.utc(fromLocal: wall))
    }

    /// `last message repeated 2 times` (sysklogd, rsyslog) and `--- last message repeated 2 times ---`
    /// (macOS, BSD).
    static func repeatCount(_ b: UnsafeBufferPointer<UInt8>) -> Int? {
        var s = ByteScanner(b)
        if s.skip(0x2D), s.skip(0x2D), s.skip(0x2D) { s.skipSpaces() } else { s.pos = 0 }
        let phrase = Array("last message repeated ".utf8)
        guard PythonLogFormat.hasPrefix(b, at: s.pos, phrase) else { return nil }
        s.pos += phrase.count
        var n = 0, digits = 0
        while let c = s.peek(), c >= 0x30, c <= 0x39, digits < 9 { n = n * 10 + Int(c - 0x30); digits += 1; s.pos += 1 }
        return digits > 0 ? n : nil
    }

    static func isHostByte(_ c: UInt8) -> Bool {
        (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A)
            || c == 0x2D || c == 0x2E || c == 0x5F || c == 0x3A || c == 0x25 || c >= 0x80
    }

    /// Severity names of the PRI's low three bits, as log levels.
    static func level(priority: Int) -> String {
        ["EMERG", "ALERT", "CRIT", "ERROR", "WARNING", "NOTICE", "INFO", "DEBUG"][priority & 7]
    }

    static let facilities = ["kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron",
                             "authpriv", "ftp", "ntp", "security", "console", "solaris-cron",
                             "local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7"]
}
