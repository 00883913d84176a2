import Foundation

/// Matching within a slab: identifiers first, then client + method + path + time after clock
/// offsets, mutual best matches only. Pure functions of the nodes; no database access.
extension Correlator {
    struct PairKey: Hashable {
        var outer: Role
        var inner: Role
    }

    /// The hops fuzzy matching tries, outermost first. Which apply depends on the roles present:
    /// each present role is matched to the next present one on its path.
    static let edgePath: [Role] = [.cloudfront, .waf, .alb, .nginx, .gunicorn, .appResponse]
    static let apiPath: [Role] = [.waf, .apigateway]

    func hops(present: Set<Role>) -> [PairKey] {
        var pairs: [PairKey] = []
        for path in [Self.edgePath, Self.apiPath] {
            let here = path.filter(present.contains)
            for i in 0..<max(0, here.count - 1) { pairs.append(PairKey(outer: here[i], inner: here[i + 1])) }
        }
        // A distribution's web ACL joins CloudFront's record by the edge request id alone; with no
        // CloudFront log, it is matched to the first layer behind CloudFront, as CloudFront would be.
        if present.contains(.wafAtEdge) && !present.contains(.cloudfront),
           let next = Self.edgePath.dropFirst().first(where: present.contains) {
            pairs.append(PairKey(outer: .wafAtEdge, inner: next))
        }
        // Attachments inside one layer or to the request record of the app.
        if present.contains(.nginxError) && present.contains(.nginx) { pairs.append(PairKey(outer: .nginx, inner: .nginxError)) }
        if present.contains(.appRequest) {
            if present.contains(.nginx) { pairs.append(PairKey(outer: .nginx, inner: .appRequest)) }
            if present.contains(.appResponse) { pairs.append(PairKey(outer: .appRequest, inner: .appResponse)) }
        }
        if present.contains(.appLog) {
            if present.contains(.nginx) { pairs.append(PairKey(outer: .nginx, inner: .appLog)) }
            else if present.contains(.appResponse) { pairs.append(PairKey(outer: .appResponse, inner: .appLog)) }
        }
        return pairs
    }

    /// What both records of a hop must share: the path, and the client (or nginx's peer) and the
    /// method where both sides log them. A struct, not a joined string: it is built per record
    /// per hop, and hashing the parts costs less than allocating their concatenation.
    struct BucketKey: Hashable {
        var path: String
        var address: String?
        var method: String?
    }

    /// The bucket both records of a hop must share.
    func bucket(_ n: Node, _ pair: PairKey, asOuter: Bool) -> BucketKey? {
        guard let path = n.path else { return nil }
        var key = BucketKey(path: path)
        let useClient = pair.outer.knowsClient && pair.inner.knowsClient
        if useClient {
            // nginx's error log names its peer (the load balancer), not the client.
            guard let ip = n.clientIP else { return nil }
            key.address = ip
        }
        if pair == PairKey(outer: .nginx, inner: .nginxError) {
            guard let ip = asOuter ? n.peerIP : n.clientIP else { return nil }
            key.address = ip
        }
        let outerHasMethod = pair.outer != .appResponse
        let innerHasMethod = pair.inner != .appResponse && pair.inner != .appLog
        if outerHasMethod && innerHasMethod {
            guard let m = n.method else { return nil }
            key.method = m
        }
        return key
    }

    /// Whether two records' other fields agree (query and status where both have them).
    func compatible(_ o: Node, _ i: Node, _ pair: PairKey) -> Bool {
        if let oq = o.query, let iq = i.query, oq != iq { return false }
        if pair.inner == .nginxError || pair.inner == .appLog || pair.inner == .appRequest || pair.outer == .appRequest { return true }
        let forwarded: Int? = pair.outer == .alb ? o.targetStatus : o.status
        guard let os = forwarded, let inner = i.status else { return true }
        if os == inner { return true }
        // A proxy answers on its own when its upstream failed or the client left; CloudFront
        // answers 502/504 when its origin was too slow, whatever the origin answered later.
        if pair.outer == .nginx || pair.outer == .gunicorn { return [499, 502, 503, 504, 413, 408].contains(os) }
        // The origin's own record then ends after CloudFront's (it finished, late); one that ended
        // before CloudFront gave up was another request's.
        if pair.outer == .cloudfront, [502, 504].contains(os), let oc = o.completion, let ic = i.completion {
            return ic >= oc - 1_000_000
        }
        if pair.outer == .cloudfront { return false }
        return false
    }

