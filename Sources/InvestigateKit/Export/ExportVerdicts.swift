import Foundation
import GRDB

/// What diagnosis says of a failed request, attached to each of its records in an export
/// (`--diagnose`): the rules' verdict, as `investigate --at` gives it for that request.
public struct ExportVerdict: Sendable, Equatable {
    public var responder: String
    public var cause: String
    public var confidence: String
    public var rule: String
    public var reason: String
    public var explanation: String
}

/// Judges every failed request of an export's range, slice by slice (the diagnosis reads the log
/// lines around each window, bounded per window), and maps each of their records to the verdict.
enum ExportVerdicts {
    static let slice: Int64 = 10 * 60_000_000

    static func compute(_ store: TimelineStore, _ q: ExportQuery) throws -> [Int64: ExportVerdict] {
        let span: (Int64, Int64)? = try store.scoped(q.sources) {
            try store.read { db in
                let row = try Row.fetchOne(db, sql: "SELECT min(time) AS lo, max(time) AS hi FROM event WHERE time IS NOT NULL")
                guard let lo: Int64 = row?["lo"], let hi: Int64 = row?["hi"] else { return nil }
                return (max(lo, q.from ?? lo), min(hi, (q.to ?? hi + 1) - 1))
            }
        }
        guard let (lo, hi) = span, lo <= hi else { return [:] }
        let diagnoser = Diagnoser(store: store)
        var out: [Int64: ExportVerdict] = [:]
        var start = lo
        while start <= hi {
            let end = min(hi, start + slice - 1)
            // A window of [start, end]: `at` its middle, the half-width rounded up.
            let half = (end - start + 1) / 2
            var dq = DiagnosisQuery(at: start + half, halfWindow: half, zone: q.zone)
            dq.sources = q.sources
            for judged in try diagnoser.judgeEach(dq) {
                let f = judged.finding
                let verdict = ExportVerdict(responder: f.responder, cause: f.cause, confidence: f.confidence.rawValue, rule: f.rule,
                                            reason: f.reason, explanation: f.explanation)
                for id in judged.records where out[id] == nil { out[id] = verdict }
            }
            start = end + 1
        }
        return out
    }
}
