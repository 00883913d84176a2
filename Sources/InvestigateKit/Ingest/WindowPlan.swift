import Foundation

/// Which files a question about a time window needs, known before reading them: S3 keys and daily
/// file names carry the time their records were written, so a file whose stamp lies far from the
/// window holds nothing the answer could use. Files without such a stamp are always read.
///
/// Stamps understood (UTC unless the name says otherwise):
/// - AWS delivery stamps in object names: ALB/NLB `…_20250206T0525Z_…` (the end of a 5-minute
///   interval), WAF `…_20250206T0530Z_…`, CloudFront `E2…​.2025-02-06-05.…` (the hour), CloudTrail
///   `…_CloudTrail_<region>_20250206T0525Z_…` (15 minutes before it, and read for an hour after);
/// - S3 prefixes `…/YYYY/MM/DD/HH/mm/` (WAF), `…/YYYY/MM/DD/HH/` (Firehose) and
///   `…/YYYY/MM/DD/` (ALB, CloudWatch exports, Lambda streams): the day or hour;
/// - daily file names `2025-02-06.log`, `app-2025-02-06.log.gz`: the whole day, in any zone
///   (widened by 14 hours either side).
public enum WindowPlan {
    /// How far a file's records may lie from its stamp: delivery intervals (5 minutes, an hour),
    /// delivery delay, requests that last minutes, clock offsets between layers.
    public static let margin: Int64 = 20 * 60 * 1_000_000

    /// The span (µs UTC) a file's records can fall in, from its path; nil when the path says nothing.
    public static func span(ofPath path: String) -> ClosedRange<Int64>? {
        let name = (path as NSString).lastPathComponent
        // CloudTrail `…_CloudTrail_<region>_20250206T0525Z_…json.gz`: delivered within about 15 minutes
        // of the calls it holds; a change is context for the answers of the hour after it
        // (`ChangeContext.lookback`), so a window that late still reads the file.
        if name.contains("_CloudTrail_"), let m = match(awsDeliveryStamp, name),
           let t = utc(m[0], m[1], m[2], m[3], m[4]) {
            return (t - 15 * 60_000_000 - margin)...(t + ChangeContext.lookback + margin)
        }
        // `_20250206T0525Z_`: a delivery stamp.
        if let m = match(awsDeliveryStamp, name), let t = utc(m[0], m[1], m[2], m[3], m[4]) {
            return (t - 5 * 60_000_000 - margin)...(t + 5 * 60_000_000 + margin)
        }
        // CloudFront `DIST.2025-02-06-05.unique.gz`: one hour.
        if let m = match(cloudFrontHour, name), let t = utc(m[0], m[1], m[2], m[3], 0) {
            return (t - margin)...(t + 3_600_000_000 + margin)
        }
        // S3 date prefixes in the directories.
        let dir = (path as NSString).deletingLastPathComponent
        if let m = match(minuteFolder, dir), let t = utc(m[0], m[1], m[2], m[3], m[4]) {
            return (t - margin)...(t + 5 * 60_000_000 + margin)
        }
        if let m = match(hourFolder, dir), let t = utc(m[0], m[1], m[2], m[3], 0) {
            return (t - margin)...(t + 3_600_000_000 + margin)
        }
        if let m = match(dayFolder, dir), let t = utc(m[0], m[1], m[2], 0, 0) {
            return (t - margin)...(t + 86_400_000_000 + margin)
        }
        // A log stream named after the day it began (`2025/02/06/[$LATEST]…`): its environment
        // may live on past midnight.
        if let m = match(dayFolderFile, dir), let t = utc(m[0], m[1], m[2], 0, 0) {
            return (t - margin)...(t + 2 * 86_400_000_000 + margin)
        }
        // A daily file: the day in whatever zone the writer used.
        if let m = match(dailyName, name), let t = utc(m[0], m[1], m[2], 0, 0) {
            let zones: Int64 = 14 * 3_600_000_000
            return (t - zones - margin)...(t + 86_400_000_000 + zones + margin)
        }
        return nil
    }

