import Foundation
import GRDB
import Testing
@testable import InvestigateKit

@Suite struct TimelineViewTests {
    @Test func aClientsRequestsAreGroupedByChainInTimeOrder() throws {
        let store = try FixtureTimelines.store("waf-block-2025-02-06")
        let at = FixtureTimelines.at("2025-02-06 14:32", "Asia/Tokyo")
        var q = TimelineQuery(from: at - 120_000_000, to: at + 120_000_000)
        q.clientIP = "203.0.113.45"
        let (chains, truncated) = try TimelineView.build(store, q)
        #expect(!truncated)
        let blocked = chains.filter { $0.status == 403 }
        #expect(blocked.count == 3)
        for chain in blocked {
            #expect(chain.layers == [.waf, .alb])
            #expect(chain.members.allSatisfy { $0.key == "trace_id" })
        }
        // The later successful request reached every layer of the stack.
        let ok = try #require(chains.first { $0.status == 200 && $0.path == "/app/admin" })
        #expect(ok.layers == [.waf, .alb, .nginx, .app])
        let firsts = chains.compactMap(\.first)
        #expect(firsts == firsts.sorted())
        let text = TimelineView.render(chains, zone: ZoneSpec("Asia/Tokyo")!, truncated: false)
        #expect(text.contains("+0900"))
        #expect(text.contains("access.log"))
    }

    @Test func jsonIsOneObjectPerChainWithSourcesAndKeys() throws {
        let store = try FixtureTimelines.store("apigw-bot-scan-2026-01-22")
        let at = FixtureTimelines.at("2026-01-22 03:55", "UTC")
        var q = TimelineQuery(from: at - 60_000_000, to: at + 60_000_000)
        q.layer = .lambda
        let (chains, _) = try TimelineView.build(store, q)
        #expect(!chains.isEmpty)
        let object = TimelineView.json(chains[0])
        let data = try JSONEncoder().encode(object)
        let decoded = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        let events = try #require(decoded["events"] as? [[String: Any]])
        #expect(events.contains { $0["layer"] as? String == "lambda" })
        #expect(events.contains { $0["layer"] as? String == "apigateway" })
        #expect(events.allSatisfy { ($0["source"] as? String)?.isEmpty == false && ($0["line"] as? Int ?? 0) > 0 })
    }

    @Test func requestAndStatusFilters() throws {
        let store = try FixtureTimelines.store("waf-block-2025-02-06")
        let at = FixtureTimelines.at("2025-02-06 14:32", "Asia/Tokyo")
        var q = TimelineQuery(from: at - 120_000_000, to: at + 120_000_000)
        q.status = StatusFilter("4xx")
        let (chains, _) = try TimelineView.build(store, q)
        #expect(chains.allSatisfy { $0.members.contains { ($0.event.event.status ?? 0) / 100 == 4 } })
        let trace = try #require(chains.lazy.flatMap(\.members).compactMap(\.event.event.traceID).first)
        var byID = TimelineQuery(from: 0, to: Int64.max / 2)
        byID.requestID = "Root=" + trace
        let (one, _) = try TimelineView.build(store, byID)
        #expect(one.count == 1)
    }

    /// A request id finds its records over the whole timeline through the id indexes, built for
    /// the question, and API Gateway's extended request id (kept in `extra`) finds its record too.
    @Test func requestIDsAreFoundOverAnySpan() throws {
        let store = try FixtureTimelines.store("apigw-bot-scan-2026-01-22")
        let (requestID, extendedID) = try store.read { db -> (String?, String?) in
            let row = try Row.fetchOne(db, sql: """
                SELECT request_id, json_extract(extra, '$.extended_request_id') AS xid FROM event
                WHERE layer = 'apigateway' AND kind = 'access' AND request_id IS NOT NULL
                  AND json_extract(extra, '$.extended_request_id') IS NOT NULL LIMIT 1
                """)
            return (row?["request_id"], row?["xid"])
        }
        let byRequest = try #require(requestID), byExtended = try #require(extendedID)
        var q = TimelineQuery(from: 0, to: Int64.max / 2)
        q.requestID = byRequest
        let (chains, _) = try TimelineView.build(store, q)
        #expect(chains.count == 1)
        #expect(chains.first?.members.contains { $0.event.event.requestID == byRequest } == true)
        let indexes = try store.read { db in Set(try db.indexes(on: "event_data").map(\.name)) }
        #expect(indexes.isSuperset(of: Schema.idIndexes.map(\.name)))
        q.requestID = byExtended
        let (again, _) = try TimelineView.build(store, q)
        #expect(again.map(\.members.count) == chains.map(\.members.count))
        #expect(again.first?.members.contains { $0.event.event.extra["extended_request_id"] == byExtended } == true)
    }
}
