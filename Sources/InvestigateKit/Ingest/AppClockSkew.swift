import Foundation
import GRDB

/// An application host whose clock runs minutes off (NTP broke) writes its lines minutes away from
/// the access records of the same requests: no correlation tolerance reaches them, and the answer
/// then says the app never saw a request it logged a traceback for. After a run is read, each app
/// file's request lines are compared with the nginx/ALB access records of the same paths over one
/// stretch, at every whole-second shift within `maxSkew`; one shift that gathers clearly more
/// meetings than chance, and than any other shift, is the clock's error, and the file's records
/// are moved by it, with a note saying so. Zones (whole half-hours) are `AppZoneAlignment`'s;
/// shifts within `minimumSkew` are left to correlation's own clock offsets and tolerances (a slow
/// endpoint's start and nginx's completion differ by seconds too).
enum AppClockSkew {
    static let maxSkew: Int64 = 15 * 60_000_000
    static let minimumSkew: Int64 = 10_000_000
    /// Meetings are counted in windows this wide: nginx stamps whole seconds, the app milliseconds.
    static let window: Int64 = 3_000_000
    static let minimumMatches = 8.0
    static let maxAppLines = 5_000
    static let sampleSpan: Int64 = 20 * 60_000_000
    static let checkedNote = "app clock checked against the access logs: "

    struct Skew: Equatable {
        /// Microseconds the app's stamps run ahead (negative: behind) of the access records.
        var micros: Int64
        var matches: Int
        var sampled: Int
    }

    /// Checks the sources added after `afterSourceID`; returns the notes of files it moved.
    @discardableResult
    static func run(store: TimelineStore, afterSourceID: Int64) throws -> [String] {
        try store.write { db in
            var moved: [String] = []
            for row in try AppZoneAlignment.appSources(db, after: afterSourceID) {
                let id: Int64 = row["id"]
                var notes = SourceRecord.notes(row["notes"])
                guard !notes.contains(where: { $0.hasPrefix(checkedNote) }),
                      let skew = try bestSkew(db, source: id, from: row["first_time"], to: row["last_time"]) else { continue }
                guard abs(skew.micros) >= minimumSkew else { continue }
                try AppZoneAlignment.move(db, source: id, by: skew.micros)
                let seconds = Double(abs(skew.micros)) / 1e6
                let note = checkedNote + "moved by \(String(format: "%+g", -Double(skew.micros) / 1e6)) s: the app's clock ran \(String(format: "%g", seconds)) s \(skew.micros > 0 ? "ahead of" : "behind") the access records of the same paths (\(skew.matches) of \(skew.sampled) request lines meet them at that shift); its times are shown moved, its lines keep the stamps they were written with"
                notes.append(note)
                moved.append("\(StoredEvent.text(row, "path") ?? "?"): " + note)
                try SourceRecord.storeNotes(notes, source: id, db)
            }
            return moved
        }
    }

    /// For an answer: the files around a window whose clock was corrected, with the note.
    static func movedNotes(_ db: Database, from: Int64, to: Int64) throws -> [String] {
        try SourceRecord.notedAround(db, containing: checkedNote + "moved", from: from, to: to).compactMap { path, notes in
            guard let note = notes.first(where: { $0.hasPrefix(checkedNote) }) else { return nil }
            return "\(path): " + note.dropFirst(checkedNote.count)
        }
    }

    /// The clock error of a source, when one whole-second shift is clear; nil when nothing is.
    static func bestSkew(_ db: Database, source: Int64, from: Int64, to: Int64) throws -> Skew? {
        // The app's request lines of one stretch.
        let hi = min(from + sampleSpan, to)
        var lines: [(time: Int64, path: String)] = []
        let app = try Row.fetchCursor(db, sql: """
            SELECT time, CAST(path AS BLOB) AS path, CAST(message AS BLOB) AS message FROM event
            WHERE time >= ? AND time <= ? AND source_id = ? AND copy_of IS NULL
            """, arguments: [from, hi, source])
        while let row = try app.next(), lines.count < maxAppLines {
            guard let path = StoredEvent.text(row, "path") ?? StoredEvent.text(row, "message").flatMap(AppZoneAlignment.requestPath) else { continue }
            lines.append((row["time"], path))
        }
        guard lines.count >= Int(minimumMatches) else { return nil }
        // The access records of the same stretch, widened by the largest skew looked for.
        var reference: [String: [Int64]] = [:]
        let paths = Set(lines.map(\.path))
        let rows = try Row.fetchCursor(db, sql: """
            SELECT time, CAST(path AS BLOB) AS path FROM event WHERE time >= ? AND time <= ? AND layer IN ('nginx','alb') AND kind = 'access'
            AND copy_of IS NULL AND path IS NOT NULL LIMIT \(AppZoneAlignment.maxReferenceRows)
            """, arguments: [from - maxSkew, hi + maxSkew])
        while let row = try rows.next() {
            guard let full = StoredEvent.text(row, "path") else { continue }
            let path = full.split(separator: "?", maxSplits: 1).first.map(String.init) ?? full
            if paths.contains(path) { reference[path, default: []].append(row["time"]) }
        }
        guard !reference.isEmpty else { return nil }
        // Every (app line, record of its path) pair within reach votes for its difference, in
        // whole seconds; each line's chance share is spread evenly over the range.
        let bins = Int(2 * maxSkew / 1_000_000) + 1
        var votes = [Double](repeating: 0, count: bins)
        var chance = 0.0
        var compared = 0
        let span = Double(2 * maxSkew / 1_000_000)
        for line in lines {
            guard let times = reference[line.path] else { continue }
            compared += 1
            var n = 0
            for t in times {
                let d = line.time - t
                guard abs(d) <= maxSkew else { continue }
                votes[min(bins - 1, Int((d + maxSkew + 500_000) / 1_000_000))] += 1
                n += 1
            }
            chance += Double(n) / span
        }
        guard compared >= Int(minimumMatches) else { return nil }
        // Windows of a few seconds: the meeting count at each shift, less what chance gives there.
        let width = Int(window / 1_000_000)
        var excess = [Double](repeating: 0, count: bins)
        var sum = votes.prefix(width).reduce(0, +)
        for i in 0..<(bins - width) {
            excess[i] = sum - chance * Double(width)
            sum += votes[i + width] - votes[i]
        }
        guard let best = excess.indices.max(by: { excess[$0] < excess[$1] }) else { return nil }
        // The runner-up outside the best window's neighbourhood.
        let runnerUp = excess.indices.filter { abs($0 - best) > width }.map { excess[$0] }.max() ?? 0
        guard excess[best] >= minimumMatches, excess[best] >= 2 * max(runnerUp, 1) else { return nil }
        // The window's weighted centre, in whole seconds.
        let slice = best..<(best + width)
        let weight = slice.map { votes[$0] }.reduce(0, +)
        let centre = weight > 0 ? slice.map { Double($0) * votes[$0] }.reduce(0, +) / weight : Double(best)
        let micros = Int64((centre.rounded()) * 1_000_000) - maxSkew
        // Lines (not pairs) that meet a record at that shift.
        let met = lines.filter { line in
            reference[line.path]?.contains { abs(line.time - $0 - micros) <= window / 2 + 500_000 } ?? false
        }.count
        return Skew(micros: micros, matches: met, sampled: compared)
    }
}