    /// Distance between two records' comparable stamps (µs), after the inner clock's offset, or nil
    /// when they cannot be the same request.
    func distance(_ o: Node, _ i: Node, offset: Int64, window: Int64) -> Int64? {
        if i.role == .nginxError || i.role == .appLog {
            // A message logged while the request was in flight.
            let t = i.time - offset
            let start = (o.arrival ?? (o.completion.map { $0 - settings.maxDuration } ?? o.time)) - window
            let end = (o.completion ?? o.arrival.map { $0 + settings.maxDuration } ?? o.time) + window
            guard t >= start, t <= end else { return nil }
            return o.completion.map { abs($0 - t) } ?? abs(o.time - t)
        }
        if let oa = o.arrival, let ia = i.arrival { let d = abs(ia - offset - oa); return d <= window ? d : nil }
        if let oc = o.completion, let ic = i.completion { let d = abs(ic - offset - oc); return d <= window ? d : nil }
        if let oa = o.arrival, let ic = i.completion {
            let d = ic - offset - oa
            return d >= -window && d <= settings.maxDuration + window ? abs(d) : nil
        }
        if let oc = o.completion, let ia = i.arrival {
            let d = oc - (ia - offset)
            return d >= -window && d <= settings.maxDuration + window ? abs(d) : nil
        }
        let d = abs(i.time - offset - o.time)
        return d <= window ? d : nil
    }

    /// Same-kind stamp difference (inner − outer) for offset estimation, or nil when the two records
    /// have no stamps of the same meaning.
    func stampDifference(_ o: Node, _ i: Node) -> Int64? {
        if let oa = o.arrival, let ia = i.arrival { return ia - oa }
        if let oc = o.completion, let ic = i.completion { return ic - oc }
        return nil
    }

    func collectOffsetSamples(_ nodes: [Node], into samples: inout [PairKey: [Int64]]) {
        let byRole = Dictionary(grouping: nodes, by: \.role)
        for pair in hops(present: Set(byRole.keys)) where pair.inner != .nginxError && pair.inner != .appLog {
            guard let outers = byRole[pair.outer], let inners = byRole[pair.inner] else { continue }
            var innerBuckets: [BucketKey: [Node]] = [:]
            for n in inners { if let k = bucket(n, pair, asOuter: false) { innerBuckets[k, default: []].append(n) } }
            var outerCount: [BucketKey: Int] = [:]
            for n in outers { if let k = bucket(n, pair, asOuter: true) { outerCount[k, default: 0] += 1 } }
            for o in outers {
                guard let k = bucket(o, pair, asOuter: true), let candidates = innerBuckets[k] else { continue }
                // Unambiguous only: one record of each side in this bucket within the wide window.
                guard outerCount[k] == 1 else { continue }
                let near = candidates.filter { compatible(o, $0, pair) && distance(o, $0, offset: 0, window: settings.offsetWindow) != nil }
                guard near.count == 1, let d = stampDifference(o, near[0]) else { continue }
                if samples[pair, default: []].count < 20_000 { samples[pair, default: []].append(d) }
            }
        }
    }

    /// Links decided for one slab: groups of node indices, each with the key that joined them.
    struct Plan {
        var unions: [(Int, Int, String, Double)] = []
        var ambiguous: [(Int, [Int64], String)] = []
    }

