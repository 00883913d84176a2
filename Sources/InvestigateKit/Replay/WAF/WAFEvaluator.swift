import Foundation

/// Three-valued outcome: a statement the logs cannot decide (a header they do not carry, a
/// managed rule group) is `unknown`, never silently true or false.
public enum Truth: Sendable, Equatable {
    case yes, no, unknown

    static func and(_ items: [Truth]) -> Truth {
        if items.contains(.no) { return .no }
        return items.contains(.unknown) ? .unknown : .yes
    }

    static func or(_ items: [Truth]) -> Truth {
        if items.contains(.yes) { return .yes }
        return items.contains(.unknown) ? .unknown : .no
    }

    var negated: Truth { self == .yes ? .no : self == .no ? .yes : .unknown }
}

/// A field's value in one request: values (several for AllQueryArguments), absent from the
/// request, or not carried by that layer's log.
enum FieldValue {
    case values([[UInt8]])
    case absent
    case notLogged(String)
}

/// What one request looks like to WAF statements, built from the fields a layer logged.
///
/// Headers: `User-Agent`, `Host` and `X-Forwarded-For` come from their columns; any other header
/// from `extra["header.<lowercase name>"]` or a WAF log's `extra["headers"]` (JSON list of
/// `{name,value}`, every header of the record; a repeated name counts at its first occurrence,
/// cookies are read from every `Cookie` header). The country is `extra["country"]` (WAF logs only).
struct RequestFields {
    let request: ReplayRequest
    private var extraCache: [String: String]?

    init(_ request: ReplayRequest) { self.request = request }

    static let userAgentLayers: Set<Layer> = [.waf, .alb, .nginx]

    mutating func extra() -> [String: String] {
        if let extraCache { return extraCache }
        var e = request.extra()
        for (n, v) in Self.headerList(e) { e["header." + n.lowercased()] = e["header." + n.lowercased()] ?? v }
        extraCache = e
        return e
    }

    /// A WAF log's `extra["headers"]`: every header as the record listed it, in order.
    static func headerList(_ e: [String: String]) -> [(name: String, value: String)] {
        guard let list = e["headers"], let data = list.data(using: .utf8),
              let items = try? JSONSerialization.jsonObject(with: data) as? [[String: Any]] else { return [] }
        return items.compactMap { item in
            guard let n = item["name"] as? String, let v = item["value"] as? String else { return nil }
            return (n, v)
        }
    }

    /// `extra["labels"]` of a WAF log (a JSON list of names or of `{"name":…}`, or comma-separated),
    /// only the managed groups' labels (`awswaf:managed:…`).
    mutating func managedLabels() -> [String] {
        guard let text = extra()["labels"], !text.isEmpty else { return [] }
        var names: [String] = []
        if let data = text.data(using: .utf8), let list = try? JSONSerialization.jsonObject(with: data) as? [Any] {
            for item in list {
                if let s = item as? String { names.append(s) }
                else if let s = (item as? [String: Any])?["name"] as? String { names.append(s) }
            }
        } else {
            names = text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        }
        return names.filter { $0.hasPrefix(WAFEvaluator.managedLabelPrefix) }
    }

    mutating func header(_ name: String) -> FieldValue {
        switch name {
        case "user-agent":
            if let ua = request.userAgent, ua != "-", !ua.isEmpty { return .values([Array(ua.utf8)]) }
            if let v = extra()["header.user-agent"] { return .values([Array(v.utf8)]) }
            return request.userAgent != nil || Self.userAgentLayers.contains(request.layer) ? .absent : .notLogged("SingleHeader user-agent")
        case "host":
            if let h = request.host { return .values([Array(h.utf8)]) }
        case "x-forwarded-for":
            if let f = request.forwardedFor { return f == "-" ? .absent : .values([Array(f.utf8)]) }
        default: break
        }
        let e = extra()
        if let v = e["header.\(name)"] { return .values([Array(v.utf8)]) }
        // A log that records headers and lacks this one: the request did not have it.
        if e["headers"] != nil || e.keys.contains(where: { $0.hasPrefix("header.") }) { return .absent }
        return .notLogged("SingleHeader \(name)")
    }

