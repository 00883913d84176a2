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
