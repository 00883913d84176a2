import Foundation

/// A logical log destination (one writer process or delivery channel). It picks the file each line
/// goes to from the line's write time; lines reach a stream in write-time order.
protocol LogStream: AnyObject {
    func file(for writeTime: Int64, tree: OutputTree) throws -> LogFile
    func finish(tree: OutputTree) throws
}

/// S3 objects that each cover a fixed window (WAF: 5-minute files; ALB: one file per node per
/// 5 minutes). A window's object is complete once a later window starts.
final class WindowedObjectStream: LogStream {
    let window: Int64
    let name: (Int64) -> String
    private var current: (start: Int64, file: LogFile)?

    /// `name` gets the window's start (µs UTC) and returns the object's relative path.
    init(window: Int64, name: @escaping (Int64) -> String) {
        self.window = window
        self.name = name
    }

    func file(for writeTime: Int64, tree: OutputTree) throws -> LogFile {
        let start = writeTime - ((writeTime % window) + window) % window
        if let current, current.start == start { return current.file }
        try current?.file.close()
        let file = try tree.create(name(start), gzip: true)
        current = (start, file)
        return file
    }

    func finish(tree: OutputTree) throws { try current?.file.close() }
}

/// One file for the whole run (a CloudWatch Logs export object per log stream).
final class SingleFileStream: LogStream {
    let relativePath: String
    let gzip: Bool
    private var file: LogFile?

    init(_ relativePath: String, gzip: Bool) {
        self.relativePath = relativePath
        self.gzip = gzip
    }

    func file(for writeTime: Int64, tree: OutputTree) throws -> LogFile {
        if let file { return file }
        let created = try tree.create(relativePath, gzip: gzip)
        file = created
        return created
    }

    func finish(tree: OutputTree) throws { try file?.close() }
}

/// Files named by the local date of their lines (the app's own `logs/2025-02-06.log`).
final class DailyFileStream: LogStream {
    let directory: String
    let offset: Int
    private var current: (date: String, file: LogFile)?

    init(directory: String, offset: Int) {
        self.directory = directory
        self.offset = offset
    }

    func file(for writeTime: Int64, tree: OutputTree) throws -> LogFile {
        let date = SimClock.date(writeTime, offset: offset)
        if let current, current.date == date { return current.file }
        try current?.file.close()
        let file = try tree.create("\(directory)/\(date).log", gzip: false)
        current = (date, file)
        return file
    }

    func finish(tree: OutputTree) throws { try current?.file.close() }
}

/// How logrotate splits a log.
public enum Rotation: Equatable, Sendable, CustomStringConvertible {
    /// Never rotated during the run.
    case none
    /// Daily, when cron.daily runs logrotate (06:25 host time on Debian).
    case daily
    /// When the live file reaches this many bytes (`size` / `maxsize`).
    case size(Int)

    public init?(_ text: String) {
        switch text {
        case "none": self = .none
        case "daily": self = .daily
        default:
            guard text.hasPrefix("size:") else { return nil }
            var number = String(text.dropFirst(5)).lowercased()
            var unit = 1
            if number.hasSuffix("k") { unit = 1024; number.removeLast() } else if number.hasSuffix("m") { unit = 1 << 20; number.removeLast() }
            guard let n = Int(number), n > 0 else { return nil }
            self = .size(n * unit)
        }
    }

    public var description: String {
        switch self {
        case .none: return "none"
        case .daily: return "daily"
        case .size(let n): return "size:\(n)"
        }
    }
}

/// A log that logrotate rotates: `access.log`, `access.log.1`, `access.log.2.gz`, … (`compress` +
/// `delaycompress`, as Debian's nginx and rsyslog configurations do). Segments are written under
/// temporary names and renamed when the run ends, when their final number is known.
final class RotatingStream: LogStream {
    let base: String
    let rotation: Rotation
    /// Host clock offset from UTC, for the daily run time.
    let offset: Int
    static let dailyRunSecond: Int64 = 6 * 3600 + 25 * 60
    private var segments: [LogFile] = []
    private var currentKey: Int64?

    init(base: String, rotation: Rotation, offset: Int) {
        self.base = base
        self.rotation = rotation
        self.offset = offset
    }

    func file(for writeTime: Int64, tree: OutputTree) throws -> LogFile {
        if let last = segments.last {
            switch rotation {
            case .none: return last
            case .size(let limit): if last.bytes < limit { return last }
            case .daily:
                if dayKey(writeTime) == currentKey { return last }
            }
            try last.close()
        }
        currentKey = dayKey(writeTime)
        let file = try tree.create("\(base).segment-\(segments.count)", gzip: false)
        segments.append(file)
        return file
    }

    private func dayKey(_ t: Int64) -> Int64 {
        let local = t / SimClock.microsPerSecond + Int64(offset) - Self.dailyRunSecond
        return local >= 0 ? local / 86_400 : (local - 86_399) / 86_400
    }

    func finish(tree: OutputTree) throws {
        for (index, segment) in segments.enumerated() {
            try segment.close()
            let number = segments.count - 1 - index
            switch number {
            case 0: try tree.rename(segment, to: base)
            case 1: try tree.rename(segment, to: "\(base).1")
            default: try tree.compress(segment, to: "\(base).\(number).gz")
            }
        }
    }
}