    /// A cookie's value, from the `Cookie` header (`a=1; b=2`) where the log records headers (WAF):
    /// the first cookie of that name; absent when the header or the cookie is missing.
    mutating func cookie(_ name: String) -> FieldValue {
        switch header("cookie") {
        case .values:
            // HTTP/2 clients may split cookies over several Cookie headers: read them all.
            for (n, header) in Self.headerList(extra()) where n.lowercased() == "cookie" {
                for pair in header.split(separator: ";") {
                    let kv = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                    if kv[0].trimmingCharacters(in: .whitespaces) == name {
                        return .values([Array((kv.count > 1 ? kv[1].trimmingCharacters(in: .whitespaces) : "").utf8)])
                    }
                }
            }
            return .absent
        case .absent: return .absent
        case .notLogged: return .notLogged("Cookie \(name)")
        }
    }

    var queryArguments: [(String, String)]? {
        guard request.path != nil || request.query != nil else { return nil }
        guard let q = request.query, !q.isEmpty else { return [] }
        return q.split(separator: "&").map { part in
            let kv = part.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            return (String(kv[0]), kv.count > 1 ? String(kv[1]) : "")
        }
    }

    mutating func field(_ f: FieldToMatch) -> FieldValue {
        switch f {
        case .uriPath:
            return request.path.map { .values([Array($0.utf8)]) } ?? .notLogged("UriPath")
        case .queryString:
            guard request.path != nil || request.query != nil else { return .notLogged("QueryString") }
            return .values([Array((request.query ?? "").utf8)])
        case .method:
            return request.method.map { .values([Array($0.utf8)]) } ?? .notLogged("Method")
        case .singleHeader(let name):
            return header(name)
        case .singleQueryArgument(let name):
            guard let args = queryArguments else { return .notLogged("SingleQueryArgument \(name)") }
            guard let v = args.first(where: { $0.0.lowercased() == name }) else { return .absent }
            return .values([Array(v.1.utf8)])
        case .allQueryArguments:
            guard let args = queryArguments else { return .notLogged("AllQueryArguments") }
            return args.isEmpty ? .absent : .values(args.map { Array($0.1.utf8) })
        case .unsupported(let name):
            return .notLogged(name)
        }
    }

    /// The client address a statement inspects: the TCP client, or a forwarded-IP header.
    mutating func address(_ config: ForwardedIPConfig?) -> (ip: String?, fallback: Truth?) {
        guard let config else { return (request.clientIP, nil) }
        switch header(config.header) {
        case .values(let v):
            // WAF takes the first address of the header.
            let first = String(decoding: v.first ?? [], as: UTF8.self).split(separator: ",").first.map { $0.trimmingCharacters(in: .whitespaces) }
            if let first, IPRange.parse(first) != nil { return (first, nil) }
            return (nil, config.fallbackMatches ? .yes : .no)
        case .absent:
            return (nil, config.fallbackMatches ? .yes : .no)
        case .notLogged:
            return (nil, .unknown)
        }
    }
}

/// A rate-based rule's sliding count for one aggregate key, in one-second buckets (so memory per
/// key is bounded by the window's seconds, not by the requests).
struct RateCounter {
    private var buckets: [(second: Int64, count: Int)] = []
    private var head = 0
    private(set) var total = 0
    var blockStart: Int64?
    var blockedRequests = 0
    var last: Int64 = 0

    /// Drops buckets older than the window at `time`; returns when the count fell to the limit if
    /// that happened while blocked (the block's end).
    mutating func expire(at time: Int64, window: Int64, limit: Int) -> Int64? {
        var ended: Int64?
        let second: Int64 = 1_000_000
        while head < buckets.count, (buckets[head].second + 1) * second + window <= time {
            total -= buckets[head].count
            let dropTime = (buckets[head].second + 1) * second + window
            head += 1
            if blockStart != nil, ended == nil, total <= limit { ended = dropTime }
        }
        if head > 32, head * 2 > buckets.count { buckets.removeFirst(head); head = 0 }
        return ended
    }

    mutating func add(_ time: Int64) {
        let s = time / 1_000_000
        if head < buckets.count, buckets[buckets.count - 1].second == s { buckets[buckets.count - 1].count += 1 }
        else { buckets.append((s, 1)) }
        total += 1
        last = time
    }

