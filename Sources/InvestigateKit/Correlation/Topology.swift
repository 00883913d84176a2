import Foundation
import GRDB
import GRDBSQLite

/// The topology: which layer is in front of which, inferred from the stored chains and peers.
extension Correlator {
    /// Which layer is in front of which, from the data: layers that appear together in chains
    /// (in path order), the WAF's `httpSourceName`, and nginx peers that are private addresses
    /// forwarding X-Forwarded-For (something in front of nginx, named `upstream` when its logs
    /// are not here).
    static func inferTopology(_ db: Database) throws {
        // The GROUP BY over every chain sorts: under the usual 64 MB cache SQLite's sorters took
        // 181 MB on 3M chains (and 1.6 s), under the sorting cache 37 MB (0.7 s), so peak memory
        // stays bounded.
        try Schema.withSortingCache(db) { try inferTopologyUnderSortingCache(db) }
    }

    fileprivate static func inferTopologyUnderSortingCache(_ db: Database) throws {
        var edges: [String: (evidence: String, events: Int)] = [:]
        func add(_ front: String, _ back: String, _ evidence: String, _ n: Int) {
            guard n > 0 else { return }
            let key = front + "→" + back
            if let old = edges[key] { edges[key] = (old.evidence, old.events + n) } else { edges[key] = (evidence, n) }
        }
        for row in try Row.fetchAll(db, sql: "SELECT layers, count(*) AS n FROM chain WHERE layers LIKE '%,%' GROUP BY layers") {
            let layers = (row["layers"] as String).split(separator: ",").map(String.init).filter { $0 != "system" }
            for i in 0..<max(0, layers.count - 1) {
                add(layers[i], layers[i + 1], "requests linked across both layers", row["n"])
            }
        }
        // Samples, not scans: the shape of the stack shows in the first tens of thousands of records.
        let hasWAF = try Bool.fetchOne(db, sql: "SELECT EXISTS (SELECT 1 FROM source_layer WHERE layer = 'waf')") ?? false
        for row in try !hasWAF ? [] : Row.fetchAll(db, sql: """
            SELECT src, count(*) AS n FROM (SELECT json_extract(extra, '$.http_source_name') AS src FROM
            (SELECT layer, extra FROM event ORDER BY id DESC LIMIT 200000) WHERE layer = 'waf') WHERE src IS NOT NULL GROUP BY src
            """) {
            let target: String? = ["ALB": "alb", "APIGW": "apigateway", "CF": "cloudfront", "APPSYNC": "appsync"][row["src"] as String? ?? ""]
            if let target { add("waf", target, "WAF httpSourceName \(row["src"] as String? ?? "")", row["n"]) }
        }
        let hasFront = try Bool.fetchOne(db, sql: "SELECT EXISTS (SELECT 1 FROM source_layer WHERE layer IN ('alb','waf'))") ?? false
        let peers = try Row.fetchAll(db, sql: """
            SELECT CAST(peer_ip AS BLOB) AS peer_ip, count(*) AS n FROM (SELECT layer, kind, peer_ip, forwarded_for FROM event ORDER BY id DESC LIMIT 200000)
            WHERE layer = 'nginx' AND kind = 'access' AND forwarded_for IS NOT NULL AND peer_ip IS NOT NULL
            GROUP BY peer_ip ORDER BY n DESC LIMIT 20
            """).compactMap { row in StoredEvent.text(row, "peer_ip").map { (address: $0, n: row["n"] as Int) } }
            .filter { ByteScanner.isPrivateAddress($0.address) }  // as bytes: a `Row` ends text at a NUL
        if !peers.isEmpty {
            let names = peers.prefix(4).map(\.address).joined(separator: ", ")
            add(hasFront ? "alb" : "upstream", "nginx", "nginx peers are private addresses forwarding X-Forwarded-For (\(names); among the latest 200,000 records)",
                peers.reduce(0) { $0 + $1.n })
        }
        try db.execute(sql: "DELETE FROM topology")
        for (key, value) in edges.sorted(by: { $0.key < $1.key }) {
            let parts = key.components(separatedBy: "→")
            try db.execute(sql: "INSERT INTO topology (front, back, evidence, events) VALUES (?,?,?,?)",
                           arguments: [parts[0], parts[1], value.evidence, value.events])
        }
    }
}
