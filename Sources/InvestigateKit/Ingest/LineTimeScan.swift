import Foundation

/// Reads a line's time stamp without parsing the line, so that a question about a window can
/// skip the records of a long file that lie far outside it (`ParseProducer`). Two shapes only,
/// the ones long host logs begin with:
/// - the common log format's `[06/Feb/2025:14:32:10 +0900]` (nginx, gunicorn access): exact, its
///   offset is on the line;
/// - an ISO-like `2025-02-06 14:32:10` or `2025-02-06T14:32:10` among the first 48 bytes (Python
///   logging, gunicorn's error log, Flask): read as if UTC, so it can be off by the zone the
///   importer later applies, at most 15 hours (`zoneSlack`).
/// Anything else (no stamp, another shape) is nil: the line is parsed as usual.
public struct LineTimeScan: Sendable {
    /// How far a stamp read without its zone can be from the time the importer gives the record.
    static let zoneSlack: Int64 = 15 * 3_600_000_000

    public enum Shape: Sendable { case commonLog, isoLike }
    let shape: Shape
    /// Whether a record may span several lines (a traceback after its head): a line without a
    /// stamp then belongs to the record before it. Otherwise such a line is parsed on its own.
    let multiline: Bool

    public init(_ shape: Shape, multiline: Bool) {
        self.shape = shape
        self.multiline = multiline
    }

    /// The stamp (µs UTC) and whether it is exact (zone known from the line).
    func stamp(_ line: UnsafeRawBufferPointer) -> (time: Int64, exact: Bool)? {
        switch shape {
        case .commonLog: return Self.commonLog(line).map { ($0, true) }
        case .isoLike: return Self.isoLike(line).map { ($0, false) }
        }
    }

    private static func digits(_ b: UnsafeRawBufferPointer, _ at: Int, _ n: Int) -> Int? {
        guard at >= 0, at + n <= b.count else { return nil }
        var v = 0
        for i in at..<(at + n) {
            let c = b[i]
            guard c >= 0x30, c <= 0x39 else { return nil }
            v = v * 10 + Int(c - 0x30)
        }
        return v
    }

    private static func micros(_ y: Int, _ mo: Int, _ d: Int, _ h: Int, _ mi: Int, _ s: Int) -> Int64? {
        guard (1970...2100).contains(y), (1...12).contains(mo), (1...31).contains(d), h < 24, mi < 60, s < 61 else { return nil }
        return (CivilTime.daysFromCivil(year: y, month: mo, day: d) * 86_400 + Int64(h * 3600 + mi * 60 + s)) * 1_000_000
    }

    static let months: [[UInt8]] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"].map { Array($0.utf8) }

    /// `[dd/Mon/yyyy:HH:MM:SS ±hhmm]` within the first 200 bytes.
    static func commonLog(_ b: UnsafeRawBufferPointer) -> Int64? {
        let end = min(b.count, 200)
        var i = 0
        while i < end {
            if b[i] == 0x5B, i + 27 <= b.count, b[i + 3] == 0x2F, b[i + 7] == 0x2F, b[i + 12] == 0x3A, b[i + 21] == 0x20, b[i + 27] == 0x5D {
                let mon = [b[i + 4], b[i + 5], b[i + 6]]
                if let day = digits(b, i + 1, 2), let month = months.firstIndex(of: mon), let y = digits(b, i + 8, 4),
                   let h = digits(b, i + 13, 2), let mi = digits(b, i + 16, 2), let s = digits(b, i + 19, 2),
                   b[i + 22] == 0x2B || b[i + 22] == 0x2D, let oh = digits(b, i + 23, 2), let om = digits(b, i + 25, 2),
                   let local = micros(y, month + 1, day, h, mi, s) {
                    let offset = Int64(oh * 3600 + om * 60) * 1_000_000
                    return b[i + 22] == 0x2B ? local - offset : local + offset
                }
            }
            i += 1
        }
        return nil
    }

    /// `yyyy-mm-dd[ T]HH:MM:SS` starting within the first 48 bytes.
    static func isoLike(_ b: UnsafeRawBufferPointer) -> Int64? {
        let end = min(b.count, 48)
        var i = 0
        while i < end {
            if b[i] >= 0x30, b[i] <= 0x39, i + 19 <= b.count, b[i + 4] == 0x2D, b[i + 7] == 0x2D,
               b[i + 10] == 0x20 || b[i + 10] == 0x54, b[i + 13] == 0x3A, b[i + 16] == 0x3A,
               i == 0 || !(b[i - 1] >= 0x30 && b[i - 1] <= 0x39),
               let y = digits(b, i, 4), let mo = digits(b, i + 5, 2), let d = digits(b, i + 8, 2),
               let h = digits(b, i + 11, 2), let mi = digits(b, i + 14, 2), let s = digits(b, i + 17, 2) {
                return micros(y, mo, d, h, mi, s)
            }
            i += 1
        }
        return nil
    }
}

/// Decides line by line whether a record lies so far outside a question's span that it need not
/// be parsed: its stamp (`LineTimeScan`) is outside the span by more than the stamp's possible
/// error. A line without a stamp belongs to the record before it (a traceback's lines), so it
/// follows that record's decision.
struct OutsideLineSkipper {
    let scan: LineTimeScan
    let keep: ClosedRange<Int64>
    private var skipping = false
    /// Lines not parsed, and how many of them begin a record (carry a stamp).
    private(set) var skipped = 0
    private(set) var skippedRecords = 0
    /// The span the skipped records are known to reach: their stamps where exact, else the edge
    /// of `keep` they lie beyond (a stamp read without its zone is only known to be outside).
    private(set) var earliest: Int64?
    private(set) var latest: Int64?

    init(scan: LineTimeScan, keep: ClosedRange<Int64>) {
        self.scan = scan
        self.keep = keep
    }

    mutating func skips(_ line: UnsafeRawBufferPointer) -> Bool {
        var head = false
        if let (t, exact) = scan.stamp(line) {
            let slack = exact ? 0 : LineTimeScan.zoneSlack
            skipping = t < keep.lowerBound - slack || t > keep.upperBound + slack
            if skipping {
                head = true
                let known = exact ? t : (t < keep.lowerBound ? keep.lowerBound : keep.upperBound)
                earliest = min(earliest ?? known, known)
                latest = max(latest ?? known, known)
            }
        } else if !scan.multiline {
            skipping = false
        }
        if skipping {
            skipped += 1
            if head { skippedRecords += 1 }
        }
        return skipping
    }
}