    /// When the count would fall to the limit if no more requests came.
    func projectedEnd(window: Int64, limit: Int) -> Int64 {
        guard total > limit else { return last }
        var remaining = total
        var i = head
        while i < buckets.count, remaining > limit {
            remaining -= buckets[i].count
            if remaining <= limit { return (buckets[i].second + 1) * 1_000_000 + window }
            i += 1
        }
        return last + window
    }
}

/// One rate-based block: an aggregate key over the limit from `start` until `end`.
public struct RateBlock: Sendable, Equatable {
    public var rule: String
    public var key: String
    public var start: Int64
    public var end: Int64
    public var requests: Int
}

/// Per-rule results of a what-if run.
public struct RuleStats: Sendable {
    public var name: String
    public var priority: Int
    public var action: String
    public var evaluated = 0
    public var matched = 0
    /// Requests this rule's terminating action decided.
    public var terminated = 0
    /// Of those, BLOCK / CAPTCHA / CHALLENGE (the request would not have reached the application).
    public var blocked = 0
    /// CAPTCHA / CHALLENGE rules: matching requests without a valid token, answered with the
    /// puzzle (405) or the challenge (202), and matching requests that passed with a valid token
    /// (those continue as with COUNT).
    public var challenged = 0
    public var passedWithToken = 0
    public var counted = 0
    public var undecided = 0
    public var undecidedReasons: [String: Int] = [:]
    public var matchedIPs: Set<String> = []
    public var blockedIPs: Set<String> = []
    public var rateBlocks: [RateBlock] = []
    public var rateBlockCount = 0
    public var collateral = 0
    public var collateralIPs: Set<String> = []
    public var collateralSamples: [String] = []
    public var unsupported: [String]
}

/// Whether the clients a CAPTCHA or CHALLENGE rule answered solved it: archived logs cannot show
/// it, so replay assumes it (`--captcha-solved`).
public enum PuzzleSolving: String, Sendable, CaseIterable {
    /// Every client presented a CAPTCHA puzzle or a challenge solves it at once: from the
    /// challenged request on, its token exempts it for the immunity time.
    case all
    /// Nobody solves: every matching request is challenged.
    case none
}

/// A client's AWS WAF token, as replay models it: when it last solved a CAPTCHA and passed a
/// challenge (AWS WAF keeps both timestamps in the one token). The client is its IP address.
struct PuzzleToken {
    var captcha: Int64?
    var challenge: Int64?
}

/// Evaluates a web ACL against archived requests with WAF's semantics: rules in priority order;
/// BLOCK and ALLOW end the evaluation, COUNT continues and adds its labels; CAPTCHA and CHALLENGE
/// end it unless the client holds a valid token, with which they continue as COUNT does; the
/// default action decides what no terminating rule matched.
///
/// Tokens (AWS WAF, "CAPTCHA and Challenge action behavior" and "token immunity times"): a rule
/// checks the token's CAPTCHA timestamp (CAPTCHA) or challenge timestamp (CHALLENGE), which is
/// valid while no more than the rule's immunity time (its own `CaptchaConfig`/`ChallengeConfig`,
/// else the web ACL's, default 300 s) has passed since it was set. Under `PuzzleSolving.all` a
/// challenged client solves at the challenged request's time: a CHALLENGE sets the challenge
/// timestamp; a CAPTCHA sets the CAPTCHA timestamp and, for a client that had no token yet, the
/// challenge timestamp too (the CAPTCHA interstitial runs a challenge first to create the token).
public final class WAFEvaluator {
    public let acl: WebACL
    public let solving: PuzzleSolving
    /// Tokens per client IP (only clients a CAPTCHA/CHALLENGE answered under `.all`).
    private var tokens: [String: PuzzleToken] = [:]
    public private(set) var stats: [RuleStats]
    public private(set) var requests = 0
    public private(set) var defaultDecisions = 0
    public private(set) var decisions: [String: Int] = [:]
    /// Actual WAF decision (from WAF logs) → what-if decision.
    public private(set) var comparison: [String: Int] = [:]
    /// Clients with a successful (2xx/3xx) response to a non-probe path, and when it was first seen.
    private var successes: [String: Int64] = [:]
    /// Clients the scan detector alerted on.
    private var scanSuspects: Set<String> = []
    /// Probe requests per client among the judged requests (clients with at least one).
    private var probeCounts: [String: Int] = [:]
    /// A client with this many probe requests is a prober, not a user.
    public var maxProbes = 2
    struct CollateralCandidate { var since: Int64; var requests = 0; var samples: [String] = [] }
    private var candidates: [[String: CollateralCandidate]]
    private var rateStates: [[String: RateCounter]]
    private var nextSweep: Int64 = .min
    /// Keys under a rate-based block, per rule, and the earliest time one of them could end.
    private var blockedKeys: [Set<String>]
    private var nextEndCheck: Int64 = .max
    let probePatterns: ProbePatterns
    static let maxIPsPerRule = 100_000
    static let keptBlocks = 500
    static let keptSamples = 20

