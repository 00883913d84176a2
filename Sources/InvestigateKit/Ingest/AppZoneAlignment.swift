import Foundation
import GRDB

/// An application log's stamps carry no zone (Python's `asctime`). Unless `--app-tz` or a syslog
/// copy of its lines says which zone they are in, the one they are read in is a guess (the offset
/// nginx writes, else this machine's zone), and a guess hours off puts the app's records beside
/// the wrong requests: the diagnosis then cites another request's traceback.
///
/// The app's own lines that name a request (`Request: GET …`, `Exception on /path [POST]`) settle
/// it: they meet the access records of the layers in front (nginx, the ALB) for the same paths,
/// within seconds, at the offset the app really writes in. After a run is read, each application
/// file read with a guessed zone is checked: when one half-hour shift gathers clearly more such
/// meetings than the guess (three times as many, at least `minimumMatches`, and twice any other
/// shift), its records are moved by it and its note says so; otherwise nothing changes, and the
/// note says the guess was checked. Paths requested everywhere all the time meet at every shift
/// and so decide nothing.
enum AppZoneAlignment {
    /// The importers whose zone-less stamps are read in `appZone(_:)`'s zone.
    static let formats: Set<String> = ["flask", "gunicorn-error"]
    /// The importers whose stamps never carry a zone unless the layout adds one (Python's
    /// `asctime`): read for a window, they keep `maxShift` either side. gunicorn's error log has
    /// written its offset since 19.0.
    static let zonelessByDefault: Set<String> = ["flask"]
    /// Zones lie within 14 hours of UTC, so no guess is further off than that.
    static let maxShift: Int64 = 14 * 3_600_000_000
    static let step: Int64 = 1_800_000_000
    /// An app line and an access record of the same path meet when this close (nginx logs a
    /// request when it ends, whole seconds; the app when it starts).
    static let tolerance: Int64 = 3_000_000
    static let minimumMatches = 5
    static let sampleSize = 2000
    static let maxAppRowsScanned = 200_000
    /// Access records read to compare with, at most (a day of a busy site).
    static let maxReferenceRows = 3_000_000
    static let checkedNote = "app zone checked against the access logs: "

    struct Shift: Equatable {
        /// Microseconds to subtract from the stored times.
        var micros: Int64
        /// Lines meeting at this shift; 0 when no shift is clear.
        var matches: Int
        var matchesAsRead: Int
        var sampled: Int
    }

    /// Checks the sources added after `afterSourceID`; returns the notes of files it moved.
    @discardableResult
    static func run(store: TimelineStore, afterSourceID: Int64) throws -> [String] {
        try store.write { db in
            var moved: [String] = []
            let candidates = try Row.fetchAll(db, sql: """
                SELECT id, path, notes, first_time, last_time FROM source
                WHERE id > ? AND format IN (\(formats.map { "'\($0)'" }.joined(separator: ","))) AND events > 0 AND first_time IS NOT NULL
                """, arguments: [afterSourceID])
            for row in candidates {
                let id: Int64 = row["id"]
                var notes = (try? JSONDecoder().decode([String].self, from: Data((row["notes"] as String? ?? "[]").utf8))) ?? []
                guard let guess = guessedReading(notes), !notes.contains(where: { $0.hasPrefix(checkedNote) }) else { continue }
                guard let shift = try bestShift(db, source: id, from: row["first_time"], to: row["last_time"]) else { continue }
                if shift.micros == 0 || shift.matches == 0 {
                    notes.append(checkedNote + (shift.matches > 0
                        ? "its request lines meet the access records at the zone it was read in (\(shift.matches) of \(shift.sampled))"
                        : "no shift of its request lines meets the access records clearly (\(shift.sampled) lines compared); the zone stays a guess"))
                } else {
                    let zone = ZoneSpec(guess.zone).map { $0.offset(atUTC: row["first_time"]) + Int(shift.micros / 1_000_000) }
                    let written = zone.map { $0 == 0 ? "UTC" : TimeFormat.offsetString(seconds: $0) } ?? "the guess \(shift.micros > 0 ? "+" : "-")\(Double(abs(shift.micros)) / 3.6e9) h"
                    try move(db, source: id, by: shift.micros)
                    let count = notes[guess.index].components(separatedBy: AppZoneReading.marker).first ?? ""
                    notes[guess.index] = count + AppZoneReading.marker + "read as \(written), the offset at which the app's request lines meet the access records of the same paths "
                        + "(\(shift.matches) of \(shift.sampled) lines; read as \(guess.zone), the guess, \(shift.matchesAsRead) met): give --app-tz if the app runs in another zone"
                    notes.append(checkedNote + "moved by \(String(format: "%+g", -Double(shift.micros) / 3.6e9)) h")
                    moved.append("\(row["path"] as String? ?? "?"): " + notes[guess.index])
                }
                let json = String(decoding: try JSONEncoder().encode(notes), as: UTF8.self)
                try db.execute(sql: "UPDATE source SET notes = ? WHERE id = ?", arguments: [json, id])
            }
            return moved
        }
    }

