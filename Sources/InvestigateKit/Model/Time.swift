import Foundation

/// Calendar arithmetic on the proleptic Gregorian calendar without Foundation's `Calendar`, which is
/// far too slow for the parsing hot path. All event times are `Int64` microseconds since the Unix
/// epoch, UTC.
public enum CivilTime {
    public static let microsPerSecond: Int64 = 1_000_000

    /// Days since 1970-01-01 for a civil date (Howard Hinnant's `days_from_civil`).
    @inline(__always)
    public static func daysFromCivil(year: Int, month: Int, day: Int) -> Int64 {
        let y = Int64(month <= 2 ? year - 1 : year)
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let m = Int64(month)
        let doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + Int64(day) - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }

    /// The civil date of a day count (Hinnant's `civil_from_days`).
    public static func civilFromDays(_ z0: Int64) -> (year: Int, month: Int, day: Int) {
        let z = z0 + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
        let y = yoe + era * 400
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        return (Int(m <= 2 ? y + 1 : y), Int(m), Int(d))
    }

    /// Microseconds since the epoch for a wall-clock reading taken as UTC.
    @inline(__always)
    public static func micros(year: Int, month: Int, day: Int, hour: Int, minute: Int, second: Int, micro: Int = 0) -> Int64 {
        let days = daysFromCivil(year: year, month: month, day: day)
        let secs = days * 86_400 + Int64(hour * 3600 + minute * 60 + second)
        return secs * microsPerSecond + Int64(micro)
    }

    public static func isValid(year: Int, month: Int, day: Int, hour: Int, minute: Int, second: Int) -> Bool {
        // A 60th second is a leap second, which lands at hh:59:60 in any whole-hour zone; anywhere
        // else it is a bad stamp, not 00 of the next minute.
        guard (1...12).contains(month), day >= 1, hour >= 0, hour < 24, minute >= 0, minute < 60, second >= 0,
              second < 60 || (second == 60 && minute == 59) else { return false }
        return day <= daysInMonth(year: year, month: month)
    }

    public static func daysInMonth(year: Int, month: Int) -> Int {
        switch month {
        case 2: return (year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)) ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }

    /// 1-based month of a three-letter English month name given as bytes (`Jan` … `Dec`), case-sensitive
    /// on the first letter as every log writer emits it.
    @inline(__always)
    public static func month(_ a: UInt8, _ b: UInt8, _ c: UInt8) -> Int? {
        switch (a, b, c) {
        case (74, 97, 110): return 1   // Jan
        case (70, 101, 98): return 2   // Feb
        case (77, 97, 114): return 3   // Mar
        case (65, 112, 114): return 4  // Apr
        case (77, 97, 121): return 5   // May
        case (74, 117, 110): return 6  // Jun
        case (74, 117, 108): return 7  // Jul
        case (65, 117, 103): return 8  // Aug
        case (83, 101, 112): return 9  // Sep
        case (79, 99, 116): return 10  // Oct
        case (78, 111, 118): return 11 // Nov
        case (68, 101, 99): return 12  // Dec
        default: return nil
        }
    }

    public static func month(named name: Substring) -> Int? {
        let u = Array(name.utf8)
        guard u.count == 3 else { return nil }
        return month(u[0], u[1], u[2])
    }

    public static let monthNames = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
}

/// The instants an event may carry, in one place: importers reject a record whose stamp falls
/// outside (`RecordSink.emit`), so every stored time, and every sum or difference of stored times,
/// durations and the correlation's margins, stays far inside `Int64`.
///
/// The range is the years 1970 to 2100, UTC: from the Unix epoch (a device without a clock starts
/// there, and its records are kept) to well past any log this tool will read. A stamp outside is
/// a typo or garbage (`2225`, a year-less stamp given a wrong year), and is kept as a rejected line
/// with the reason, never dropped.
public enum EventTime {
    public static let firstYear = 1970
    public static let lastYear = 2100