    func linkPlan(_ nodes: [Node], offsets: [PairKey: Int64], core: Range<Int64>) -> Plan {
        var plan = Plan()
        // Identifier keys, each in the space of ids it can equal (a struct: no string is built per record).
        struct IDKey: Hashable {
            enum Space: UInt8 { case trace, apigwRequest, lambdaRequest, extendedRequest, nginxRequest, edgeRequest }
            var space: Space
            var value: String
        }
        var firstByKey: [IDKey: Int] = [:]
        func joinID(_ space: IDKey.Space, _ value: String?, _ index: Int, _ label: String, _ confidence: Double) {
            guard let value, !value.isEmpty, value != "-" else { return }
            let key = IDKey(space: space, value: value)
            if let other = firstByKey[key] { plan.unions.append((other, index, label, confidence)) } else { firstByKey[key] = index }
        }
        for (index, n) in nodes.enumerated() {
            joinID(.trace, n.traceID, index, "trace_id", 1.0)
            if n.role == .apigateway || n.role == .apigatewayExecution || n.role == .lambda {
                joinID(n.role == .lambda ? .lambdaRequest : .apigwRequest, n.requestID, index, "request_id", 0.98)
            }
            joinID(.extendedRequest, n.extendedRequestID, index, "extended_request_id", 0.98)
            if n.role == .waf { joinID(.extendedRequest, n.requestID, index, "extended_request_id", 0.98) }
            // CloudFront's x-edge-request-id is the `httpRequest.requestId` of the WAF record of a
            // web ACL on that distribution (AWS WAF logging fields: "For all others, this is the
            // request ID"; CloudFront: "x-edge-request-id … in the response header, x-amz-cf-id").
            if n.role == .waf || n.role == .wafAtEdge || n.role == .cloudfront { joinID(.edgeRequest, n.requestID, index, "x_edge_request_id", 0.98) }
            joinID(.lambdaRequest, n.lambdaRequestID, index, "lambda_request_id", 0.98)
            if n.role == .nginx || n.role == .appRequest || n.role == .appResponse || n.role == .appLog {
                joinID(.nginxRequest, n.requestID, index, "request_id", 0.95)
            }
        }

        // Fuzzy hops, mutual best within the tolerance.
        var indicesByRole: [Role: [Int]] = [:]
        for (i, n) in nodes.enumerated() { indicesByRole[n.role, default: []].append(i) }
        let taken = matchNginxToApp(nodes, indicesByRole, offsets: offsets, core: core, plan: &plan)
        let appRoles: Set<Role> = [.appRequest, .appResponse]
        for pair in hops(present: Set(indicesByRole.keys)) {
            guard var outers = indicesByRole[pair.outer], var inners = indicesByRole[pair.inner] else { continue }
            // Records the joint nginx↔app match settled are not offered again to the same hops.
            if (pair.outer == .nginx && appRoles.contains(pair.inner)) || (pair.outer == .appRequest && pair.inner == .appResponse) {
                outers = outers.filter { !taken.contains($0) }
                inners = inners.filter { !taken.contains($0) }
            }
            let offset = offsets[pair] ?? 0
            var innerBuckets: [BucketKey: [Int]] = [:]
            for i in inners { if let k = bucket(nodes[i], pair, asOuter: false) { innerBuckets[k, default: []].append(i) } }
            var outerBuckets: [BucketKey: [Int]] = [:]
            // Buckets and candidates come out of dictionaries in a per-process random order; this
            // hop's decisions are collected and added in index order, so runs are reproducible
            // (an earlier union can block a later one on a singular role).
            var hop = Plan()
            for o in outers { if let k = bucket(nodes[o], pair, asOuter: true) { outerBuckets[k, default: []].append(o) } }
            let singularInner = pair.inner.isSingular
            let strength = (pair.outer.knowsClient && pair.inner.knowsClient) ? 0.9 : 0.75
            for (k, os) in outerBuckets {
                guard let isx = innerBuckets[k] else { continue }
                if os.count == 1 && isx.count == 1 {
                    // The usual bucket, one record a side: no rival either way, so the general
                    // path below would link them exactly when they are compatible and in reach.
                    let o = os[0], i = isx[0]
                    guard abs(nodes[i].time - anchor(nodes[o], nodes[i])) <= reach(nodes[o], nodes[i], pair, offset: offset), compatible(nodes[o], nodes[i], pair),
                          let d = distance(nodes[o], nodes[i], offset: offset, window: settings.tolerance) else { continue }
                    hop.unions.append((o, i, "client+method+path+time", fuzzyConfidence(d, strength: strength)))
                    continue
                }
                // Candidate distances, both ways.
                var bestForOuter: [Int: [(Int, Int64)]] = [:]
                var bestForInner: [Int: [(Int, Int64)]] = [:]
                // Inner records by time: each outer record looks only at those that can be in reach.
                let sortedInner = isx.sorted { nodes[$0].time < nodes[$1].time }
                let span = reach(nodes[os[0]], nodes[sortedInner[0]], pair, offset: offset)
                for o in os {
                    let at = anchor(nodes[o], nodes[sortedInner[0]])
                    var k = Self.lowerBound(sortedInner, at - span) { nodes[$0].time }
                    while k < sortedInner.count, nodes[sortedInner[k]].time <= at + span {
                        let i = sortedInner[k]
                        k += 1
                        guard compatible(nodes[o], nodes[i], pair) else { continue }
                        guard let d = distance(nodes[o], nodes[i], offset: offset, window: settings.tolerance) else { continue }
                        bestForOuter[o, default: []].append((i, d))
                        bestForInner[i, default: []].append((o, d))
                    }
                }
                for (o, candidates) in bestForOuter {
                    let sorted = candidates.sorted { $0.1 < $1.1 }
                    let best = sorted[0]
                    if singularInner, sorted.count > 1, sorted[1].1 - best.1 < settings.ambiguityMargin {
                        if core.contains(nodes[best.0].time) || core.contains(nodes[o].time) {
                            let tied = sorted.prefix { $0.1 - best.1 < settings.ambiguityMargin }
                            // The inner records are the ambiguous ones: several fit this outer record.
                            for t in tied where nodes[t.0].chain == nil {
                                hop.ambiguous.append((t.0, tied.map { nodes[$0.0].id } + [nodes[o].id],
                                                       "\(tied.count) \(pair.inner.rawValue) records fit one \(pair.outer.rawValue) record equally"))
                            }
                        }
                        continue
                    }
                    // Mutual: this outer must also be the inner's clear best.
                    let back = (bestForInner[best.0] ?? []).sorted { $0.1 < $1.1 }
                    guard let first = back.first, first.0 == o else { continue }
                    if back.count > 1, back[1].1 - first.1 < settings.ambiguityMargin, pair.outer.isSingular {
                        if nodes[best.0].chain == nil, core.contains(nodes[best.0].time) {
                            hop.ambiguous.append((best.0, back.prefix(2).map { nodes[$0.0].id },
                                                   "\(pair.inner.rawValue) record fits two \(pair.outer.rawValue) records equally"))
                        }
                        continue
                    }
                    hop.unions.append((o, best.0, "client+method+path+time", fuzzyConfidence(best.1, strength: strength)))
                }
            }
            plan.unions += hop.unions.sorted { ($0.0, $0.1) < ($1.0, $1.1) }
            plan.ambiguous += hop.ambiguous.sorted { a, b in
                a.0 != b.0 ? a.0 < b.0 : a.2 != b.2 ? a.2 < b.2 : a.1.lexicographicallyPrecedes(b.1)
            }
        }
        return plan
    }