    public init(acl: WebACL, probePatterns: ProbePatterns = .standard, solving: PuzzleSolving = .all) {
        self.acl = acl
        self.solving = solving
        self.probePatterns = probePatterns
        stats = acl.rules.map { rule in
            RuleStats(name: rule.name, priority: rule.priority, action: rule.action?.rawValue ?? "group (\(rule.overrideAction ?? "NONE"))",
                      unsupported: rule.unsupported)
        }
        rateStates = Array(repeating: [:], count: acl.rules.count)
        candidates = Array(repeating: [:], count: acl.rules.count)
        blockedKeys = Array(repeating: [], count: acl.rules.count)
    }

    /// Every request of every layer passes here (after `evaluate` for the judged layer), so that
    /// collateral knows who had successful sessions before.
    public func noteHistory(_ r: ReplayRequest) {
        guard r.isSuccess, let ip = r.clientIP, successes[ip] == nil else { return }
        if let path = r.path, probePatterns.match(path) != nil { return }
        successes[ip] = r.time
    }

    public func noteAlert(_ alert: Alert) {
        if alert.detector == "scan" || alert.detector == "scan-scheduled" { scanSuspects.insert(alert.key) }
    }

    /// Time passes: rate-based blocks whose count fell back to the limit end (and idle keys go).
    public func advance(to time: Int64, alerts: inout [Alert]) {
        if time >= nextEndCheck { closeEndedBlocks(at: time, alerts: &alerts) }
        guard time >= nextSweep else { return }
        nextSweep = time + 10_000_000
        for (i, rule) in acl.rules.enumerated() {
            guard case .rateBased(let rate) = rule.statement else { continue }
            var states = rateStates[i]
            for (key, var state) in states {
                if let end = state.expire(at: time, window: rate.window, limit: rate.limit) { closeBlock(i, key, &state, end: end, alerts: &alerts) }
                if state.total == 0, state.blockStart == nil { states[key] = nil } else { states[key] = state }
            }
            rateStates[i] = states
        }
    }

    public func finish(alerts: inout [Alert]) {
        settleCollateral()
        for (i, rule) in acl.rules.enumerated() {
            guard case .rateBased(let rate) = rule.statement else { continue }
            for (key, var state) in rateStates[i].sorted(by: { $0.key < $1.key }) where state.blockStart != nil {
                closeBlock(i, key, &state, end: state.projectedEnd(window: rate.window, limit: rate.limit), alerts: &alerts)
            }
            rateStates[i] = [:]
        }
    }

    /// Ends the rate-based blocks whose count has fallen back to the limit by `time`, at the
    /// moment it did (so the end alerts come out in time order). New requests only push a
    /// block's end later, so checking against an older estimate is safe.
    private func closeEndedBlocks(at time: Int64, alerts: inout [Alert]) {
        var next = Int64.max
        for (i, rule) in acl.rules.enumerated() where !blockedKeys[i].isEmpty {
            guard case .rateBased(let rate) = rule.statement else { continue }
            for key in blockedKeys[i].sorted() {
                guard var state = rateStates[i][key] else { blockedKeys[i].remove(key); continue }
                let end = state.projectedEnd(window: rate.window, limit: rate.limit)
                if end <= time {
                    closeBlock(i, key, &state, end: end, alerts: &alerts)
                    rateStates[i][key] = state
                } else {
                    next = min(next, end)
                }
            }
        }
        nextEndCheck = next
    }

