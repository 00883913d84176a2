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
/// file read with a guessed zone is checked against every half-hour shift within 14 hours: when
/// one shift gathers at least `minimumMatches` meetings beyond chance, and twice as many as any
/// other, its records are moved by it and its note says so; otherwise nothing changes, and the
/// note says the guess was checked. Paths requested all the time meet at every shift by chance
/// and so weigh nothing.
enum AppZoneAlignment {
    /// The importers whose zone-less stamps are read in `appZone(_:)`'s zone.
    static let formats: Set<String> = ["flask", "python-json", "gunicorn-error"]
    /// The importers whose stamps never carry a zone unless the layout adds one (Python's
    /// `asctime`): read for a window, they keep `maxShift` either side. gunicorn's error log has
    /// written its offset since 19.0.
    static let zonelessByDefault: Set<String> = ["flask", "python-json"]
    /// Zones lie within 14 hours of UTC, so no guess is further off than that.
    static let maxShift: Int64 = 14 * 3_600_000_000
    static let step: Int64 = 1_800_000_000
    /// An app line and an access record of the same path meet when this close (nginx logs a
    /// request when it ends, whole seconds; the app when it starts).
    static let tolerance: Int64 = 3_000_000
    static let minimumMatches = 5
    static let maxAppRowsScanned = 200_000
    /// The stretch of access records compared with the app's lines.
    static let sampleSpan: Int64 = 20 * 60_000_000
    /// Access records of the stretch read, at most.
    static let maxReferenceRows = 500_000
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
            for row in try appSources(db, after: afterSourceID) {
                let id: Int64 = row["id"]
                var notes = SourceRecord.notes(row["notes"])
                guard let guess = guessedReading(notes), !notes.contains(where: { $0.hasPrefix(checkedNote) }) else { continue }
                guard let shift = try bestShift(db, source: id, from: row["first_time"], to: row["last_time"]) else { continue }
                if shift.micros == 0 || shift.matches == 0 {
                    notes.append(checkedNote + (shift.matches > 0
                        ? "its request lines meet the access records at the zone it was read in (\(shift.matches) of \(shift.sampled) lines)"
                        : "no shift of its request lines meets the access records clearly beyond chance (\(shift.sampled) lines compared); the zone stays a guess"))
                } else {
                    let zone = ZoneSpec(guess.zone).map { $0.offset(atUTC: row["first_time"]) + Int(shift.micros / 1_000_000) }
                    let written = zone.map { $0 == 0 ? "UTC" : TimeFormat.offsetString(seconds: $0) } ?? "the guess \(shift.micros > 0 ? "+" : "-")\(Double(abs(shift.micros)) / 3.6e9) h"
                    try move(db, source: id, by: shift.micros)
                    let count = notes[guess.index].components(separatedBy: AppZoneReading.marker).first ?? ""
                    notes[guess.index] = count + AppZoneReading.marker + "read as \(written), the offset at which the app's request lines meet the access records of the same paths "
                        + "(\(shift.matches) of \(shift.sampled) lines; read as \(guess.zone), the guess, \(shift.matchesAsRead) met): give --app-tz if the app runs in another zone"
                    notes.append(checkedNote + "moved by \(String(format: "%+g", -Double(shift.micros) / 3.6e9)) h")
                    moved.append("\(StoredEvent.text(row, "path") ?? "?"): " + notes[guess.index])
                }
                try SourceRecord.storeNotes(notes, source: id, db)
            }
            return moved
        }
    }

    /// The app files a run added, with the columns the passes after it read.
    static func appSources(_ db: Database, after afterSourceID: Int64) throws -> [Row] {
        try Row.fetchAll(db, sql: """
            SELECT id, CAST(path AS BLOB) AS path, notes, first_time, last_time FROM source
            WHERE id > ? AND format IN (\(formats.sorted().map { "'\($0)'" }.joined(separator: ","))) AND events > 0 AND first_time IS NOT NULL
            """, arguments: [afterSourceID])
    }

    /// For an answer: the files around a window whose records were moved, with the note saying how.
    static func movedNotes(_ db: Database, from: Int64, to: Int64) throws -> [String] {
        try SourceRecord.notedAround(db, containing: checkedNote + "moved", from: from, to: to).compactMap { path, notes in
            guard let reading = notes.first(where: { $0.contains(AppZoneReading.marker) }),
                  let words = reading.components(separatedBy: AppZoneReading.marker).last else { return nil }
            return "\(path): the application's stamps carry no zone and were \(words)."
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
    ///
    /// The access records of one stretch (`sampleSpan`, where the app log lies, else where they
    /// begin within its reach) are compared with the app's lines of that stretch moved by each
    /// shift in turn. Each meeting is counted less its chance: a path requested every few seconds
    /// meets a record within the tolerance at any shift, a rare one only at the right shift.
    static func bestShift(_ db: Database, source: Int64, from: Int64, to: Int64) throws -> Shift? {
        // The stretch of access records.
        guard let span = try Row.fetchOne(db, sql: """
            SELECT min(first_time) AS lo, max(last_time) AS hi FROM source_layer WHERE layer IN ('nginx','alb') AND events > 0
            """), let refFirst: Int64 = span["lo"], let refLast: Int64 = span["hi"] else { return nil }
        // Where the app log itself lies, when the access records reach it; else where they begin
        // within reach of it.
        let lo = from >= refFirst && from <= refLast ? from : max(refFirst, from - maxShift)
        let hi = min(lo + sampleSpan, refLast)
        guard lo <= hi else { return nil }
        var reference: [String: [Int64]] = [:]
        var referenceCount = 0
        let rows = try Row.fetchCursor(db, sql: """
            SELECT time, CAST(path AS BLOB) AS path FROM event WHERE time >= ? AND time <= ? AND layer IN ('nginx','alb') AND kind = 'access'
            AND copy_of IS NULL AND path IS NOT NULL LIMIT \(maxReferenceRows)
            """, arguments: [lo, hi])
        while let row = try rows.next() {
            guard let path = StoredEvent.text(row, "path") else { continue }
            reference[path, default: []].append(row["time"])
            referenceCount += 1
        }
        guard referenceCount > 0 else { return nil }
        for key in Array(reference.keys) { reference[key]!.sort() }
        // The chance that some record of a path falls within the tolerance of a given moment.
        let stretch = Double(hi - lo + 2 * tolerance)
        let chance = reference.mapValues { min(1, Double($0.count) * Double(2 * tolerance) / stretch) }

        // For each shift, the app's lines that would fall in the stretch: how many meet a record
        // beyond what chance gives.
        let steps = Int(maxShift / step)
        let app = try db.cachedStatement(sql: """
            SELECT time, CAST(path AS BLOB) AS path, CAST(message AS BLOB) AS message FROM event
            WHERE time >= ? AND time <= ? AND source_id = ? AND copy_of IS NULL LIMIT \(maxAppRowsScanned)
            """)
        var excess = [Double](repeating: 0, count: 2 * steps + 1)
        var met = [Int](repeating: 0, count: 2 * steps + 1), compared = met
        for k in -steps...steps {
            let shift = Int64(k) * step
            guard lo + shift - tolerance <= to, hi + shift + tolerance >= from else { continue }
            let lines = try Row.fetchCursor(app, arguments: [lo + shift - tolerance, hi + shift + tolerance, source])
            while let row = try lines.next() {
                guard let path = StoredEvent.text(row, "path") ?? StoredEvent.text(row, "message").flatMap(requestPath),
                      let times = reference[path], let p = chance[path] else { continue }
                compared[k + steps] += 1
                excess[k + steps] -= p
                if meets(times, (row["time"] as Int64) - shift) { met[k + steps] += 1; excess[k + steps] += 1 }
            }
        }
        guard let bestIndex = excess.indices.max(by: { (excess[$0], abs($1 - steps)) < (excess[$1], abs($0 - steps)) }) else { return nil }
        let best = excess[bestIndex]
        let runnerUp = excess.indices.filter { $0 != bestIndex }.map { excess[$0] }.max() ?? 0
        // Clear: meetings beyond chance at one shift, and twice those of any other.
        let clear = best >= Double(minimumMatches) && best >= 2 * max(runnerUp, 1)
        if !clear { return Shift(micros: 0, matches: 0, matchesAsRead: met[steps], sampled: compared.max() ?? 0) }
        return Shift(micros: Int64(bestIndex - steps) * step, matches: met[bestIndex], matchesAsRead: met[steps], sampled: compared[bestIndex])
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
