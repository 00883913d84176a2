import Foundation
import GRDB
import Testing
@testable import InvestigateKit

/// `peer_ip` and `forwarded_for` equal to `client_ip` are stored as x'' (v12,
/// `Schema.sameAsClientColumns`): every reader sees the address, and a search by address finds it.
@Suite struct SameAsClientTests {
    /// nginx `combined` with nobody in front (peer is client), and behind a balancer with
    /// X-Forwarded-For (peer is the balancer, forwarded_for is the client).
    static let direct = #"198.51.100.7 - - [06/Feb/2025:14:32:45 +0000] "GET /direct HTTP/1.1" 404 5 "-" "curl/8.0""#
    static func behind(_ second: Int) -> String {
        #"10.1.1.210 - - [06/Feb/2025:14:32:4\#(second) +0000] "GET /behind HTTP/1.1" 403 5 "-" "curl/8.0" "203.0.113.9""#
    }

    static func store() throws -> (TimelineStore, TemporaryDirectory) {
        let dir = try TemporaryDirectory()
        let format = #"log_format xff '$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent" "$http_x_forwarded_for"';"#
        try dir.write("nginx.conf", "http {\n    " + format + "\n    access_log /var/log/nginx/behind.log xff;\n}\n")
        try dir.write("direct/access.log", direct + "\n")
        try dir.write("behind/behind.log", behind(6) + "\n" + behind(7) + "\n")
        let store = try TimelineStore()
        _ = try Ingester(store: store).ingest(paths: [dir.path])
        return (store, dir)
    }

    @Test func thePeerThatIsTheClientIsStoredOnceAndReadEverywhere() throws {
        let (store, _) = try Self.store()
        try store.read { db in
            let stored = try Row.fetchAll(db, sql: """
                SELECT e.path AS path, typeof(d.peer_ip) AS peer, typeof(d.forwarded_for) AS xff
                FROM event e JOIN event_data d ON d.id = e.id WHERE e.layer = 'nginx' ORDER BY e.id
                """).map { "\($0["path"] as String) \($0["peer"] as String) \($0["xff"] as String)" }
            #expect(stored.sorted() == ["/behind text blob", "/behind text blob", "/direct blob null"])
            // Through the view, in plain SQL, and through the code's reader.
            let direct = try #require(try Row.fetchOne(db, sql: "SELECT client_ip, peer_ip, forwarded_for FROM events WHERE path = '/direct'"))
            #expect(direct["client_ip"] as String? == "198.51.100.7")
            #expect(direct["peer_ip"] as String? == "198.51.100.7")
            #expect(direct["forwarded_for"] as String? == nil)
            let events = try StoredEvent.fetchAll(db, sql: "SELECT \(StoredEvent.columns) FROM event WHERE layer = 'nginx' ORDER BY id").map(\.event)
            let byPath = Dictionary(grouping: events, by: { $0.path ?? "" })
            #expect(byPath["/direct"]?.first?.peerIP == "198.51.100.7")
            for e in byPath["/behind"] ?? [] {
                // Behind the balancer the client is the forwarded address, and the peer stays text.
                #expect(e.peerIP == "10.1.1.210")
                #expect(e.clientIP == e.forwardedFor)
            }
            #expect(byPath["/behind"]?.count == 2)
            // `export`'s reader (bytes through `Row`).
            let exported = try Row.fetchAll(db, sql: "SELECT \(StoredEvent.columnsAsBytes("e")) FROM event e WHERE e.layer = 'nginx' ORDER BY e.id")
            #expect(exported.map { StoredEvent.text($0, "peer_ip") }.contains("198.51.100.7"))
        }
        // Correlation reads `event_data` itself.
        let nodes = try Correlator(store: store).loadNodes(from: 0, to: Int64.max, chainsUpTo: 0, skipping: [])
        #expect(nodes.contains { $0.path == "/direct" && $0.peerIP == "198.51.100.7" })
        #expect(nodes.filter { $0.path == "/behind" }.allSatisfy { $0.peerIP == "10.1.1.210" })
    }

    @Test func aSearchByAddressFindsPeersStoredEitherWayThroughTheIndex() throws {
        let (store, _) = try Self.store()
        _ = try Correlator(store: store).run()
        let at = try store.read { db in try Int64.fetchOne(db, sql: "SELECT min(time) FROM event") ?? 0 }
        for (address, path) in [("198.51.100.7", "/direct"), ("10.1.1.210", "/behind"), ("203.0.113.9", "/behind")] {
            var q = TimelineQuery(from: at - 60_000_000, to: at + 60_000_000)
            q.clientIP = address
            let (chains, _) = try TimelineView.build(store, q)
            #expect(chains.contains { $0.path == path }, "\(address)")
        }
        // `timeline --ip` built the peer index; the search on the view's stored column uses it.
        let plan = try store.read { db in
            try Row.fetchAll(db, sql: "EXPLAIN QUERY PLAN SELECT id FROM event WHERE time >= 0 AND (client_ip = 'a' OR stored_peer_ip = 'a')")
                .map { $0["detail"] as String }.joined(separator: "\n")
        }
        #expect(plan.contains("event_peer_ip"), "\(plan)")
    }
}
