import Foundation

/// A broken-down wall-clock time. The simulator keeps its own calendar code on purpose: it must not
/// share the importers' time handling (or its bugs).
public struct WallTime: Equatable {
    public var year: Int, month: Int, day: Int, hour: Int, minute: Int, second: Int, microsecond: Int
    /// Offset from UTC in seconds of the clock that shows this time.
    public var offset: Int
}

/// Calendar arithmetic and every timestamp shape the modelled layers write. Times are µs since the
/// epoch, UTC.
public enum SimClock {
    public static let microsPerSecond: Int64 = 1_000_000
    public static let microsPerDay: Int64 = 86_400_000_000

    /// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
    public static func days(year: Int, month: Int, day: Int) -> Int64 {
        let y = Int64(month <= 2 ? year - 1 : year)
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let m = Int64(month)
        let doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + Int64(day) - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }

    static func civil(days z0: Int64) -> (Int, Int, Int) {
        let z = z0 + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        return (Int(yoe + era * 400 + (m <= 2 ? 1 : 0)), Int(m), Int(d))
    }

    public static func wall(_ micros: Int64, offset: Int = 0) -> WallTime {
        let local = micros + Int64(offset) * microsPerSecond
        var day = local / microsPerDay
        var rest = local % microsPerDay
        if rest < 0 { rest += microsPerDay; day -= 1 }
        let (y, m, d) = civil(days: day)
        let seconds = Int(rest / microsPerSecond)
        return WallTime(year: y, month: m, day: d, hour: seconds / 3600, minute: seconds / 60 % 60,
                        second: seconds % 60, microsecond: Int(rest % microsPerSecond), offset: offset)
    }

    public static func micros(year: Int, month: Int, day: Int, hour: Int = 0, minute: Int = 0, second: Int = 0,
                              offset: Int = 0) -> Int64 {
        (days(year: year, month: month, day: day) * 86_400 + Int64(hour * 3600 + minute * 60 + second - offset))
            * microsPerSecond
    }

    /// Parses `YYYY-MM-DDTHH:MM[:SS]` followed by `Z` or `±HH:MM` (command-line start times).
    public static func parseISO(_ text: String) -> Int64? {
        let chars = Array(text.utf8)
        func number(_ from: Int, _ count: Int) -> Int? {
            guard from + count <= chars.count else { return nil }
            var n = 0
            for c in chars[from..<(from + count)] {
                guard c >= 48, c <= 57 else { return nil }
                n = n * 10 + Int(c - 48)
            }
            return n
        }
        guard let y = number(0, 4), let mo = number(5, 2), let d = number(8, 2), let h = number(11, 2),
              let mi = number(14, 2), (1...12).contains(mo), (1...31).contains(d), h < 24, mi < 60 else { return nil }
        var index = 16
        var s = 0
        if index < chars.count, chars[index] == UInt8(ascii: ":") {
            guard let sec = number(17, 2), sec < 61 else { return nil }
            s = sec
            index = 19
        }
        var offset = 0
        if index < chars.count {
            switch chars[index] {
            case UInt8(ascii: "Z"): guard index + 1 == chars.count else { return nil }
            case UInt8(ascii: "+"), UInt8(ascii: "-"):
                guard let oh = number(index + 1, 2), let om = number(index + 4, 2), index + 6 == chars.count else { return nil }
                offset = (oh * 3600 + om * 60) * (chars[index] == UInt8(ascii: "-") ? -1 : 1)
            default: return nil
            }
        }
        return micros(year: y, month: mo, day: d, hour: h, minute: mi, second: s, offset: offset)
    }

    // MARK: - Shapes

