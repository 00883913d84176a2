import Foundation
import GRDB
import GRDBSQLite

/// Applying a slab's plan: unions into chains and links (`Resolution`), stored by the thread that
/// owns the connection, and chain summaries.
extension Correlator {
    /// What one slab's plan changes in the tables, decided in memory (on the matching thread) and
    /// stored afterwards by the thread that owns the connection.
    struct Resolution {
        /// New chains, with ids assigned here (the connection is this run's only writer).
        var chains: [(id: Int64, summary: ChainSummary)] = []
        /// New links, in event-id order (the link table's key).
        var links: [(event: Int64, chain: Int64, key: String, confidence: Double)] = []
        /// Stored chains joined by an identifier: `other`'s links move to `keep`, and it goes.
        var merges: [(keep: Int64, other: Int64)] = []
        var ambiguous: [(event: Int64, candidates: String, reason: String)] = []
        /// Stored chains that gained records: their summaries are recomputed once the links are in.
        var resummarise: [Int64] = []
        var nextChainID: Int64

        /// Gives records of the next slab, read before this one was stored, the chains this one
        /// gave them or merged theirs into.
        func patch(_ nodes: [Node]) {
            guard !links.isEmpty || !merges.isEmpty else { return }
            var chainOf = [Int64: Int64](minimumCapacity: links.count)
            for link in links { chainOf[link.event] = link.chain }
            let renamed = Dictionary(merges.map { ($0.other, $0.keep) }, uniquingKeysWith: { a, _ in a })
            for node in nodes {
                if let chain = node.chain {
                    if let keep = renamed[chain] { node.chain = keep }
                } else if let chain = chainOf[node.id] {
                    node.chain = chain
                }
            }
        }
    }

    /// Turns a slab's plan into chains and links: the unions are applied (at most one record of a
    /// singular role per chain; two stored chains joined only on an identifier), each component
    /// that gained a record becomes or extends a chain.
    func resolve(_ plan: Plan, nodes: [Node], core: Range<Int64>, firstChainID: Int64) -> Resolution {
        var result = Resolution(nextChainID: firstChainID)
        var parent = Array(0..<nodes.count)
        func find(_ x: Int) -> Int {
            var r = x
            while parent[r] != r { r = parent[r] }
            var c = x
            while parent[c] != r { let next = parent[c]; parent[c] = r; c = next }
            return r
        }
        // Per node index, kept at the component's root: the roles present (a bit per role, to keep
        // at most one record of a singular role per chain) and whether it holds a stored chain.
        // Arrays, not dictionaries: a slab holds tens of thousands of nodes and this runs per union.
        var roles = nodes.map(\.role.bit)
        var rootHasChain = nodes.map { $0.chain != nil }
        // Records of one stored chain start as one component: its roles count against fuzzy
        // matches, and two components can never both claim (and merge away) the same chain.
        var firstOfChain: [Int64: Int] = [:]
        for (i, n) in nodes.enumerated() {
            guard let chain = n.chain else { continue }
            if let first = firstOfChain[chain] {
                let ra = find(first), rb = find(i)
                if ra != rb { parent[rb] = ra; roles[ra] |= roles[rb] }
            } else {
                firstOfChain[chain] = i
            }
        }
        var keyOf = [(key: String, confidence: Double)?](repeating: nil, count: nodes.count)
        for (a, b, key, confidence) in plan.unions {
            let ra = find(a), rb = find(b)
            if ra == rb { continue }
            let ia = roles[ra], ib = roles[rb]
            if key == "client+method+path+time", ia & ib & Role.singularBits != 0 { continue }
            // Two chains already stored are merged only on an identifier, never on a fuzzy match.
            if key == "client+method+path+time", rootHasChain[ra], rootHasChain[rb] { continue }
            parent[rb] = ra
            roles[ra] = ia | ib
            if rootHasChain[rb] { rootHasChain[ra] = true }
            for x in [a, b] where keyOf[x] == nil || keyOf[x]!.confidence < confidence { keyOf[x] = (key, confidence) }
        }
        // Components in order of their earliest member, members ascending (deterministic chain ids);
        // records linked to nothing are left out here (see below).
        var size = [Int32](repeating: 0, count: nodes.count)
        for i in nodes.indices { size[find(i)] += 1 }
        var componentOfRoot = [Int](repeating: -1, count: nodes.count)
        var ordered: [[Int]] = []
        for i in nodes.indices {
            let r = find(i)
            guard size[r] >= 2 else { continue }
            if componentOfRoot[r] < 0 {
                componentOfRoot[r] = ordered.count
                ordered.append([i])
            } else {
                ordered[componentOfRoot[r]].append(i)
            }
        }

        for a in plan.ambiguous where size[find(a.0)] == 1 { // else linked by an identifier after all
            let candidates = "[" + a.1.map(String.init).joined(separator: ",") + "]"
            result.ambiguous.append((nodes[a.0].id, candidates, a.2))
        }

        for members in ordered {
            let unlinked = members.filter { nodes[$0].chain == nil }
            guard !unlinked.isEmpty else { continue }
            // Wholly in the forward margin: the next slab sees its full neighbourhood and decides.
            guard members.contains(where: { nodes[$0].time < core.upperBound }) else { continue }
            // A record linked to nothing (a component of one, left out above) stays out of the
            // chain tables: it is its own request (queries treat an unlinked access record as a
            // chain of one), and millions of single-layer records cost nothing to correlate.
            let existing = Set(members.compactMap { nodes[$0].chain }).sorted()
            let chainID: Int64
            if let keep = existing.first {
                chainID = keep
                for other in existing.dropFirst() { result.merges.append((keep, other)) }
                result.resummarise.append(keep)
            } else {
                // A new chain is stored with its summary from the records in hand (no query per chain).
                chainID = result.nextChainID
                result.nextChainID += 1
                result.chains.append((chainID, Self.summary(members.map { nodes[$0] })))
            }
            for m in unlinked {
                let (key, confidence) = keyOf[m] ?? (key: "member", confidence: 0.5)
                result.links.append((nodes[m].id, chainID, key, confidence))
            }
        }
        result.links.sort { $0.event < $1.event }
        return result
    }