    /// The outer record's stamp to look for the inner record's `time` around: its arrival when the
    /// inner record is stamped at arrival (an app's `Request:` line, a minute before nginx logged
    /// the end of a long request), its completion when the inner one is stamped at completion.
    /// A record's `time` is its arrival or its completion, so the two then mean the same moment.
    func anchor(_ o: Node, _ i: Node) -> Int64 {
        if let ia = i.arrival, ia == i.time, let oa = o.arrival { return oa }
        if let ic = i.completion, ic == i.time, let oc = o.completion { return oc }
        return o.time
    }

    /// How far apart (µs) the stamps of a hop's two records can be and still be one request: with
    /// stamps of the same meaning (arrival with arrival, completion with completion) little more
    /// than the tolerance and the offset; otherwise a whole request's duration too. The first
    /// records of a bucket stand for all of it (one layer's records carry the same stamps).
    func reach(_ o: Node, _ i: Node, _ pair: PairKey, offset: Int64) -> Int64 {
        let sameMeaning = (o.arrival != nil && i.arrival != nil) || (o.completion != nil && i.completion != nil)
        // CloudFront gives up on a slow origin (its response timeout) long before the origin's own
        // record is written: their arrivals agree, their completions need not.
        let gaveUp = pair.outer == .cloudfront && [502, 504].contains(o.status ?? 0)
        return (sameMeaning && !gaveUp && pair.inner != .nginxError && pair.inner != .appLog ? 0 : settings.maxDuration)
            + 2 * settings.tolerance + abs(offset) + 1_000_000
    }

    /// A fuzzy link's confidence: the key's strength, less up to a fifth as the stamps drift apart.
    func fuzzyConfidence(_ distance: Int64, strength: Double) -> Double {
        strength * (1.0 - Double(distance) / Double(max(settings.tolerance, 1)) * 0.2)
    }