    /// For an answer: the files around a window whose records were moved, with the note saying how.
    static func movedNotes(_ db: Database, from: Int64, to: Int64) throws -> [String] {
        let rows = try Row.fetchAll(db, sql: """
            SELECT CAST(path AS BLOB) AS path, notes FROM source WHERE notes LIKE ? AND first_time <= ? AND last_time >= ? ORDER BY id
            """, arguments: ["%" + checkedNote + "moved%", to + 3_600_000_000, from - 3_600_000_000])
        return rows.compactMap { row in
            let notes = (try? JSONDecoder().decode([String].self, from: Data((row["notes"] as String? ?? "[]").utf8))) ?? []
            guard let reading = notes.first(where: { $0.contains(AppZoneReading.marker) }),
                  let words = reading.components(separatedBy: AppZoneReading.marker).last else { return nil }
            return "\(StoredEvent.text(row, "path") ?? "?"): the application's stamps carry no zone and were \(words)."
        }
    }

    /// The zone note's index and the zone it names, when the zone was a guess (not `--app-tz`,
    /// not learnt from syslog).
    static func guessedReading(_ notes: [String]) -> (index: Int, zone: String)? {
        for (i, note) in notes.enumerated() where note.contains(AppZoneReading.marker) {
            guard !note.contains("(--app-tz)"), !note.contains("learnt from the syslog copy"),
                  let zone = AppZoneReading.zone(inNotes: [note]) else { return nil }
            return (i, zone)
        }
        return nil
    }