    private func closeBlock(_ i: Int, _ key: String, _ state: inout RateCounter, end: Int64, alerts: inout [Alert]) {
        guard let start = state.blockStart else { return }
        blockedKeys[i].remove(key)
        let rule = acl.rules[i]
        let block = RateBlock(rule: rule.name, key: key, start: start, end: end, requests: state.blockedRequests)
        if stats[i].rateBlocks.count < Self.keptBlocks { stats[i].rateBlocks.append(block) }
        alerts.append(Alert(time: end, detector: "waf-rule", key: key, value: Double(state.blockedRequests), count: state.blockedRequests,
                            window: windowSeconds(rule), action: "\(rule.action?.rawValue ?? "COUNT")-end", sample: [],
                            detail: "rule \(rule.name): rate back under \(limit(rule)) from \(TimeFormat.isoUTC(end))",
                            first: start, last: end))
        state.blockStart = nil
        state.blockedRequests = 0
    }

    private func windowSeconds(_ rule: WAFRule) -> Int { if case .rateBased(let r) = rule.statement { return Int(r.window / 1_000_000) } else { return 0 } }
    private func limit(_ rule: WAFRule) -> Int { if case .rateBased(let r) = rule.statement { return r.limit } else { return 0 } }

    /// Judges one request; returns the terminating rule's name (nil: the default action) and the action.
    @discardableResult
    public func evaluate(_ r: ReplayRequest, alerts: inout [Alert]) -> (rule: String?, action: WAFAction) {
        requests += 1
        if let ip = r.clientIP, let path = r.path, probePatterns.match(path) != nil { probeCounts[ip, default: 0] += 1 }
        var fields = RequestFields(r)
        // Labels AWS managed rule groups put on the request, as the WAF log recorded them: the
        // one thing about managed groups an offline replay can know.
        var labels: [String] = r.layer == .waf ? fields.managedLabels() : []
        var decision: (rule: String?, action: WAFAction) = (nil, acl.defaultAction)
        var deciding: Int?
        for (i, rule) in acl.rules.enumerated() {
            stats[i].evaluated += 1
            var reasons: [String] = []
            var recordedAction: WAFAction?
            let truth: Truth
            if case .rateBased(let rate) = rule.statement {
                truth = evaluateRate(i, rule, rate, &fields, labels, &reasons, alerts: &alerts)
            } else if case .managedGroup(_, let groupName) = rule.statement {
                // Offline, a group decides only where a WAF log recorded it as the terminating rule.
                if r.layer == .waf, let recorded = r.wafRule, recorded == rule.name || recorded == groupName || recorded.hasSuffix("#" + groupName) {
                    truth = .yes
                    recordedAction = r.wafAction.flatMap { WAFAction(rawValue: $0.uppercased()) }
                } else {
                    truth = .unknown
                    reasons.append("managed rule group \(groupName) not evaluable offline")
                }
            } else {
                truth = eval(rule.statement, &fields, labels, &reasons)
            }
            switch truth {
            case .no: continue
            case .unknown:
                stats[i].undecided += 1
                for reason in Set(reasons) { stats[i].undecidedReasons[reason, default: 0] += 1 }
                continue
            case .yes:
                stats[i].matched += 1
                if let ip = r.clientIP, stats[i].matchedIPs.count < Self.maxIPsPerRule { stats[i].matchedIPs.insert(ip) }
                labels += rule.labels
                let action = rule.overrideAction == "COUNT" ? .count : (rule.action ?? recordedAction ?? .block)
                // A managed group's CAPTCHA/CHALLENGE recorded in the WAF log stands: the client
                // had no valid token then. The rule's own CAPTCHA/CHALLENGE checks the modelled token.
                if action.isPuzzle, rule.action == action, hasValidToken(r, rule, action) {
                    stats[i].passedWithToken += 1
                } else if action.terminates {
                    decision = (rule.name, action)
                    deciding = i
                } else {
                    stats[i].counted += 1
                }
            }
            if deciding != nil { break }
        }
        let outcome = decision.action.rawValue
        decisions[outcome, default: 0] += 1
        if let i = deciding {
            stats[i].terminated += 1
            if decision.action.isPuzzle {
                stats[i].challenged += 1
                issueToken(r, decision.action)
            }
            if decision.action.stops {
                stats[i].blocked += 1
                if let ip = r.clientIP {
                    if stats[i].blockedIPs.count < Self.maxIPsPerRule { stats[i].blockedIPs.insert(ip) }
                    noteCollateral(i, ip, r)
                }
            }
        } else {
            defaultDecisions += 1
        }
        if r.layer == .waf, let actual = r.wafAction { comparison["\(actual.uppercased())→\(outcome)", default: 0] += 1 }
        return decision
    }