    /// `firstYear`-01-01T00:00:00Z up to, not including, (`lastYear` + 1)-01-01T00:00:00Z.
    public static let accepted: Range<Int64> =
        CivilTime.micros(year: firstYear, month: 1, day: 1, hour: 0, minute: 0, second: 0)
        ..< CivilTime.micros(year: lastYear + 1, month: 1, day: 1, hour: 0, minute: 0, second: 0)

    /// Longest duration a record may state (the accepted range's length): anything longer cannot
    /// be measured between two accepted stamps.
    public static var maxDuration: Int64 { accepted.upperBound - accepted.lowerBound }

    /// Why a stamp cannot be accepted, or nil when it can. Total: any `Int64` gets an answer.
    public static func rejection(_ micros: Int64) -> String? {
        guard !accepted.contains(micros) else { return nil }
        return "timestamp out of range (year \(year(micros))): \(TimeFormat.isoUTC(micros)) is outside the accepted years \(firstYear) to \(lastYear) UTC"
    }

    /// The UTC year of an instant (any `Int64`).
    public static func year(_ micros: Int64) -> Int {
        var days = micros / (86_400 * CivilTime.microsPerSecond)
        if micros % (86_400 * CivilTime.microsPerSecond) < 0 { days -= 1 }
        return CivilTime.civilFromDays(days).year
    }
}

extension Int64 {
    /// `self + other`, held at `Int64.min` / `Int64.max` instead of trapping: for bounds of time
    /// windows (`t - margin`, `t + slab + margin`) whatever `t` a database holds.
    @inline(__always)
    public func addingClamped(_ other: Int64) -> Int64 {
        let (sum, overflow) = addingReportingOverflow(other)
        return overflow ? (other > 0 ? .max : .min) : sum
    }

    /// `self - other`, held at `Int64.min` / `Int64.max` instead of trapping.
    @inline(__always)
    public func subtractingClamped(_ other: Int64) -> Int64 {
        let (difference, overflow) = subtractingReportingOverflow(other)
        return overflow ? (other > 0 ? .min : .max) : difference
    }
}

/// A time zone as users and logs give it: a fixed offset (`+0900`, `UTC`) or an IANA name
/// (`Asia/Tokyo`), whose offset may change with daylight saving time.
public enum ZoneSpec: Sendable, Equatable, CustomStringConvertible {
    case fixed(seconds: Int)
    case named(String)

    public static let utc = ZoneSpec.fixed(seconds: 0)

    public var isNamed: Bool { if case .named = self { return true } else { return false } }

    /// Parses `UTC`, `Z`, `+09:00`, `+0900`, `-5`, `UTC+9`, `JST`-style names known to Foundation, or an
    /// IANA identifier. Returns nil for anything else.
    public init?(_ text: String) {
        let t = text.trimmingCharacters(in: .whitespaces)
        if t.isEmpty { return nil }
        let upper = t.uppercased()
        if upper == "UTC" || upper == "Z" || upper == "GMT" { self = .utc; return }
        var rest = Substring(t)
        if upper.hasPrefix("UTC") || upper.hasPrefix("GMT") { rest = rest.dropFirst(3) }
        if let first = rest.first, first == "+" || first == "-" {
            let sign = first == "-" ? -1 : 1
            let digits = rest.dropFirst().replacingOccurrences(of: ":", with: "")
            guard !digits.isEmpty, digits.allSatisfy(\.isASCII), digits.allSatisfy(\.isNumber), digits.count <= 4 else { return nil }
            let hours: Int, minutes: Int
            if digits.count <= 2 { hours = Int(digits)!; minutes = 0 } else {
                hours = Int(digits.dropLast(2))!; minutes = Int(digits.suffix(2))!
            }
            guard hours <= 14, minutes < 60 else { return nil }
            self = .fixed(seconds: sign * (hours * 3600 + minutes * 60))
            return
        }
        if let zone = TimeZone(identifier: t) {
            self = .named(zone.identifier)
            return
        }
        if let zone = TimeZone(abbreviation: upper) {
            self = .fixed(seconds: zone.secondsFromGMT())
            return
        }
        return nil
    }