    /// Stores one slab's resolution.
    static func store(_ r: Resolution, db: Database) throws {
        let insertAmbiguous = try BoundStatement(db.cachedStatement(sql: """
            INSERT OR REPLACE INTO ambiguous (event_id, candidates, reason) VALUES (?,?,?)
            """))
        for a in r.ambiguous {
            insertAmbiguous.bind(1, a.event)
            insertAmbiguous.bind(2, a.candidates)
            insertAmbiguous.bind(3, a.reason)
            try insertAmbiguous.run()
        }
        for merge in r.merges {
            try db.execute(sql: "UPDATE link SET chain_id = ? WHERE chain_id = ?", arguments: [merge.keep, merge.other])
            try db.execute(sql: "DELETE FROM chain WHERE id = ?", arguments: [merge.other])
        }
        // OR FAIL for the reason `EventWriter` gives: under ABORT, each multi-row statement first
        // copied the pages it touched into a statement journal.
        try MultiRowInsert(db, "INSERT OR FAIL INTO chain (id, first_time, last_time, client_ip, method, path, status, layers) VALUES",
                           columns: 8).insert(r.chains) { statement, first, chain in
            statement.bind(first, chain.id)
            statement.bind(first + 1, chain.summary.first)
            statement.bind(first + 2, chain.summary.last)
            statement.bind(first + 3, chain.summary.client)
            statement.bind(first + 4, chain.summary.method)
            statement.bind(first + 5, chain.summary.path)
            statement.bind(first + 6, chain.summary.status.map(Int64.init))
            statement.bind(first + 7, chain.summary.layers)
        }
        try MultiRowInsert(db, "INSERT OR IGNORE INTO link (event_id, chain_id, key, confidence) VALUES",
                           columns: 4).insert(r.links) { statement, first, link in
            statement.bind(first, link.event)
            statement.bind(first + 1, link.chain)
            statement.bind(first + 2, link.key)
            statement.bind(first + 3, link.confidence)
        }
        // Chains that grew are summarised again from all their records, once their links are in.
        for chainID in r.resummarise { try summarise(chainID, db: db) }
    }