    /// Why a file is not read for a window, or nil when it may hold records in it.
    /// Whether the spans of time stored of a file (its versions read around earlier windows)
    /// together hold `needed`; never when the whole file is needed (nil).
    static func spans(_ stored: [ClosedRange<Int64>], hold needed: ClosedRange<Int64>?) -> Bool {
        guard let needed else { return false }
        var reached = needed.lowerBound
        for span in stored.sorted(by: { $0.lowerBound < $1.lowerBound }) {
            if span.lowerBound > reached { break }
            if span.upperBound >= reached { reached = span.upperBound }
            if reached >= needed.upperBound { return true }
        }
        return false
    }

    public static func reasonToSkip(path: String, window: ClosedRange<Int64>) -> String? {
        guard let span = span(ofPath: path), !span.overlaps(window) else { return nil }
        return "outside the window by its name's time stamp (\(TimeFormat.isoUTC(span.lowerBound + margin)) to \(TimeFormat.isoUTC(span.upperBound - margin))); read when a question needs it"
    }

    static let prefix = "outside the window by"

    /// Whether a run left this file unread because of the window.
    public static func isOutsideWindow(_ f: FileResult) -> Bool { f.status == .skipped && (f.skipped?.hasPrefix(prefix) ?? false) }

    private static func regex(_ pattern: String) -> NSRegularExpression {
        // The patterns are constants of this file; a typo is a programming error caught by the tests.
        try! NSRegularExpression(pattern: pattern)
    }
    // The name and folder patterns, compiled once: a question over an archive of thousands of S3
    // objects matched each of them per file, and compiling them per call cost more than reading
    // the files the window needs.
    private static let awsDeliveryStamp = regex(#"_(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})Z_"#)
    private static let cloudFrontHour = regex(#"\.(\d{4})-(\d{2})-(\d{2})-(\d{2})\.[A-Za-z0-9]+(\.gz)?$"#)
    private static let minuteFolder = regex(#"/(\d{4})/(\d{2})/(\d{2})/(\d{2})/(\d{2})$"#)
    private static let hourFolder = regex(#"/(\d{4})/(\d{2})/(\d{2})/(\d{2})$"#)
    private static let dayFolder = regex(#"/(\d{4})/(\d{2})/(\d{2})$"#)
    private static let dayFolderFile = regex(#"/(\d{4})/(\d{2})/(\d{2})/[^/]+$"#)
    private static let dailyName = regex(#"(?:^|[^0-9])(\d{4})-(\d{2})-(\d{2})(?:\.log|\.txt|\.json|\.gz|$)"#)

    static func match(_ re: NSRegularExpression, _ text: String) -> [Int]? {
        guard let m = re.firstMatch(in: text, range: NSRange(text.startIndex..., in: text)) else { return nil }
        var out: [Int] = []
        for i in 1..<m.numberOfRanges {
            let r = m.range(at: i)
            guard r.location != NSNotFound, let range = Range(r, in: text), let v = Int(text[range]) else { continue }
            out.append(v)
        }
        return out.count >= 3 ? out + Array(repeating: 0, count: max(0, 5 - out.count)) : nil
    }

    static func utc(_ y: Int, _ mo: Int, _ d: Int, _ h: Int, _ mi: Int) -> Int64? {
        guard (1970...2100).contains(y), (1...12).contains(mo), (1...31).contains(d), (0...23).contains(h), (0...59).contains(mi) else { return nil }
        let days = CivilTime.daysFromCivil(year: y, month: mo, day: d)
        return (days * 86_400 + Int64(h * 3600 + mi * 60)) * 1_000_000
    }

    // MARK: - Rotated files

    /// A recognised file, for bounding by its rotated siblings.
    public struct Candidate: Sendable {
        public var path: String
        public var importer: String
        public var writtenLive: Bool
        /// Its first record's time, from the detection sample.
        public var first: Int64?
    }

    /// The first record's time among a file's leading lines, as its importer reads them.
    static func firstStamp(_ importer: any Importer, _ lines: [[UInt8]], path: String, options: ImportOptions,
                           registry: ImporterRegistry) -> Int64? {
        // Year-less syslog stamps: read in the year that puts them nearest the window (a rotated
        // syslog holds days or weeks, never half a year), unless `--year` says which.
        if importer.id == "syslog", options.year == nil, let window = options.window {
            let year = CivilTime.civilFromDays(window.lowerBound / 86_400_000_000).year
            var nearest: Int64?
            for candidate in [year - 1, year, year + 1] {
                var o = options
                o.year = candidate
                guard let t = stamp(importer, lines, path: path, options: o, registry: registry) else { continue }
                if nearest == nil || abs(t - window.lowerBound) < abs(nearest! - window.lowerBound) { nearest = t }
            }
            return nearest
        }
        return stamp(importer, lines, path: path, options: options, registry: registry)
    }

    private static func stamp(_ importer: any Importer, _ lines: [[UInt8]], path: String, options: ImportOptions,
                              registry: ImporterRegistry) -> Int64? {
        let context = ParseContext(path: path, options: options, registry: registry)
        guard var parser = try? importer.makeParser(context) else { return nil }
        var sink = RecordSink()
        for (i, line) in lines.enumerated() {
            Line.with(String(decoding: line, as: UTF8.self), number: i + 1) { parser.consume($0, into: &sink) }
        }
        parser.finish(into: &sink)
        return sink.events.compactMap(\.time).min()
    }

    /// How far a file's first stamp can be off for its format: CLF stamps carry their zone; other
    /// host logs may be read in a zone learnt later in the run, up to 14 hours away.
    static func slack(_ importer: String) -> Int64 {
        ["nginx-access", "gunicorn-access"].contains(importer) ? margin : 15 * 3_600_000_000
    }

    /// `access.log.2.gz` → (`dir/access.log`, 2); `access.log` → (`dir/access.log`, 0).
    static func rotation(_ path: String) -> (family: String, number: Int) {
        var name = (path as NSString).lastPathComponent
        let dir = (path as NSString).deletingLastPathComponent
        if name.hasSuffix(".gz") { name.removeLast(3) }
        if let dot = name.lastIndex(of: "."), let n = Int(name[name.index(after: dot)...]), n >= 0, n < 10_000 {
            return (dir + "/" + String(name[..<dot]), n)
        }
        return (dir + "/" + name, 0)
    }

    /// Files of a windowed question that cannot hold the window, by rotation order: logs are
    /// written in time order, so a file whose first record is after the window (less the slack of
    /// its stamps), or whose newer sibling's first record is before it, holds none of it. Only
    /// formats a process appends to on a host count (AWS deliveries are not in order), and not
    /// syslog (its stamps have no year until the run has read on).
    public static func rotationSkips(_ files: [Candidate], window: ClosedRange<Int64>) -> [String: String] {
        var out: [String: String] = [:]
        let eligible = files.filter { $0.writtenLive && $0.first != nil }
        for f in eligible where f.first! - slack(f.importer) > window.upperBound {
            out[f.path] = prefix + " its first record (\(TimeFormat.isoUTC(f.first!)), after the window); read when a question needs it"
        }
        let families = Dictionary(grouping: eligible) { rotation($0.path).family }
        for (_, siblings) in families where siblings.count > 1 {
            let newestFirst = siblings.sorted { rotation($0.path).number < rotation($1.path).number }
            for (i, f) in newestFirst.enumerated() where i > 0 && out[f.path] == nil {
                let newer = newestFirst[i - 1]
                // Only a strictly newer sibling of the same format bounds it.
                guard newer.importer == f.importer, rotation(newer.path).number < rotation(f.path).number,
                      let next = newer.first, next + slack(f.importer) < window.lowerBound else { continue }
                out[f.path] = prefix + " rotation order (it ends before \((newer.path as NSString).lastPathComponent) begins at \(TimeFormat.isoUTC(next)), before the window); read when a question needs it"
            }
        }
        return out
    }
}
