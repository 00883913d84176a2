import Foundation
import GRDB

/// Everything a report reads from the timeline, loaded in one read transaction with a fixed number
/// of queries per finding (never one per event).
struct ReportData {
    struct FindingRecords {
        /// The representative request's correlated records (or its evidence when unlinked), in time order.
        var records: [StoredEvent]
    }

    /// Responses per minute bucket, per layer and status class (2 for 2xx/3xx, 4, 5).
    struct MinuteCount: Hashable {
        var layer: Layer
        var minute: Int64
        var statusClass: Int
    }

    var sources: [SourceRecord]
    var sourcePaths: SourceIndex
    var findingRecords: [FindingRecords]
    var minuteCounts: [MinuteCount: Int]
    var chartFrom: Int64
    var chartTo: Int64
    var requests: [RequestSample]
    /// CloudWatch error metrics of known layers, summed per minute bucket (a longer period's value
    /// goes to the minute it starts): plotted beside the logs' counts.
    var metricSeries: [MetricSeries] = []

    struct MetricSeries: Equatable {
        var layer: Layer
        var name: String
        var perMinute: [Int64: Double]
    }

    static func load(_ db: Database, diagnosis: Diagnosis, query q: DiagnosisQuery, chartFrom: Int64, chartTo: Int64) throws -> ReportData {
        let sources = try SourceRecord.all(db)
        let index = try SourceIndex.load(db)
        var idsByPath: [String: [Int64]] = [:]
        for s in sources { idsByPath[s.path, default: []].append(s.id) }

        var perFinding: [FindingRecords] = []
        for f in diagnosis.findings {
            var chainID: Int64?
            var evidenceIDs: [Int64] = []
            for e in f.evidence {
                for sid in idsByPath[e.source] ?? [] {
                    for row in try Row.fetchAll(db, sql: """
                        SELECT e.id, l.chain_id FROM source s JOIN event e ON e.id BETWEEN s.first_event_id AND s.last_event_id
                        LEFT JOIN link l ON l.event_id = e.id
                        WHERE s.id = ? AND e.line = ? AND e.copy_of IS NULL
                        """, arguments: [sid, e.line]) {
                        evidenceIDs.append(row["id"])
                        if chainID == nil, let c: Int64 = row["chain_id"] { chainID = c }
                    }
                }
            }
            var ids = Set(evidenceIDs)
            // Reasoning from absence cites other requests as context: their chains are not this request's path.
            if let chainID, f.rule != "absence" {
                ids.formUnion(try Int64.fetchAll(db, sql: "SELECT event_id FROM link WHERE chain_id = ?", arguments: [chainID]))
            }
            perFinding.append(FindingRecords(records: try StoredEvent.fetch(db, ids: Array(ids).sorted())))
        }

        var counts: [MinuteCount: Int] = [:]
        for row in try Row.fetchAll(db, sql: """
            SELECT layer, (time - ?) / 60000000 AS bucket, status / 100 AS class, count(*) AS n FROM event
            WHERE kind = 'access' AND copy_of IS NULL AND status IS NOT NULL AND time >= ? AND time < ?
            GROUP BY layer, bucket, class
            """, arguments: [chartFrom, chartFrom, chartTo]) {
            guard let layer = Layer(rawValue: row["layer"] as String) else { continue }
            let bucket: Int64 = row["bucket"]
            let cls: Int = row["class"]
            let key = MinuteCount(layer: layer, minute: chartFrom + bucket * 60_000_000, statusClass: cls >= 5 ? 5 : cls == 4 ? 4 : 2)
            counts[key, default: 0] += row["n"] as Int
        }

        // One request per chain: the outermost access record is what the client got.
        var best: [Int64: RequestSample] = [:]
        var loose: [RequestSample] = []
        for row in try Row.fetchAll(db, sql: """
            SELECT e.time, e.layer, CAST(e.client_ip AS BLOB) AS client_ip, CAST(e.method AS BLOB) AS method,
                   CAST(e.path AS BLOB) AS path, e.status, CAST(e.user_agent AS BLOB) AS user_agent, l.chain_id FROM event e
            LEFT JOIN link l ON l.event_id = e.id
            WHERE e.kind = 'access' AND e.copy_of IS NULL AND e.time >= ? AND e.time <= ? ORDER BY e.time, e.id
            """, arguments: [q.from, q.to]) {
            guard let layer = Layer(rawValue: row["layer"] as String), let time: Int64 = row["time"] else { continue }
            // Log text is read as its bytes: GRDB's `Row` would end it at a NUL (`StoredEvent.text`).
            let sample = RequestSample(time: time, layer: layer, clientIP: StoredEvent.text(row, "client_ip"), method: StoredEvent.text(row, "method"),
                                       path: StoredEvent.text(row, "path"), status: row["status"], userAgent: StoredEvent.text(row, "user_agent"))
            if let chain: Int64 = row["chain_id"] {
                if let have = best[chain], have.layer <= layer { continue }
                best[chain] = sample
            } else {
                loose.append(sample)
            }
        }
        let requests = (Array(best.values) + loose).sorted {
            ($0.time, $0.clientIP ?? "", $0.path ?? "", $0.status ?? 0) < ($1.time, $1.clientIP ?? "", $1.path ?? "", $1.status ?? 0)
        }
        var series: [String: MetricSeries] = [:]
        for row in try Row.fetchAll(db, sql: """
            SELECT layer, time, CAST(json_extract(extra, '$.metric') AS BLOB) AS metric,
                   CAST(json_extract(extra, '$.dimensions') AS BLOB) AS dims, json_extract(extra, '$.value') AS value
            FROM event WHERE kind = 'metric' AND copy_of IS NULL AND layer <> 'system' AND time >= ? AND time < ?
              AND json_extract(extra, '$.stat') = 'Sum'
            ORDER BY time, id
            """, arguments: [chartFrom, chartTo]) {
            guard let layer = Layer(rawValue: row["layer"] as String), let metric = StoredEvent.text(row, "metric"), MetricCatalog.countsErrors(metric),
                  let time: Int64 = row["time"], let value = (row["value"] as String?).flatMap(Double.init) else { continue }
            let dims = StoredEvent.text(row, "dims")
            let name = metric + (dims.map { " (\($0))" } ?? "")
            let key = "\(layer.rawValue)\u{0}\(name)"
            let minute = chartFrom + (time - chartFrom) / 60_000_000 * 60_000_000
            series[key, default: MetricSeries(layer: layer, name: name, perMinute: [:])].perMinute[minute, default: 0] += value
        }
        var data = ReportData(sources: sources, sourcePaths: index, findingRecords: perFinding, minuteCounts: counts,
                              chartFrom: chartFrom, chartTo: chartTo, requests: requests)
        data.metricSeries = series.keys.sorted().map { series[$0]! }
        return data
    }
}