    /// nginx ↔ the app's Request and Response lines, matched as one triple. nginx stamps whole
    /// seconds, so concurrent requests for one path tie on time; but `$request_time` and the app's
    /// Request→Response duration are both millisecond-precise, and differ from request to request.
    /// Returns the indices it linked.
    func matchNginxToApp(_ nodes: [Node], _ byRole: [Role: [Int]], offsets: [PairKey: Int64], core: Range<Int64>,
                         plan: inout Plan) -> Set<Int> {
        guard let nginxes = byRole[.nginx], let responses = byRole[.appResponse], let requests = byRole[.appRequest] else { return [] }
        let respOffset = offsets[PairKey(outer: .nginx, inner: .appResponse)] ?? 0
        let reqOffset = offsets[PairKey(outer: .nginx, inner: .appRequest)] ?? 0
        var responsesByPath: [String: [Int]] = [:]
        for r in responses { if let p = nodes[r].path { responsesByPath[p, default: []].append(r) } }
        var requestsByPath: [String: [Int]] = [:]
        for q in requests { if let p = nodes[q].path { requestsByPath[p, default: []].append(q) } }
        for k in requestsByPath.keys { requestsByPath[k]!.sort { nodes[$0].time < nodes[$1].time } }

        for k in responsesByPath.keys { responsesByPath[k]!.sort { nodes[$0].time < nodes[$1].time } }
        struct Triple { var n: Int; var q: Int; var r: Int; var score: Int64 }
        var triples: [Triple] = []
        let second: Int64 = 1_000_000
        let responsePair = PairKey(outer: .nginx, inner: .appResponse)
        for n in nginxes {
            guard let path = nodes[n].path, let done = nodes[n].completion, let rs = responsesByPath[path] else { continue }
            let truncated = done % second == 0
            let slack = truncated ? second : 0
            let rt = nodes[n].duration
            // Responses whose (offset-corrected) time falls in nginx's completion window.
            let lo = Self.lowerBound(rs, done - settings.tolerance + respOffset) { nodes[$0].time }
            var ri = lo
            while ri < rs.count, nodes[rs[ri]].time <= done + slack + settings.tolerance + respOffset {
                let r = rs[ri]
                ri += 1
                guard compatible(nodes[n], nodes[r], responsePair) else { continue }
                let respTime = nodes[r].time
                guard let qs = requestsByPath[path] else { continue }
                // Requests near nginx's arrival (completion − $request_time), or before the response.
                let qFrom = rt.map { done - $0 - settings.tolerance + reqOffset } ?? respTime - settings.maxDuration
                var qi = Self.lowerBound(qs, qFrom) { nodes[$0].time }
                while qi < qs.count, nodes[qs[qi]].time <= respTime {
                    let q = qs[qi]
                    qi += 1
                    if let m = nodes[n].method, let rm = nodes[q].method, m != rm { continue }
                    let appDuration = respTime - nodes[q].time
                    guard appDuration <= settings.maxDuration else { continue }
                    let score: Int64
                    if let rt {
                        // nginx's time includes the app's plus a little proxying.
                        guard appDuration <= rt + 50_000 else { continue }
                        let qa = nodes[q].time - reqOffset
                        guard qa <= done - rt + slack + settings.tolerance else { continue }
                        score = abs(rt - appDuration)
                    } else {
                        score = abs(respTime - respOffset - done)
                    }
                    triples.append(Triple(n: n, q: q, r: r, score: score))
                }
            }
        }
        // A record whose two best triples (with different partners) are this close is ambiguous.
        let margin: Int64 = 2_000
        var bestOf: [Int: [Triple]] = [:]
        for t in triples { for key in [t.n, t.q, t.r] { bestOf[key, default: []].append(t) } }
        func clear(_ t: Triple, _ key: Int) -> Bool {
            let others = (bestOf[key] ?? []).filter { !($0.n == t.n && $0.q == t.q && $0.r == t.r) }
            // Ties only matter with a different record in the other roles.
            return !others.contains { o in o.score - t.score < margin && (o.n != t.n || o.r != t.r) }
        }
        var used = Set<Int>()
        var taken = Set<Int>()
        for t in triples.sorted(by: { ($0.score, $0.n, $0.r, $0.q) < ($1.score, $1.n, $1.r, $1.q) }) {
            guard !used.contains(t.n), !used.contains(t.q), !used.contains(t.r) else { continue }
            guard clear(t, t.n), clear(t, t.r) else {
                if nodes[t.n].chain == nil, core.contains(nodes[t.n].time) {
                    plan.ambiguous.append((t.n, [nodes[t.r].id, nodes[t.q].id], "several app Request/Response pairs fit one nginx record equally"))
                }
                used.insert(t.n)
                continue
            }
            used.formUnion([t.n, t.q, t.r])
            taken.formUnion([t.n, t.q, t.r])
            plan.unions.append((t.n, t.r, "client+method+path+time", 0.85))
            plan.unions.append((t.n, t.q, "client+method+path+time", 0.85))
        }
        return taken
    }

    /// First index in `sorted` whose key is at least `value`.
    static func lowerBound(_ sorted: [Int], _ value: Int64, key: (Int) -> Int64) -> Int {
        var lo = 0, hi = sorted.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if key(sorted[mid]) < value { lo = mid + 1 } else { hi = mid }
        }
        return lo
    }
}