    /// The machine's own zone (used only when nothing better is known, and always said).
    public static var system: ZoneSpec {
        let id = TimeZone.current.identifier
        return id == "GMT" || id == "UTC" ? .utc : .named(id)
    }

    /// Offset from UTC, in seconds, at the given UTC instant.
    public func offset(atUTC micros: Int64) -> Int {
        switch self {
        case .fixed(let s): return s
        case .named(let id):
            guard let zone = TimeZone(identifier: id) else { return 0 }
            return zone.secondsFromGMT(for: Date(timeIntervalSince1970: Double(micros) / 1e6))
        }
    }

    /// Converts a wall-clock reading in this zone (expressed as if it were UTC) to UTC.
    public func utc(fromLocal localMicros: Int64) -> Int64 {
        switch self {
        case .fixed(let s): return localMicros - Int64(s) * CivilTime.microsPerSecond
        case .named:
            // Two passes settle the offset around DST transitions.
            let guess = localMicros - Int64(offset(atUTC: localMicros)) * CivilTime.microsPerSecond
            return localMicros - Int64(offset(atUTC: guess)) * CivilTime.microsPerSecond
        }
    }

    public var description: String {
        switch self {
        case .fixed(let s): return s == 0 ? "UTC" : TimeFormat.offsetString(seconds: s)
        case .named(let id): return id
        }
    }
}

/// Rendering of event times. Everything inside is UTC; these show it in the user's zone.
public enum TimeFormat {
    /// `+0900` style.
    public static func offsetString(seconds: Int, colon: Bool = false) -> String {
        let sign = seconds < 0 ? "-" : "+"
        let a = abs(seconds)
        let h = a / 3600, m = (a % 3600) / 60
        return colon ? "\(sign)\(pad2(h)):\(pad2(m))" : "\(sign)\(pad2(h))\(pad2(m))"
    }

    @inline(__always) static func pad2(_ v: Int) -> String { v < 10 ? "0\(v)" : "\(v)" }
    @inline(__always) static func pad(_ v: Int, _ width: Int) -> String {
        let s = String(v)
        return s.count >= width ? s : String(repeating: "0", count: width - s.count) + s
    }

    /// ISO-8601 UTC with the precision the value has: `2025-02-06T05:32:45Z`, `.136Z` or `.136123Z`.
    public static func isoUTC(_ micros: Int64) -> String {
        let (date, time, frac) = split(micros)
        return "\(date)T\(time)\(frac.isEmpty ? "" : "." + frac)Z"
    }

    /// ISO-8601 UTC always with milliseconds, for machine output.
    public static func isoUTCMillis(_ micros: Int64) -> String {
        let (date, time, _) = split(micros)
        let ms = Int(((micros % 1_000_000) + 1_000_000) % 1_000_000 / 1000)
        return "\(date)T\(time).\(pad(ms, 3))Z"
    }

    /// `2025-02-06 14:32:45.136 +0900` in the given zone, for people.
    public static func display(_ micros: Int64, zone: ZoneSpec, millis: Bool = true) -> String {
        let off = zone.offset(atUTC: micros)
        let local = micros + Int64(off) * CivilTime.microsPerSecond
        let (date, time, _) = split(local)
        let ms = Int(((local % 1_000_000) + 1_000_000) % 1_000_000 / 1000)
        return "\(date) \(time)\(millis ? "." + pad(ms, 3) : "") \(offsetString(seconds: off))"
    }

    /// `14:32:45` in the given zone.
    public static func clock(_ micros: Int64, zone: ZoneSpec) -> String {
        let off = zone.offset(atUTC: micros)
        return split(micros + Int64(off) * CivilTime.microsPerSecond).time
    }