    /// Whether the request's client holds a token whose CAPTCHA (or challenge) timestamp is no
    /// older than the rule's immunity time (AWS WAF: expired when the time since exceeds it).
    private func hasValidToken(_ r: ReplayRequest, _ rule: WAFRule, _ action: WAFAction) -> Bool {
        guard let ip = r.clientIP, let token = tokens[ip], let seconds = acl.immunity(of: rule, for: action),
              let solved = action == .captcha ? token.captcha : token.challenge else { return false }
        return r.time - solved <= Int64(seconds) * 1_000_000
    }

    /// Under `.all`, the client answered with a CAPTCHA or a challenge solves it at once.
    private func issueToken(_ r: ReplayRequest, _ action: WAFAction) {
        guard solving == .all, let ip = r.clientIP else { return }
        let existing = tokens[ip]
        var token = existing ?? PuzzleToken()
        if action == .captcha {
            token.captcha = r.time
            // The CAPTCHA interstitial runs a challenge first when the client has no token yet.
            if existing == nil { token.challenge = r.time }
        } else {
            token.challenge = r.time
        }
        tokens[ip] = token
    }

    /// Remembers a blocked request from a client that had succeeded before; whether it is
    /// collateral is settled at the end, once the whole replay shows whether the client scanned.
    private func noteCollateral(_ i: Int, _ ip: String, _ r: ReplayRequest) {
        guard let since = successes[ip], since < r.time else { return }
        var candidate = candidates[i][ip] ?? CollateralCandidate(since: since)
        candidate.requests += 1
        if candidate.samples.count < 3 {
            candidate.samples.append("\(TimeFormat.isoUTC(r.time)) \(ip) \(r.method ?? "-") \(r.path ?? "-") (successful since \(TimeFormat.isoUTC(since)))")
        }
        candidates[i][ip] = candidate
    }

    /// Collateral: blocked requests from clients with earlier successful requests that the scan
    /// detector never flagged and that made fewer than `maxProbes` probe requests.
    private func settleCollateral() {
        for i in stats.indices {
            stats[i].collateral = 0
            stats[i].collateralIPs = []
            stats[i].collateralSamples = []
            var samples: [String] = []
            for (ip, c) in candidates[i] {
                guard !scanSuspects.contains(ip), probeCounts[ip, default: 0] < maxProbes else { continue }
                stats[i].collateral += c.requests
                stats[i].collateralIPs.insert(ip)
                samples += c.samples
            }
            // Samples start with their ISO time: sorting the text sorts them in time.
            stats[i].collateralSamples = Array(samples.sorted().prefix(Self.keptSamples))
        }
    }

