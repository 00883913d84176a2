import Foundation
import GRDB

/// Measures correlation against a simulator's `truth.jsonl`: of the links made, how many join
/// records of the same real request (precision), and of the records that could be linked, how
/// many are (recall).
///
/// Counted over pairs of records: every pair in one of our chains is a link made; every pair of
/// records of one true request is a link that should exist. Syslog copies are not counted (a copy
/// is the same record as its original).
public struct GroundTruthScore: Sendable, Encodable, CustomStringConvertible {
    public var requests: Int
    public var recordsMatched: Int
    public var recordsMissing: Int
    public var linksMade: Int
    public var linksCorrect: Int
    public var linksExpected: Int
    public var linksFound: Int
    /// Expected links not made, by the two records' layers ("nginx-app").
    public var missedByLayers: [String: Int] = [:]

    public var precision: Double { linksMade == 0 ? 1 : Double(linksCorrect) / Double(linksMade) }
    public var recall: Double { linksExpected == 0 ? 1 : Double(linksFound) / Double(linksExpected) }

    public var description: String {
        String(format: "%d requests; links made %d, correct %d (precision %.2f%%); linkable %d, linked %d (recall %.2f%%); %d truth records not found in the timeline",
               requests, linksMade, linksCorrect, precision * 100, linksExpected, linksFound, recall * 100, recordsMissing)
    }

    /// `root` is the directory the truth's relative file names are relative to.
    public static func evaluate(store: TimelineStore, truth: URL, root: URL) throws -> GroundTruthScore {
        // (source path suffix, line) → event id, originals only.
        let rootPath = root.standardizedFileURL.path
        let index: [String: [Int: Int64]] = try store.read { db in
            var map: [String: [Int: Int64]] = [:]
            for row in try Row.fetchAll(db, sql: """
                SELECT e.id, e.line, e.line_end, s.path FROM event e JOIN source s ON s.id = e.source_id WHERE e.copy_of IS NULL
                """) {
                let path = URL(fileURLWithPath: row["path"] as String).standardizedFileURL.path
                let relative = path.hasPrefix(rootPath + "/") ? String(path.dropFirst(rootPath.count + 1)) : path
                let first: Int = row["line"], last: Int = row["line_end"]
                for l in first...max(first, last) { map[relative, default: [:]][l] = row["id"] }
            }
            return map
        }
        let layerOf: [Int64: String] = try store.read { db in
            var m: [Int64: String] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT id, layer || ':' || kind AS l FROM event WHERE copy_of IS NULL") { m[row["id"]] = row["l"] }
            return m
        }
        let chainOf: [Int64: Int64] = try store.read { db in
            var m: [Int64: Int64] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT event_id, chain_id FROM link") { m[row["event_id"]] = row["chain_id"] }
            return m
        }
        var requestOf: [Int64: Int] = [:]
        var score = GroundTruthScore(requests: 0, recordsMatched: 0, recordsMissing: 0, linksMade: 0, linksCorrect: 0, linksExpected: 0, linksFound: 0)
        let text = try String(contentsOf: truth, encoding: .utf8)
        for (n, line) in text.split(separator: "\n").enumerated() {
            guard let data = line.data(using: .utf8),
                  let object = try JSONSerialization.jsonObject(with: data) as? [String: Any],
                  let records = object["records"] as? [[String: Any]] else { continue }
            score.requests += 1
            var events = Set<Int64>()
            for r in records {
                guard let file = r["file"] as? String, let l = r["line"] as? Int else { continue }
                if let id = index[file]?[l] { events.insert(id); requestOf[id] = n } else if index[file] != nil || !(file.contains("syslog")) {
                    // Syslog copies of app lines are not originals; everything else must exist.
                    if !file.contains("syslog") { score.recordsMissing += 1 }
                }
            }
            score.recordsMatched += events.count
            let list = Array(events)
            for i in 0..<list.count {
                for j in (i + 1)..<list.count {
                    score.linksExpected += 1
                    if let a = chainOf[list[i]], let b = chainOf[list[j]], a == b { score.linksFound += 1 } else {
                        let pair = [layerOf[list[i]] ?? "?", layerOf[list[j]] ?? "?"].sorted().joined(separator: "-")
                        score.missedByLayers[pair, default: 0] += 1
                    }
                }
            }
        }
        // Links made: pairs inside each of our chains, among records the truth knows.
        var members: [Int64: [Int64]] = [:]
        for (event, chain) in chainOf where requestOf[event] != nil { members[chain, default: []].append(event) }
        for (_, list) in members {
            for i in 0..<list.count {
                for j in (i + 1)..<list.count {
                    score.linksMade += 1
                    if requestOf[list[i]] == requestOf[list[j]] { score.linksCorrect += 1 }
                }
            }
        }
        return score
    }
}