    static func split(_ micros: Int64) -> (date: String, time: String, frac: String) {
        var secs = micros / CivilTime.microsPerSecond
        var us = micros % CivilTime.microsPerSecond
        if us < 0 { us += CivilTime.microsPerSecond; secs -= 1 }
        var days = secs / 86_400
        var sod = secs % 86_400
        if sod < 0 { sod += 86_400; days -= 1 }
        let (y, m, d) = CivilTime.civilFromDays(days)
        let date = "\(pad(y, 4))-\(pad2(m))-\(pad2(d))"
        let time = "\(pad2(Int(sod / 3600))):\(pad2(Int(sod % 3600 / 60))):\(pad2(Int(sod % 60)))"
        let frac: String
        if us == 0 { frac = "" } else if us % 1000 == 0 { frac = pad(Int(us / 1000), 3) } else { frac = pad(Int(us), 6) }
        return (date, time, frac)
    }
}

/// Parses the times users type: `2025-02-06 14:32`, `2025-02-06T14:32:05`, with an optional zone
/// suffix (`Z`, `+09:00`), and durations such as `90s`, `5m`, `2h`.
public enum UserTime {
    public static func parse(_ text: String, zone: ZoneSpec) -> Int64? {
        var t = text.trimmingCharacters(in: .whitespaces)
        var explicitZone: ZoneSpec?
        if t.hasSuffix("Z") || t.hasSuffix("z") { explicitZone = .utc; t.removeLast() }
        else if let r = t.range(of: #"[+-]\d{2}:?\d{2}$"#, options: .regularExpression), t[r.lowerBound...].count <= 6,
                t.distance(from: t.startIndex, to: r.lowerBound) >= 10 {
            explicitZone = ZoneSpec(String(t[r]))
            t = String(t[..<r.lowerBound]).trimmingCharacters(in: .whitespaces)
        }
        t = t.replacingOccurrences(of: "T", with: " ")
        let parts = t.split(separator: " ", omittingEmptySubsequences: true)
        guard let datePart = parts.first else { return nil }
        let d = datePart.split(separator: "-").compactMap { Int($0) }
        guard d.count == 3 else { return nil }
        var h = 0, mi = 0, s = 0, us = 0
        if parts.count > 1 {
            let tp = parts[1].split(separator: ":")
            guard tp.count >= 2, tp.count <= 3, let hh = Int(tp[0]), let mm = Int(tp[1]) else { return nil }
            h = hh; mi = mm
            if tp.count == 3 {
                let sec = tp[2].split(separator: ".", maxSplits: 1)
                guard let ss = Int(sec[0]) else { return nil }
                s = ss
                if sec.count == 2 {
                    let frac = String(sec[1].prefix(6))
                    guard let f = Int(frac) else { return nil }
                    us = f * Int(pow(10.0, Double(6 - frac.count)))
                }
            }
        }
        // Years of four digits at most: beyond, the microseconds would overflow.
        guard parts.count <= 2, (0...9999).contains(d[0]), CivilTime.isValid(year: d[0], month: d[1], day: d[2], hour: h, minute: mi, second: s)
        else { return nil }
        let local = CivilTime.micros(year: d[0], month: d[1], day: d[2], hour: h, minute: mi, second: s, micro: us)
        return (explicitZone ?? zone).utc(fromLocal: local)
    }

    /// `90s`, `5m`, `2h`, `1d`, `1m30s`, or a bare number of seconds → microseconds. Nil beyond
    /// `EventTime.maxDuration` either way (and for `inf`, `nan`): no window can be wider than the
    /// accepted time range, and a time plus or minus it stays far inside `Int64`.
    public static func duration(_ text: String) -> Int64? {
        let t = text.trimmingCharacters(in: .whitespaces).lowercased()
        func micros(_ seconds: Double) -> Int64? {
            let v = seconds * 1e6
            guard v.isFinite, v.magnitude <= Double(EventTime.maxDuration) else { return nil }
            return Int64(v)
        }
        if let n = Double(t) { return micros(n) }
        var total: Double = 0
        var number = ""
        var sawUnit = false
        for ch in t {
            if ch.isNumber || ch == "." { number.append(ch); continue }
            guard let v = Double(number) else { return nil }
            switch ch {
            case "s": total += v
            case "m": total += v * 60
            case "h": total += v * 3600
            case "d": total += v * 86_400
            default: return nil
            }
            number = ""
            sawUnit = true
        }
        guard number.isEmpty, sawUnit else { return nil }
        return micros(total)
    }
}