    /// After all slabs: copies (the same line in syslog and in the app's file) follow their
    /// original into its chain, and records linked after all leave the ambiguous list.
    static func finishRun(_ db: Database) throws {
        // Copies live only in syslog sources: read their id ranges, not the whole timeline.
        try db.execute(sql: """
            INSERT OR IGNORE INTO link (event_id, chain_id, key, confidence)
            SELECT e.id, l.chain_id, 'copy', 1.0
            FROM source s JOIN event e ON e.id BETWEEN s.first_event_id AND s.last_event_id
            JOIN link l ON l.event_id = e.copy_of
            WHERE s.id IN (\(CopyLinker.copySources)) AND e.copy_of IS NOT NULL
              AND NOT EXISTS (SELECT 1 FROM link x WHERE x.event_id = e.id)
            """)
        // Per ambiguous record (few), not per link (millions): `IN (SELECT event_id FROM link)`
        // walked the whole link table.
        try db.execute(sql: "DELETE FROM ambiguous WHERE EXISTS (SELECT 1 FROM link l WHERE l.event_id = ambiguous.event_id)")
    }

    struct ChainSummary {
        var first: Int64?, last: Int64?
        var client: String?, method: String?, path: String?
        var status: Int?
        var layers: String
    }

    /// A new chain's summary from the records in hand: the status the client got is the outermost
    /// layer's answer.
    static func summary(_ members: [Node]) -> ChainSummary {
        let sorted = members.sorted { $0.role.layer < $1.role.layer }
        let access: Set<Role> = [.cloudfront, .waf, .wafAtEdge, .alb, .apigateway, .nginx, .gunicorn, .appResponse]
        let times = members.map(\.time)
        var layers: [Layer] = []
        for n in sorted where !layers.contains(n.role.layer) { layers.append(n.role.layer) }
        return ChainSummary(first: times.min(), last: times.max(),
                            client: sorted.lazy.filter { access.contains($0.role) }.compactMap(\.clientIP).first,
                            method: sorted.lazy.compactMap(\.method).first, path: sorted.lazy.compactMap(\.path).first,
                            status: sorted.lazy.filter { access.contains($0.role) }.compactMap(\.status).first,
                            layers: layers.map(\.rawValue).joined(separator: ","))
    }

    /// Refreshes a chain's summary columns from its records: the status the client got is the
    /// outermost layer's answer.
    static func summarise(_ chainID: Int64, db: Database) throws {
        let rows = try Row.fetchAll(db, sql: """
            SELECT e.layer, e.kind, e.time, CAST(e.client_ip AS BLOB) AS client_ip, CAST(e.method AS BLOB) AS method,
                   CAST(e.path AS BLOB) AS path, e.status FROM event e
            JOIN link l ON l.event_id = e.id WHERE l.chain_id = ?
            """, arguments: [chainID])
        guard !rows.isEmpty else { return }
        let sorted = rows.sorted { (Layer(rawValue: $0["layer"]) ?? .system) < (Layer(rawValue: $1["layer"]) ?? .system) }
        let access = sorted.filter { ($0["kind"] as String) == "access" }
        let times = rows.compactMap { $0["time"] as Int64? }
        // Log text is read as its bytes: GRDB's `Row` would end it at a NUL (`StoredEvent.text`).
        let client = access.lazy.compactMap { StoredEvent.text($0, "client_ip") }.first
        let method = sorted.lazy.compactMap { StoredEvent.text($0, "method") }.first
        let path = sorted.lazy.compactMap { StoredEvent.text($0, "path") }.first
        let status = access.lazy.compactMap { $0["status"] as Int? }.first
        let layers = Array(Set(rows.map { $0["layer"] as String })).sorted {
            (Layer(rawValue: $0) ?? .system) < (Layer(rawValue: $1) ?? .system)
        }.joined(separator: ",")
        try db.execute(sql: """
            UPDATE chain SET first_time = ?, last_time = ?, client_ip = ?, method = ?, path = ?, status = ?, layers = ? WHERE id = ?
            """, arguments: [times.min(), times.max(), client, method, path, status, layers, chainID])
    }
}