    private func evaluateRate(_ i: Int, _ rule: WAFRule, _ rate: RateRule, _ fields: inout RequestFields, _ labels: [String],
                              _ reasons: inout [String], alerts: inout [Alert]) -> Truth {
        if let scope = rate.scopeDown {
            let t = eval(scope, &fields, labels, &reasons)
            if t != .yes { return t }
        }
        var parts: [String] = []
        for key in rate.keys {
            switch aggregateValue(key, &fields, labels) {
            case .values(let v): parts.append(v.map { String(decoding: $0, as: UTF8.self) }.joined(separator: ","))
            case .absent: return .no   // WAF does not count a request that lacks a key.
            case .notLogged(let what): reasons.append("aggregate key \(what) not in the logs"); return .unknown
            }
        }
        let key = parts.isEmpty ? "*" : parts.joined(separator: " | ")
        let time = fields.request.time
        var state = rateStates[i][key] ?? RateCounter()
        if let end = state.expire(at: time, window: rate.window, limit: rate.limit) { closeBlock(i, key, &state, end: end, alerts: &alerts) }
        state.add(time)
        var truth = Truth.no
        if state.total > rate.limit {
            truth = .yes
            state.blockedRequests += 1
            if state.blockStart == nil {
                state.blockStart = time
                blockedKeys[i].insert(key)
                // Later requests only move the end later: this estimate is a safe first check.
                nextEndCheck = min(nextEndCheck, state.projectedEnd(window: rate.window, limit: rate.limit))
                stats[i].rateBlockCount += 1
                alerts.append(Alert(time: time, detector: "waf-rule", key: key, value: Double(state.total), count: state.total,
                                    window: Int(rate.window / 1_000_000), action: rule.action?.rawValue ?? "COUNT", sample: [fields.request.path ?? "-"],
                                    layer: fields.request.layer,
                                    detail: "rule \(rule.name): over \(rate.limit) requests per \(rate.window / 1_000_000)s by \(rate.keyDescription)",
                                    first: time, last: time))
            }
        }
        rateStates[i][key] = state
        return truth
    }

    private func aggregateValue(_ key: AggregateKey, _ fields: inout RequestFields, _ labels: [String]) -> FieldValue {
        switch key {
        case .ip: return fields.request.clientIP.map { .values([Array($0.utf8)]) } ?? .notLogged("IP")
        case .forwardedIP(let config):
            // A request without a usable header is not counted (WAF's rule for this key), unless
            // the log simply does not record the header: then nobody knows.
            let (ip, fallback) = fields.address(config)
            if let ip { return .values([Array(ip.utf8)]) }
            return fallback == .unknown ? .notLogged("ForwardedIP header \(config.header)") : .absent
        case .method: return fields.field(.method)
        case .queryString(let m), .uriPath(let m):
            return transformed(fields.field(m.field), m)
        case .header(_, let m):
            return transformed(fields.field(m.field), m)
        case .queryArgument(let name, let m):
            return transformed(fields.field(.singleQueryArgument(name)), m)
        case .cookie(let name, let m):
            return transformed(fields.cookie(name), m)
        case .labelNamespace(let ns):
            let found = labels.filter { Self.labelMatches($0, key: ns, namespace: true) }
            return found.isEmpty ? .absent : .values([Array(found.sorted().joined(separator: ",").utf8)])
        }
    }

    private func transformed(_ v: FieldValue, _ m: TextMatch) -> FieldValue {
        if let missing = m.unsupportedTransform { return .notLogged("text transformation \(missing)") }
        guard case .values(let values) = v else { return v }
        return .values(values.map { TextTransform.apply(m.transforms, to: $0) })
    }

    static let managedLabelPrefix = "awswaf:managed:"

    /// A label added by this ACL's rules (`name:space:label`) against a LabelMatchStatement key,
    /// which may be the bare label or the fully qualified `awswaf:<account>:webacl:<acl>:…` form.
    static func labelMatches(_ label: String, key: String, namespace: Bool) -> Bool {
        var key = key
        if key.hasPrefix("awswaf:"), key.contains(":webacl:") {
            let parts = key.split(separator: ":", omittingEmptySubsequences: false)
            if parts.count > 4 { key = parts.dropFirst(4).joined(separator: ":") }
        }
        return namespace ? label.hasPrefix(key) : label == key
    }