    /// The shift of this source's request lines that meets the access records best, when it is
    /// clear; a zero shift when the reading stands (or nothing is clear).
    static func bestShift(_ db: Database, source: Int64, from: Int64, to: Int64) throws -> Shift? {
        // The app's lines that name a path, first in time (through the time index: no index
        // leads with source_id).
        var sample: [(time: Int64, path: String)] = []
        let app = try Row.fetchCursor(db, sql: """
            SELECT time, CAST(path AS BLOB) AS path, CAST(message AS BLOB) AS message FROM event
            WHERE time >= ? AND time <= ? AND source_id = ? AND copy_of IS NULL ORDER BY time LIMIT \(maxAppRowsScanned)
            """, arguments: [from, to, source])
        while let row = try app.next(), sample.count < sampleSize {
            if let path = StoredEvent.text(row, "path") ?? StoredEvent.text(row, "message").flatMap(requestPath), !path.isEmpty {
                sample.append((row["time"], path))
            }
        }
        guard sample.count >= minimumMatches, let first = sample.first?.time, let last = sample.last?.time else { return nil }
        let paths = Set(sample.map(\.path))

        // The access records of those paths that any shift could meet, per path, in time order.
        var reference: [String: [Int64]] = [:]
        let rows = try Row.fetchCursor(db, sql: """
            SELECT time, CAST(path AS BLOB) AS path FROM event WHERE time >= ? AND time <= ? AND layer IN ('nginx','alb') AND kind = 'access'
            AND copy_of IS NULL AND path IS NOT NULL LIMIT \(maxReferenceRows)
            """, arguments: [first - maxShift - tolerance, last + maxShift + tolerance])
        while let row = try rows.next() {
            guard let path = StoredEvent.text(row, "path"), paths.contains(path) else { continue }
            reference[path, default: []].append(row["time"])
        }
        guard !reference.isEmpty else { return Shift(micros: 0, matches: 0, matchesAsRead: 0, sampled: sample.count) }
        for key in Array(reference.keys) { reference[key]!.sort() }

        // For each shift, how many sampled lines meet a record of their path.
        let steps = Int(maxShift / step)
        var votes = [Int](repeating: 0, count: 2 * steps + 1)
        for line in sample {
            guard let times = reference[line.path] else { continue }
            for k in -steps...steps {
                let target = line.time - Int64(k) * step
                if meets(times, target) { votes[k + steps] += 1 }
            }
        }
        let asRead = votes[steps]
        guard let bestIndex = votes.indices.max(by: { (votes[$0], abs($1 - steps)) < (votes[$1], abs($0 - steps)) }) else { return nil }
        let best = votes[bestIndex]
        let runnerUp = votes.indices.filter { $0 != bestIndex && $0 != steps }.map { votes[$0] }.max() ?? 0
        if bestIndex == steps {
            // The reading stands when it beats every other shift clearly; else nothing is known.
            let confirmed = best >= minimumMatches && best >= 2 * max(runnerUp, 1)
            return Shift(micros: 0, matches: confirmed ? best : 0, matchesAsRead: asRead, sampled: sample.count)
        }
        let clear = best >= minimumMatches && best >= 3 * max(asRead, 1) && best >= 2 * max(runnerUp, 1)
        if !clear { return Shift(micros: 0, matches: 0, matchesAsRead: asRead, sampled: sample.count) }
        return Shift(micros: Int64(bestIndex - steps) * step, matches: best, matchesAsRead: asRead, sampled: sample.count)
    }

    /// The path of a request a message names (`GET /api/me user=3`, `… POST /orders 201 12ms`):
    /// for this comparison only, never stored, since a message may name a call the app made.
    static func requestPath(_ message: String) -> String? {
        guard let r = message.range(of: #"(?:^|[\s\[\]"'])(?:GET|POST|PUT|DELETE|PATCH|HEAD|OPTIONS) /[^\s?"'#]*"#, options: .regularExpression) else { return nil }
        let found = message[r]
        return found.range(of: "/").map { String(found[$0.lowerBound...]) }
    }

    /// Whether a sorted list holds a time within `tolerance` of the target.
    static func meets(_ times: [Int64], _ target: Int64) -> Bool {
        var lo = 0, hi = times.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if times[mid] < target - tolerance { lo = mid + 1 } else { hi = mid }
        }
        return lo < times.count && times[lo] <= target + tolerance
    }

    /// Moves a source's records, its span and its per-layer spans by the shift.
    static func move(_ db: Database, source: Int64, by shift: Int64) throws {
        guard let span = try Row.fetchOne(db, sql: "SELECT first_time, last_time FROM source WHERE id = ?", arguments: [source]),
              let from: Int64 = span["first_time"], let to: Int64 = span["last_time"] else { return }
        try db.execute(sql: """
            UPDATE event_data SET time = time - ?1, alt_time = CASE WHEN alt_time IS NULL THEN NULL ELSE alt_time - ?1 END
            WHERE time >= ?2 AND time <= ?3 AND source_id = ?4
            """, arguments: [shift, from, to, source])
        try db.execute(sql: """
            UPDATE source SET first_time = first_time - ?1, last_time = last_time - ?1,
                covered_from = covered_from - ?1, covered_to = covered_to - ?1 WHERE id = ?2
            """, arguments: [shift, source])
        try db.execute(sql: "UPDATE source_layer SET first_time = first_time - ?1, last_time = last_time - ?1 WHERE source_id = ?2",
                       arguments: [shift, source])
    }
}
