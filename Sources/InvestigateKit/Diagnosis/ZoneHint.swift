import Foundation
import GRDB

/// When a window holds no error, the question's zone may be the mistake: "14:32" read in UTC when
/// the user meant the JST the nginx and app logs are written in. This finds the zones the logs
/// themselves use and says which of them would put error responses at the same wall-clock time.
enum ZoneHint {
    static func suggestions(_ db: Database, _ q: DiagnosisQuery) throws -> [String] {
        let asked = q.zone.offset(atUTC: q.at)
        var out: [String] = []
        for (offset, users) in try zonesInLogs(db).sorted(by: { $0.key < $1.key }) where offset != asked {
            // The same wall-clock reading in the other zone.
            let shift = Int64(asked - offset) * 1_000_000
            guard case let (at, overflow) = q.at.addingReportingOverflow(shift), !overflow else { continue }
            var moved = q
            moved.at = at
            let n = try errorCount(db, moved)
            guard n > 0 else { continue }
            let zone = offset == 0 ? "UTC" : TimeFormat.offsetString(seconds: offset, colon: true)
            out.append("No error in this window read in \(q.zone.description), but \(n) error response\(n == 1 ? "" : "s") sit at the same wall-clock time in \(zone), the zone the \(users.sorted().joined(separator: " and ")) logs are written in: try `--tz \(zone)`.")
        }
        return out
    }

    /// Offsets (seconds) written in the logs' own stamps, with the layers that write them. UTC is
    /// always a candidate: AWS logs and CloudWatch exports are in UTC.
    static func zonesInLogs(_ db: Database) throws -> [Int: Set<String>] {
        var zones: [Int: Set<String>] = [:]
        let first = try Row.fetchAll(db, sql: """
            SELECT e.layer, \(StoredEvent.raw("e")) FROM source s JOIN event e ON e.id = (SELECT min(id) FROM event WHERE source_id = s.id)
            WHERE s.events > 0
            """)
        for row in first {
            let layer: String = row["layer"]
            let raw: Data = row["raw"] ?? Data()
            let text = String(decoding: raw.prefix(400), as: UTF8.self)
            if let offset = stampOffset(in: text) { zones[offset, default: []].insert(layer) } else if ["waf", "alb", "apigateway", "lambda"].contains(layer) {
                zones[0, default: []].insert(layer)
            }
        }
        // The application's zone learnt during ingest is in the source notes.
        for notes in try String.fetchAll(db, sql: "SELECT notes FROM source WHERE notes LIKE '%+%' OR notes LIKE '%-%'") {
            if let r = notes.range(of: #"UTC[+-]\d{2}:?\d{2}"#, options: .regularExpression), let z = ZoneSpec(String(notes[r])) {
                zones[z.offset(atUTC: 0), default: []].insert("app")
            }
        }
        if zones[0] == nil { zones[0] = ["UTC"] }
        return zones
    }

    /// `+0900]` (CLF), `+09:00` after an ISO time, `+0900` after a clock time.
    static func stampOffset(in text: String) -> Int? {
        for pattern in [#"\d{2}:\d{2}:\d{2} ?([+-]\d{2}):?(\d{2})\]"#, #"T\d{2}:\d{2}:\d{2}(?:[.,]\d+)?([+-]\d{2}):?(\d{2})"#,
                        #"\d{2}:\d{2}:\d{2}(?:[.,]\d+)? ([+-]\d{2}):?(\d{2})\b"#] {
            guard let r = text.range(of: pattern, options: .regularExpression) else { continue }
            let m = String(text[r])
            guard let z = m.range(of: #"[+-]\d{2}:?\d{2}"#, options: .regularExpression, range: m.index(m.startIndex, offsetBy: 8)..<m.endIndex),
                  let zone = ZoneSpec(String(m[z])) else { continue }
            return zone.offset(atUTC: 0)
        }
        return nil
    }

    static func errorCount(_ db: Database, _ q: DiagnosisQuery) throws -> Int {
        var conditions = ["time >= ?", "time <= ?", "kind = 'access'", "status >= 400", "copy_of IS NULL"]
        var args: [DatabaseValueConvertible] = [q.from, q.to]
        if let s = q.status { conditions.append(s.sql("status")) }
        if let ip = q.clientIP { conditions.append("client_ip = ?"); args.append(ip) }
        if let p = q.pathPrefix { conditions.append("substr(path, 1, ?) = ?"); args += [p.utf8.count, p] }
        return try Int.fetchOne(db, sql: "SELECT count(*) FROM event WHERE \(conditions.joined(separator: " AND "))", arguments: StatementArguments(args)) ?? 0
    }
}

/// An application log whose records all lie hours away from the question, while the logs in front
/// of it cover the moment, was most often read in the wrong zone: Python's `asctime` carries none,
/// and the zone `investigate` chose (its note says which) is a guess when no `--app-tz` was given.
/// When shifting the log's span by a whole number of half hours lines it up with the span of a
/// layer that covers the moment, that shift is named with the `--app-tz` that would apply it.
/// It is a hint, never applied: a log that truly covers another day looks the same.
enum AppZoneShift {
    /// Layers whose stamps carry no zone of their own.
    static let zonelessLayers: [Layer] = [.app, .gunicorn]
    static let step: Int64 = 1_800_000_000
    static let maxShift: Int64 = 14 * 3_600_000_000