    func eval(_ s: WAFStatement, _ fields: inout RequestFields, _ labels: [String], _ reasons: inout [String]) -> Truth {
        switch s {
        case .and(let parts):
            var results: [Truth] = []
            for p in parts {
                let t = eval(p, &fields, labels, &reasons)
                if t == .no { return .no }
                results.append(t)
            }
            return Truth.and(results)
        case .or(let parts):
            var results: [Truth] = []
            for p in parts {
                let t = eval(p, &fields, labels, &reasons)
                if t == .yes { return .yes }
                results.append(t)
            }
            return Truth.or(results)
        case .not(let inner):
            return eval(inner, &fields, labels, &reasons).negated
        case .label(let namespace, let key):
            if labels.contains(where: { Self.labelMatches($0, key: key, namespace: namespace) }) { return .yes }
            if key.hasPrefix(Self.managedLabelPrefix), fields.request.layer != .waf {
                reasons.append("LabelMatchStatement \(key): managed rule labels are only in WAF logs")
                return .unknown
            }
            return .no
        case .byteMatch(let m, let constraint, let search):
            return match(m, &fields, &reasons) { Self.byteMatch($0, constraint, search) }
        case .regex(let m, let regexes, _):
            return match(m, &fields, &reasons) { value in
                let text = String(decoding: value, as: UTF8.self)
                let range = NSRange(text.startIndex..., in: text)
                return regexes.contains { $0.regex.firstMatch(in: text, range: range) != nil }
            }
        case .size(let m, let op, let size):
            return match(m, &fields, &reasons) { value in
                switch op {
                case .eq: return value.count == size
                case .ne: return value.count != size
                case .le: return value.count <= size
                case .lt: return value.count < size
                case .ge: return value.count >= size
                case .gt: return value.count > size
                }
            }
        case .geo(let countries, let config):
            if config != nil {
                reasons.append("GeoMatchStatement with ForwardedIPConfig (the forwarded address's country is not logged)")
                return .unknown
            }
            guard let country = fields.extra()["country"], country != "-", !country.isEmpty else {
                reasons.append("GeoMatchStatement: country unknown (only WAF logs carry it)")
                return .unknown
            }
            return countries.contains(country.uppercased()) ? .yes : .no
        case .ipSet(let ranges, let config, _):
            let (ip, fallback) = fields.address(config)
            if let fallback {
                if fallback == .unknown { reasons.append("IPSetReferenceStatement: forwarded-IP header not in the logs") }
                return fallback
            }
            guard let ip else { reasons.append("IPSetReferenceStatement: client IP not logged"); return .unknown }
            guard let bytes = IPRange.parse(ip) else { return .no }
            return ranges.contains { $0.contains(bytes) } ? .yes : .no
        case .rateBased:
            return .unknown
        case .managedGroup(_, let name):
            reasons.append("managed rule group \(name) not evaluable offline")
            return .unknown
        case .unsupported(let name):
            reasons.append("\(name) not evaluable from logs")
            return .unknown
        }
    }

    private func match(_ m: TextMatch, _ fields: inout RequestFields, _ reasons: inout [String], _ test: ([UInt8]) -> Bool) -> Truth {
        if let missing = m.unsupportedTransform {
            reasons.append("text transformation \(missing) not implemented")
            return .unknown
        }
        switch fields.field(m.field) {
        case .absent: return .no
        case .notLogged(let what):
            reasons.append("\(what) not in the logs")
            return .unknown
        case .values(let values):
            return values.contains { test(TextTransform.apply(m.transforms, to: $0)) } ? .yes : .no
        }
    }

    static func byteMatch(_ value: [UInt8], _ constraint: PositionalConstraint, _ search: [UInt8]) -> Bool {
        switch constraint {
        case .exactly: return value == search
        case .startsWith: return value.starts(with: search)
        case .endsWith: return value.count >= search.count && Array(value.suffix(search.count)) == search
        case .contains: return find(search, in: value, word: false)
        case .containsWord: return find(search, in: value, word: true)
        }
    }

    static func isWordByte(_ b: UInt8) -> Bool {
        (b >= 48 && b <= 57) || (b >= 65 && b <= 90) || (b >= 97 && b <= 122) || b == UInt8(ascii: "_")
    }

    static func find(_ s: [UInt8], in v: [UInt8], word: Bool) -> Bool {
        guard !s.isEmpty, v.count >= s.count else { return false }
        var i = 0
        while i + s.count <= v.count {
            if v[i] == s[0], v[i..<(i + s.count)].elementsEqual(s) {
                if !word { return true }
                let before = i == 0 || !isWordByte(v[i - 1])
                let after = i + s.count == v.count || !isWordByte(v[i + s.count])
                if before && after { return true }
            }
            i += 1
        }
        return false
    }
}