    static let monthNames = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]

    static func pad(_ value: Int, _ width: Int) -> String {
        let s = String(value)
        return s.count >= width ? s : String(repeating: "0", count: width - s.count) + s
    }

    static func offsetText(_ offset: Int, colon: Bool = false) -> String {
        let sign = offset < 0 ? "-" : "+"
        let a = abs(offset)
        return sign + pad(a / 3600, 2) + (colon ? ":" : "") + pad(a / 60 % 60, 2)
    }

    /// `2025-02-06T05:32:45.186641Z` (ALB).
    public static func isoMicros(_ t: Int64) -> String {
        let w = wall(t)
        return "\(pad(w.year, 4))-\(pad(w.month, 2))-\(pad(w.day, 2))T\(pad(w.hour, 2)):\(pad(w.minute, 2)):\(pad(w.second, 2)).\(pad(w.microsecond, 6))Z"
    }

    /// `2025-02-06T05:32:45.186Z` (CloudWatch exports, Lambda, truth.jsonl).
    public static func isoMillis(_ t: Int64) -> String {
        let w = wall(t)
        return "\(pad(w.year, 4))-\(pad(w.month, 2))-\(pad(w.day, 2))T\(pad(w.hour, 2)):\(pad(w.minute, 2)):\(pad(w.second, 2)).\(pad(w.microsecond / 1000, 3))Z"
    }

    /// `06/Feb/2025:14:32:45 +0900` (nginx `$time_local`, API Gateway `$context.requestTime`).
    public static func clf(_ t: Int64, offset: Int) -> String {
        let w = wall(t, offset: offset)
        return "\(pad(w.day, 2))/\(monthNames[w.month - 1])/\(pad(w.year, 4)):\(pad(w.hour, 2)):\(pad(w.minute, 2)):\(pad(w.second, 2)) \(offsetText(offset))"
    }

    /// `2025/02/06 14:32:45` (nginx error log: local, no zone).
    public static func nginxError(_ t: Int64, offset: Int) -> String {
        let w = wall(t, offset: offset)
        return "\(pad(w.year, 4))/\(pad(w.month, 2))/\(pad(w.day, 2)) \(pad(w.hour, 2)):\(pad(w.minute, 2)):\(pad(w.second, 2))"
    }

    /// `Feb  6 05:32:45` (RFC 3164 as rsyslog's traditional file format writes it: space-padded day).
    public static func syslog(_ t: Int64, offset: Int) -> String {
        let w = wall(t, offset: offset)
        let day = w.day < 10 ? " \(w.day)" : "\(w.day)"
        return "\(monthNames[w.month - 1]) \(day) \(pad(w.hour, 2)):\(pad(w.minute, 2)):\(pad(w.second, 2))"
    }

    /// `[2025-02-06 14:32:45 +0900]` (gunicorn error log).
    public static func gunicorn(_ t: Int64, offset: Int) -> String {
        let w = wall(t, offset: offset)
        return "[\(pad(w.year, 4))-\(pad(w.month, 2))-\(pad(w.day, 2)) \(pad(w.hour, 2)):\(pad(w.minute, 2)):\(pad(w.second, 2)) \(offsetText(offset))]"
    }

    /// `2025-02-06 14:32:45,136` (Python logging `asctime`: local, no zone).
    public static func python(_ t: Int64, offset: Int) -> String {
        let w = wall(t, offset: offset)
        return "\(pad(w.year, 4))-\(pad(w.month, 2))-\(pad(w.day, 2)) \(pad(w.hour, 2)):\(pad(w.minute, 2)):\(pad(w.second, 2)),\(pad(w.microsecond / 1000, 3))"
    }

    /// `2025-02-06` in the given zone.
    public static func date(_ t: Int64, offset: Int) -> String {
        let w = wall(t, offset: offset)
        return "\(pad(w.year, 4))-\(pad(w.month, 2))-\(pad(w.day, 2))"
    }

    /// `2025/02/06/05/30` (WAF S3 folders) or `2025/02/06` (ALB, Lambda stream names).
    public static func slashed(_ t: Int64, withHourMinute: Bool) -> String {
        let w = wall(t)
        let d = "\(pad(w.year, 4))/\(pad(w.month, 2))/\(pad(w.day, 2))"
        return withHourMinute ? d + "/\(pad(w.hour, 2))/\(pad(w.minute, 2))" : d
    }

    /// `20250206T0530Z` (S3 object names).
    public static func compact(_ t: Int64) -> String {
        let w = wall(t)
        return "\(pad(w.year, 4))\(pad(w.month, 2))\(pad(w.day, 2))T\(pad(w.hour, 2))\(pad(w.minute, 2))Z"
    }

    /// Seconds with millisecond resolution: `0.023` (nginx `$request_time`, ALB processing times).
    public static func seconds(_ micros: Int64) -> String {
        let ms = max(0, (micros + 500) / 1000)
        return "\(ms / 1000).\(pad(Int(ms % 1000), 3))"
    }

    /// Milliseconds with two decimals: `15.74` (Lambda REPORT).
    public static func millis2(_ micros: Int64) -> String {
        let cs = max(0, (micros + 5) / 10)
        return "\(cs / 100).\(pad(Int(cs % 100), 2))"
    }
}