    static func notes(_ db: Database, _ q: DiagnosisQuery, coverage: [Layer: LayerCoverage]) throws -> [String] {
        var out: [String] = []
        let covering = coverage.values.compactMap { c -> (Layer, Int64, Int64)? in
            guard let layer = Layer(rawValue: c.layer), !Layer.offPath.contains(layer), !zonelessLayers.contains(layer),
                  let a = c.firstMicros, let b = c.lastMicros, a <= q.to, b >= q.from, c.events > 0 else { return nil }
            return (layer, a, b)
        }
        for layer in zonelessLayers {
            guard let c = coverage[layer], c.events > 0, let a = c.firstMicros, let b = c.lastMicros, b < q.from || a > q.to else { continue }
            guard let best = bestShift(span: (a, b), at: q.at, references: covering) else { continue }
            // Only files whose stamps needed a zone chosen for them: gunicorn 19+ writes its offset.
            let readAs = try readZones(db, layer)
            guard !readAs.isEmpty else { continue }
            let hours = String(format: "%+g", Double(best.shift) / 3_600_000_000)
            var text = "The \(layer.rawValue) logs given cover \(c.first ?? "?") to \(c.last ?? "?"), none of this window; shifted by \(hours) h they line up with the \(best.reference.rawValue) logs (\(TimeFormat.isoUTC(best.from)) to \(TimeFormat.isoUTC(best.to))). Their stamps carry no zone"
            if readAs.count == 1, let zone = ZoneSpec(readAs[0]) {
                let offset = zone.offset(atUTC: q.at) + Int(best.shift / 1_000_000)
                let suggested = offset == 0 ? "UTC" : TimeFormat.offsetString(seconds: offset, colon: true)
                text += " and were read as \(readAs[0]): if the application writes \(suggested), read them again with `--app-tz \(suggested)` and a new `--db` (stored files are not re-read)."
            } else {
                text += " and were read as \(readAs.joined(separator: ", ")): if that is the wrong zone, give the application's zone with `--app-tz` and a new `--db`."
            }
            out.append(text)
        }
        return out
    }

    /// The half-hour shift that puts the moment inside the span and lines the span up best with a
    /// layer covering it (at least half of the shorter span overlapping); whole hours win ties.
    static func bestShift(span: (Int64, Int64), at t: Int64, references: [(Layer, Int64, Int64)])
        -> (shift: Int64, reference: Layer, from: Int64, to: Int64)? {
        var best: (shift: Int64, reference: Layer, from: Int64, to: Int64, overlap: Int64)?
        var k = -maxShift
        while k <= maxShift {
            defer { k += step }
            let lo = span.0 - k, hi = span.1 - k
            guard k != 0, lo <= t, t <= hi else { continue }
            for (layer, ra, rb) in references.sorted(by: { $0.0 < $1.0 }) {
                let overlap = min(hi, rb) - max(lo, ra)
                let shorter = min(hi - lo, rb - ra)
                guard overlap > 0, overlap * 2 >= shorter else { continue }
                var better = true
                if let b = best {
                    let wholeHour: (Int64) -> Bool = { $0 % 3_600_000_000 == 0 }
                    better = overlap > b.overlap || (overlap == b.overlap && wholeHour(k) && !wholeHour(b.shift))
                }
                if better { best = (k, layer, ra, rb, overlap) }
            }
        }
        return best.map { ($0.shift, $0.reference, $0.from, $0.to) }
    }

    /// The zones the layer's files say their zone-less stamps were read in.
    static func readZones(_ db: Database, _ layer: Layer) throws -> [String] {
        let notes = try String.fetchAll(db, sql: """
            SELECT notes FROM source WHERE id IN (SELECT source_id FROM source_layer WHERE layer = ?)
            """, arguments: [layer.rawValue])
        let zones = notes.compactMap { json -> String? in
            AppZoneReading.zone(inNotes: SourceRecord.notes(json))
        }
        return Array(Set(zones)).sorted()
    }
}
