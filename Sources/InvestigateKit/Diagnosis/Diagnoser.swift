import Foundation
import GRDB

/// The rules, most specific first. One line per rule.
public enum DiagnosisRules {
    public static let standard: [any DiagnosisRule] = [
        WafTerminatingRule(),
        CloudFrontOwnErrorRule(),
        AlbWafRejectRule(),
        ApiGatewayRule(),
        AlbOwnStatusRule(),
        NginxRule(),
        AppRule(),
        UpstreamRelayRule(),
        InnermostRecordRule(),
    ]
}

/// Answers "an error around time T: who sent it, who caused it, why are some logs silent?"
///
/// For every error response in the window (grouped: the same client, status and reason), it
/// assembles the request's correlated records and the log lines around it, lets the rules decide,
/// and checks every layer's coverage before calling an absence expected or suspicious. When
/// nothing matches, it reasons from absence: which layer in front has no logs.
public final class Diagnoser {
    public let store: TimelineStore
    public let rules: [any DiagnosisRule]
    /// Most requests examined in one window, earliest first (the output says when more were left out).
    public var maxCases = 2000

    public init(store: TimelineStore, rules: [any DiagnosisRule] = DiagnosisRules.standard) {
        self.store = store
        self.rules = rules
    }

    public func diagnose(_ q: DiagnosisQuery) throws -> Diagnosis {
        try store.scoped(q.sources) { try store.read { db in try diagnose(q, db) } }
    }

    private func diagnose(_ q: DiagnosisQuery, _ db: Database) throws -> Diagnosis {
        let coverage = try Self.coverage(db, from: q.from, to: q.to)
        let byLayer = Dictionary(uniqueKeysWithValues: coverage.compactMap { c in Layer(rawValue: c.layer).map { ($0, c) } })
        let stack = try Self.stackFacts(db, around: q)
        let sources = try SourceIndex.load(db)
        var notes: [String] = []

        // Cases are judged one at a time and dropped: a dense window (thousands of failed requests,
        // each with the log lines around it) must not hold every case in memory at once.
        var raw: [(Finding, String)] = []
        let truncated = try forEachCase(q, db, byLayer, stack, sources) { c in
            if let judged = judge(c, q, sources) { raw.append((judged.finding, judged.reason)) }
        }
        if truncated {
            notes.append("More than \(maxCases) error responses in this window; the first \(maxCases) requests were examined. Narrow the window or add --status/--ip/--path.")
        }
        let changes = try ChangeContext.load(db, from: q.from - ChangeContext.lookback, to: q.to)
        if !changes.changes.isEmpty {
            raw = raw.map { (changes.annotate($0.0, sources, zone: q.zone), $0.1) }
        }
        var findings = try group(raw, zone: q.zone).map { try Self.withSharedAddress($0, db, q) }
        var outcome = Diagnosis.Outcome.answered
        var headline: String?
        let anyEvent = try Bool.fetchOne(db, sql: "SELECT EXISTS (SELECT 1 FROM event)") ?? false
        let metricSignals = try ContextSignals.metrics(db, q, sources: sources, zone: q.zone)
        let metricGaps = metricSignals.filter { $0.unlogged != nil }
        if findings.isEmpty && !anyEvent {
            outcome = .noEvidence
            if let inputs = q.inputs {
                let recognised = inputs.files - inputs.skipped.count
                headline = "\(recognised) of \(inputs.files) file\(inputs.files == 1 ? "" : "s") recognised" + (inputs.skipped.isEmpty ? "; they hold no events." : ": " + inputs.skipped.prefix(5).joined(separator: "; ") + (inputs.skipped.count > 5 ? "; … \(inputs.skipped.count - 5) more" : "") + ".")
            } else {
                headline = "The database holds no events: no log was recognised. `investigate formats` lists what can be read."
            }
            notes.append("Nothing to diagnose: there is no evidence to answer from. Check the paths, or force a format with --format ID.")
        } else if findings.isEmpty {
            // A metric that counted errors no log shows is the question the logs could not ask:
            // reason from absence about that status family (the answer stays the absence rules').
            var asked = q
            if asked.status == nil, let family = metricGaps.compactMap(\.statusFamily).first { asked.status = .family(family) }
            var reasoned = try AbsenceReasoner(query: asked, coverage: byLayer, window: try Self.windowCoverage(db, asked, stack: stack),
                                               stack: stack, sources: sources).reason(db)
            if case .nothing = reasoned, asked.status != q.status {
                reasoned = try AbsenceReasoner(query: q, coverage: byLayer, window: try Self.windowCoverage(db, q, stack: stack),
                                               stack: stack, sources: sources).reason(db)
            }
            switch reasoned {
            case .inferred(let f):
                findings.append(f)
                outcome = .inferred
            case .nothing(let line, let detail):
                outcome = byLayer.values.contains { $0.events > 0 } ? .nothingToExplain : .noEvidence
                headline = line
                notes += detail
                notes += try ZoneHint.suggestions(db, q)
            }
        }
        findings.sort { ($0.micros ?? 0, $0.client_ip ?? "", $0.path ?? "") < ($1.micros ?? 0, $1.client_ip ?? "", $1.path ?? "") }

        // Signals beside the logs: cited as evidence, never changing who answered or how sure.
        for gap in metricGaps {
            let sentence = "\(gap.text) \(gap.layer) leaves this unlogged: \(gap.unlogged ?? "")."
            var attached = false
            for i in findings.indices where findings[i].responder == gap.layer {
                findings[i].explanation += " " + sentence
                findings[i].evidence += gap.evidence
                // The metrics were given: asking for them again is no next step.
                findings[i].next_steps.removeAll { $0.contains("CloudWatch metrics for the same minutes") }
                attached = true
            }
            if !attached { notes.append(sentence) }
        }
        let guardDuty = try ContextSignals.guardDuty(db, q, sources: sources)
        var citedGuardDuty = 0
        for g in guardDuty {
            for i in findings.indices where g.clientIP != nil && findings[i].client_ip == g.clientIP {
                findings[i].explanation += " GuardDuty also reported this client in the window: \(g.text)."
                findings[i].evidence += g.evidence
                citedGuardDuty += 1
            }
        }
        if citedGuardDuty == 0, !guardDuty.isEmpty {
            notes.append("GuardDuty findings active in this window: " + guardDuty.prefix(3).map(\.text).joined(separator: "; ")
                         + (guardDuty.count > 3 ? "; … \(guardDuty.count - 3) more" : "") + ".")
        }
        let answerLayers = Set(findings.map(\.responder) + findings.flatMap { $0.evidence.map(\.layer) })
        let inspector = try ContextSignals.inspector(db, layers: answerLayers, sources: sources)

        if let part = q.inputs?.readInPart, !part.isEmpty {
            let lines = part.reduce(0) { $0 + $1.lines_not_stored }
            notes.append("\(part.count) file\(part.count == 1 ? " was" : "s were") read for this window only: \(part.count == 1 ? "its" : "their") records within 20 minutes of it are stored, \(lines) lines of records further away are not (`--json` lists them under read_in_part; a question about another time, or `ingest`, adds them).")
        }
        if let outside = q.inputs?.outsideWindow, outside > 0 {
            notes.append("\(outside) file\(outside == 1 ? " was" : "s were") not read: \(outside == 1 ? "its name's time stamp lies" : "their names' time stamps lie") outside this window (S3 delivery stamps, date folders, daily file names), so \(outside == 1 ? "it" : "they") cannot hold its records; a question about another moment reads \(outside == 1 ? "it" : "them").")
        }
        notes += Self.stackNotes(stack, coverage: byLayer)
        notes += try AppZoneShift.notes(db, q, coverage: byLayer)
        notes += try AppZoneAlignment.movedNotes(db, from: q.from, to: q.to)
        notes += try AppClockSkew.movedNotes(db, from: q.from, to: q.to)
        // Within a second is no clock's fault: a log stamped in whole seconds (nginx's $time_local)
        // reads half a second early on average against one stamped in microseconds (the ALB's).
        for o in try Correlator(store: store).loadOffsetsIn(db) where abs(o.offset) > 1_000_000 {
            notes.append("Clock offset: \(o.inner) stamps run \(String(format: "%+.1f", Double(o.offset) / 1e6)) s relative to \(o.outer) (median of \(o.samples) unambiguous matches); correlation corrected for it.")
        }
        let ambiguous = try Int.fetchOne(db, sql: """
            SELECT count(*) FROM ambiguous a JOIN event e ON e.id = a.event_id WHERE e.time BETWEEN ? AND ?
            """, arguments: [q.from, q.to]) ?? 0
        if ambiguous > 0 {
            notes.append("\(ambiguous) record(s) in the window fit two requests equally well and were left unlinked rather than guessed (table `ambiguous`).")
        }

        let echo = Diagnosis.QueryEcho(at: TimeFormat.isoUTC(q.at), from: TimeFormat.isoUTC(q.from), to: TimeFormat.isoUTC(q.to),
                                       tz: q.zone.description, status: q.status?.description, ip: q.clientIP, path: q.pathPrefix,
                                       tz_source: q.zoneNote)
        var diagnosis = Diagnosis(query: echo, coverage: coverage, findings: findings, notes: notes, outcome: outcome, headline: headline)
        diagnosis.signals = metricSignals + guardDuty + inspector
        diagnosis.unread = q.inputs?.unread ?? []
        diagnosis.readInPart = q.inputs?.readInPart ?? []
        return diagnosis
    }

    /// One failed request's finding, ungrouped, with the records it rests on (nil when the case is
    /// not a failure the query asks about, or no rule speaks).
    func judge(_ c: RequestCase, _ q: DiagnosisQuery, _ sources: SourceIndex) -> (records: Set<Int64>, finding: Finding, reason: String)? {
        guard let status = c.clientStatus, status >= 400 else { return nil }
        if let s = q.status, !s.matches(status) { return nil }
        for rule in rules {
            guard var verdict = rule.diagnose(c) else { continue }
            if verdict.responder != .waf, let note = Self.countedByWAF(c) { verdict.explanation += note }
            Self.citePassersOn(c, &verdict)
            return (Set(c.records.map(\.id)), finding(c, verdict, rule: rule.id, sources: sources), verdict.reasonKey)
        }
        return nil
    }

    /// A rate-based block of an address many browsers share (a company's NAT, a mobile carrier's
    /// gateway): the users behind it are refused together, which the rule's fix must know.
    static let sharedAddressAgents = 5

    static func withSharedAddress(_ f: Finding, _ db: Database, _ q: DiagnosisQuery) throws -> Finding {
        guard f.responder == Layer.waf.rawValue, f.explanation.contains("rate-based rule refused"), let ip = f.client_ip else { return f }
        let agents = try Int.fetchOne(db, sql: """
            SELECT count(DISTINCT user_agent) FROM event WHERE client_ip = ? AND time >= ? AND time <= ? AND copy_of IS NULL
            AND layer IN ('waf','alb','nginx','cloudfront') AND user_agent IS NOT NULL
            """, arguments: [ip, q.from - 600_000_000, q.to]) ?? 0
        guard agents >= sharedAddressAgents else { return f }
        var out = f
        out.explanation += " The address looks shared: \(agents) different user agents came from it in this time, as from a NAT or proxy in front of many users, who are all refused together."
        out.next_steps.insert("If the address is a company's or a carrier's gateway, scope the rate rule (aggregate on a header or a custom key, or exclude that range with a scope-down statement) instead of raising the limit for everyone.", at: 0)
        return out
    }

    /// The layers in front of the responder whose records carry the same status passed its answer
    /// on: they are part of the evidence (the client saw their record's status), and said so.
    static func citePassersOn(_ c: RequestCase, _ verdict: inout Verdict) {
        guard let status = c.clientStatus else { return }
        let cited = Set(verdict.evidence.map(\.id))
        let passers = c.records.filter { r in
            r.event.kind == .access && r.event.layer < verdict.responder && !Layer.offPath.contains(r.event.layer)
                && (r.event.status == status || r.event.elbStatus == status) && !cited.contains(r.id)
        }.sorted { $0.event.layer < $1.event.layer }
        guard !passers.isEmpty else { return }
        verdict.evidence += passers
        let names = passers.map(\.event.layer.rawValue)
        verdict.explanation += " The \(names.joined(separator: " and ")) record\(names.count > 1 ? "s" : "") in front passed the \(status) on."
    }

    /// A web ACL that let the request through while a rule in COUNT mode matched it: a decoy the
    /// answer rules out by name (COUNT records a match and does not block).
    static func countedByWAF(_ c: RequestCase) -> String? {
        guard let waf = c.records.first(where: { $0.event.layer == .waf && $0.event.kind == .access }),
              (waf.event.wafAction ?? waf.extra("action") ?? "").uppercased() == "ALLOW",
              let rules = waf.extra("non_terminating_rules"), rules.contains("COUNT") else { return nil }
        var ids: [String] = []
        var rest = Substring(rules)
        while let r = rest.range(of: "\"ruleId\":") {
            rest = rest[r.upperBound...].drop { $0 == " " }
            guard rest.first == "\"" else { continue }
            let value = rest.dropFirst().prefix { $0 != "\"" }
            if !value.isEmpty && value.count <= 128 { ids.append(String(value)) }
        }
        guard !ids.isEmpty else { return nil }
        let named = Array(Set(ids)).sorted().prefix(3).map { "`\($0)`" }.joined(separator: ", ")
        return " AWS WAF allowed the request: \(named) matched it in COUNT mode only, which records a match and does not block."
    }

    /// Every failed request in the window judged on its own (not grouped): what the ground-truth
    /// tests compare with the simulator's answers.
    public func judgeEach(_ q: DiagnosisQuery) throws -> [(records: Set<Int64>, finding: Finding)] {
        let saved = maxCases
        defer { maxCases = saved }
        maxCases = Int.max
        return try store.scoped(q.sources) { try store.read { db in
            let coverage = try Self.coverage(db, from: q.from, to: q.to)
            let byLayer = Dictionary(uniqueKeysWithValues: coverage.compactMap { c in Layer(rawValue: c.layer).map { ($0, c) } })
            let stack = try Self.stackFacts(db, around: q)
            let sources = try SourceIndex.load(db)
            var out: [(records: Set<Int64>, finding: Finding)] = []
            _ = try forEachCase(q, db, byLayer, stack, sources) { c in
                if let judged = judge(c, q, sources) { out.append((judged.records, judged.finding)) }
            }
            return out
        } }
    }

    /// Builds each failed request's case in turn (chains first, in time order, then records no key
    /// linked) and hands it to `body`; at most `maxCases`. Returns whether more were left out.
    private func forEachCase(_ q: DiagnosisQuery, _ db: Database, _ byLayer: [Layer: LayerCoverage], _ stack: StackFacts,
                             _ sources: SourceIndex, _ body: (RequestCase) throws -> Void) throws -> Bool {
        // Error responses in the window that match the filters, by chain. Read through a cursor and
        // stopped once the cap is reached, so a wide window does not load every hit.
        // Access records, and API Gateway execution-log records (which carry the method's status)
        // for stages whose access log was not given.
        var conditions = ["e.time >= ?", "e.time <= ?", "(e.kind = 'access' OR e.layer = 'apigateway')", "e.status >= 400", "e.copy_of IS NULL"]
        var args: [DatabaseValueConvertible] = [q.from, q.to]
        if let s = q.status { conditions.append(s.sql("e.status")) }
        if let ip = q.clientIP { conditions.append("e.client_ip = ?"); args.append(ip) }
        if let p = q.pathPrefix { conditions.append("substr(e.path, 1, ?) = ?"); args += [p.utf8.count, p] }
        let hits = try Row.fetchCursor(db, sql: """
            SELECT e.id, e.kind, l.chain_id FROM event e LEFT JOIN link l ON l.event_id = e.id
            WHERE \(conditions.joined(separator: " AND ")) ORDER BY e.time, e.id
            """, arguments: StatementArguments(args))
        var chainOrder: [Int64] = []
        var seen = Set<Int64>()
        var loose: [Int64] = []
        var truncated = false
        // An execution-log record speaks for its request only where no access record does: when
        // the stage's access log was given, its unlinked execution records are not second cases.
        let accessLogged = try Bool.fetchOne(db, sql: """
            SELECT EXISTS (SELECT 1 FROM event WHERE layer = 'apigateway' AND kind = 'access' AND time >= ? AND time <= ?)
            """, arguments: [q.from - 600_000_000, q.to + 600_000_000]) ?? false
        while let h = try hits.next() {
            if accessLogged, (h["kind"] as String) == EventKind.log.rawValue, (h["chain_id"] as Int64?) == nil { continue }
            if chainOrder.count + loose.count >= maxCases {
                // One more distinct request than the cap can take: more were left out.
                let chain: Int64? = h["chain_id"]
                if chain.map({ !seen.contains($0) }) ?? true { truncated = true; break }
                continue
            }
            if let c: Int64 = h["chain_id"] { if seen.insert(c).inserted { chainOrder.append(c) } } else { loose.append(h["id"]) }
        }
        if !truncated {
            truncated = try addErrorLogAnswers(q, db, chainOrder: &chainOrder, seen: &seen, loose: &loose)
        }

        // Messages around the window, shared by all cases (WORKER TIMEOUT names no request), in
        // time order so each case takes its stretch by binary search.
        let nearby = try StoredEvent.fetchAll(db, sql: """
            SELECT \(StoredEvent.columns) FROM event WHERE time >= ? AND time <= ? AND copy_of IS NULL
            AND ((kind = 'log' AND layer IN ('nginx','gunicorn','app','system','lambda','apigateway'))
              OR (kind = 'access' AND layer IN ('nginx','app','gunicorn') AND status >= 400)
              OR (kind = 'access' AND layer IN ('app','gunicorn') AND duration >= 10000000))
            ORDER BY time, id LIMIT 20000
            """, arguments: [q.from - 60_000_000, q.to + 60_000_000])

        // Services' lifecycle lines since well before the window: what was down when it began.
        let lifecycle = ServiceLifecycle.phrases.map { _ in "message LIKE ?" }.joined(separator: " OR ")
        let serviceEvents = try StoredEvent.fetchAll(db, sql: """
            SELECT \(StoredEvent.columns) FROM event WHERE time >= ? AND time <= ? AND copy_of IS NULL AND kind = 'log'
            AND layer IN ('system','gunicorn','nginx','app') AND (\(lifecycle)) ORDER BY time, id LIMIT 2000
            """, arguments: StatementArguments([q.from - ServiceLifecycle.lookback, q.to + 60_000_000] as [DatabaseValueConvertible]
                                              + ServiceLifecycle.phrases.map { "%\($0)%" }))

        // Health checks a load balancer's targets failed in that time: why it then had none.
        let failedChecks = try StoredEvent.fetchAll(db, sql: """
            SELECT \(StoredEvent.columns) FROM event WHERE time >= ? AND time <= ? AND copy_of IS NULL AND kind = 'access'
            AND layer IN ('nginx','gunicorn','app') AND status >= 500 AND user_agent LIKE 'ELB-HealthChecker%' ORDER BY time DESC, id LIMIT 20
            """, arguments: [q.from - ServiceLifecycle.lookback, q.to])
        // What the application logged as the latest failed check reached it: why the health path
        // failed (its database, often).
        var checkErrors: [StoredEvent] = []
        if let latest = failedChecks.first?.event.time {
            checkErrors = try StoredEvent.fetchAll(db, sql: """
                SELECT \(StoredEvent.columns) FROM event WHERE time >= ? AND time <= ? AND copy_of IS NULL AND kind = 'log'
                AND layer IN ('app','gunicorn') AND upper(coalesce(level, '')) IN ('ERROR','CRITICAL','FATAL') ORDER BY time, id LIMIT 20
                """, arguments: [latest - 5_000_000, latest + 5_000_000])
        }
        let lifecycleEvents = serviceEvents + failedChecks.reversed() + checkErrors

        // Originals only: a syslog copy of an app line is the same record, cited once.
        let chainRecords = try db.cachedStatement(sql: """
            SELECT \(StoredEvent.columns("e")) FROM link l JOIN event e ON e.id = l.event_id WHERE l.chain_id = ? AND e.copy_of IS NULL
            """)
        let oneRecord = try db.cachedStatement(sql: "SELECT \(StoredEvent.columns) FROM event WHERE id = ?")
        for chain in chainOrder {
            let records = StoredEvent.inTimeOrder(try StoredEvent.fetchAll(chainRecords, arguments: [chain]))
            var c = makeCase(chain, records, nearby, byLayer, stack, sources, q.status)
            c.serviceEvents = lifecycleEvents
            try body(c)
        }
        for id in loose {
            var c = makeCase(nil, try StoredEvent.fetchAll(oneRecord, arguments: [id]), nearby, byLayer, stack, sources, q.status)
            c.serviceEvents = lifecycleEvents
            try body(c)
        }
        return truncated
    }

    /// Where nginx is the outermost layer with logs and its access log does not reach the window
    /// (not given, rotated away, a host that logs errors only), its error-log lines that name a
    /// request and a failure nginx answers for stand for those requests: the question's status
    /// is matched against the status nginx sends for each line (`NginxErrorStatus`).
    private func addErrorLogAnswers(_ q: DiagnosisQuery, _ db: Database, chainOrder: inout [Int64], seen: inout Set<Int64>,
                                    loose: inout [Int64]) throws -> Bool {
        let margin: Int64 = 60_000_000
        let logged = try Bool.fetchOne(db, sql: """
            SELECT EXISTS (SELECT 1 FROM event WHERE kind = 'access' AND time >= ? AND time <= ? AND copy_of IS NULL
              AND layer IN ('nginx','cloudfront','waf','alb','nlb','apigateway'))
            """, arguments: [q.from - margin, q.to + margin]) ?? true
        guard !logged else { return false }
        var conditions = ["e.time >= ?", "e.time <= ?", "e.layer = 'nginx'", "e.kind = 'log'", "e.path IS NOT NULL", "e.copy_of IS NULL"]
        var args: [DatabaseValueConvertible] = [q.from, q.to]
        if let ip = q.clientIP { conditions.append("e.client_ip = ?"); args.append(ip) }
        if let p = q.pathPrefix { conditions.append("substr(e.path, 1, ?) = ?"); args += [p.utf8.count, p] }
        let lines = try Row.fetchCursor(db, sql: """
            SELECT e.id, CAST(COALESCE(e.message, '') AS BLOB) AS message, l.chain_id FROM event e LEFT JOIN link l ON l.event_id = e.id
            WHERE \(conditions.joined(separator: " AND ")) ORDER BY e.time, e.id
            """, arguments: StatementArguments(args))
        while let line = try lines.next() {
            let message = StoredEvent.text(line, "message") ?? ""
            guard NginxErrorStatus.status(for: message, matching: q.status) != nil else { continue }
            let chain: Int64? = line["chain_id"]
            if let chain, seen.contains(chain) { continue }
            if chainOrder.count + loose.count >= maxCases { return true }
            if let chain { seen.insert(chain); chainOrder.append(chain) } else { loose.append(line["id"]) }
        }
        return false
    }

    private func makeCase(_ chain: Int64?, _ records: [StoredEvent], _ nearby: [StoredEvent], _ coverage: [Layer: LayerCoverage],
                          _ stack: StackFacts, _ sources: SourceIndex, _ statusFilter: StatusFilter?) -> RequestCase {
        let times = records.compactMap(\.event.time)
        // After the request: an app still working when a proxy gave up logs its failure later.
        // 30 s after: a request the ALB gave up on at its idle timeout is often finished that much later.
        let lo = (times.min() ?? 0) - 30_000_000, hi = (times.max() ?? 0) + 30_000_000
        let ids = Set(records.map(\.id))
        // `nearby` is in time order (timeless rows are not selected): the case sees its stretch.
        var first = 0, end = nearby.count
        while first < end {
            let mid = (first + end) / 2
            if (nearby[mid].event.time ?? .min) < lo { first = mid + 1 } else { end = mid }
        }
        var last = first
        while last < nearby.count, let t = nearby[last].event.time, t <= hi { last += 1 }
        let around = NearbyRecords(nearby[first..<last], excluding: ids)
        var c = RequestCase(chainID: chain, records: records, nearby: around, coverage: coverage, stack: stack, sources: sources)
        c.statusFilter = statusFilter
        return c
    }

    // MARK: - Findings

    private func finding(_ c: RequestCase, _ v: Verdict, rule: String, sources: SourceIndex) -> Finding {
        let head = c.outermost?.event
        // Confidence is earned: high only when a record of the responding layer itself proves the
        // answer; anything inferred from other layers' records or from silence is at most medium.
        let confidence = v.confidence == .high && !v.evidence.contains(where: { $0.event.layer == v.responder }) ? .medium : v.confidence
        var evidence: [EvidenceLine] = []
        var seenIDs = Set<Int64>()
        for e in v.evidence where seenIDs.insert(e.id).inserted {
            evidence.append(Self.evidenceLine(e, sources))
        }
        return Finding(
            status: c.clientStatus, time: c.time.map(TimeFormat.isoUTCMillis),
            // A load balancer's node is nginx's peer, not the client: `combined` behind an ALB
            // names no client, and the finding says none rather than the balancer's address.
            // The outermost record names the real client: CloudFront's viewer, not the edge
            // address the ALB behind it saw.
            client_ip: c.records.filter { $0.event.kind == .access }.sorted { $0.event.layer < $1.event.layer }
                .compactMap(\.event.clientIP).first { !c.stack.privatePeers.contains($0) }
                ?? c.nginxErrorAnswer?.record.event.clientIP.flatMap { c.stack.privatePeers.contains($0) ? nil : $0 },
            method: head?.method ?? c.records.lazy.compactMap(\.event.method).first,
            path: head?.path ?? c.records.lazy.compactMap(\.event.path).first,
            responder: v.responder.rawValue, cause: v.cause?.rawValue ?? Finding.unknownCause, confidence: confidence, explanation: v.explanation,
            evidence: evidence, absent: absences(c, v), next_steps: v.nextSteps, rule: rule, count: 1,
            first: c.time.map(TimeFormat.isoUTCMillis), last: c.time.map(TimeFormat.isoUTCMillis),
            paths: [head?.path ?? ""].filter { !$0.isEmpty }, micros: c.time, reason: v.reasonKey, dependency: v.dependency)
    }

    static func evidenceLine(_ e: StoredEvent, _ sources: SourceIndex) -> EvidenceLine {
        EvidenceLine(layer: e.event.layer.rawValue, source: sources.path(e.sourceID), line: e.event.line,
                     time: e.event.time.map(TimeFormat.isoUTCMillis), text: e.text, micros: e.event.time)
    }

    /// Every layer on the request's path with no record of it, and why.
    private func absences(_ c: RequestCase, _ v: Verdict) -> [Absence] {
        var out: [Absence] = []
        let present = c.layersPresent
        let t = c.time ?? 0
        let outermostLayer = c.records.map(\.event.layer).min() ?? .app
        // A record behind the responder shows the request went past it: the layers behind that
        // record were not spared by the responder's answer (an ALB 504 after nginx's 499).
        // A web ACL's answer is logged by the ALB, CloudFront or API Gateway it is attached to:
        // their records carry the WAF's decision and are no sign the request went past it.
        let carriers: Set<Layer> = v.responder == .waf ? [.cloudfront, .alb, .apigateway] : []
        let passedResponder = c.records.contains { r in
            let l = r.event.layer
            return !Layer.offPath.contains(l) && l > v.responder && !carriers.contains(l)
        }
        for layer in c.path where !present.contains(layer) {
            if layer == .gunicorn && !c.stack.gunicornRequestsLogged && (present.contains(.app) || v.responder != .gunicorn) {
                // gunicorn's access log is off by default; its error log only speaks of failures, so
                // its silence about one request is no gap.
                if let why = v.expectedAbsent[.gunicorn] {
                    out.append(Absence(layer: "gunicorn", why: why + (c.hasData(.gunicorn) ? " (only its error log was given, which records no requests)" : " (no gunicorn logs were given either)"), expected: true))
                } else if c.hasData(.gunicorn) {
                    out.append(Absence(layer: "gunicorn", why: "expected: only gunicorn's error log was given, which records no requests (its access log is off by default)", expected: true))
                }
                continue
            }
            if layer == .nginx, !c.hasData(.nginx), let target = c.access(.alb)?.extra("target") {
                // The ALB's target answered, and no nginx logs say nginx is what listens there (an
                // ALB may forward straight to gunicorn).
                out.append(Absence(layer: layer.rawValue, why: "not provided: no nginx logs were given; the ALB's target `\(target)` answered, which may be nginx or the app server itself", expected: false))
                continue
            }
            if layer < outermostLayer && !c.hasData(layer) {
                // A layer in front with no logs at all: named only when the data says something is
                // in front (the "upstream" entry below), never invented.
                continue
            }
            let reached = c.reached(layer) || v.reached.contains(layer)
            if let why = v.expectedAbsent[layer], v.evidence.contains(where: { $0.event.layer == layer }) {
                // The rule cites this layer's own line for the request, found by what it names, not
                // linked by a key: its reason says so.
                out.append(Absence(layer: layer.rawValue, why: why, expected: true))
            } else if reached && !c.hasData(layer) {
                out.append(Absence(layer: layer.rawValue, why: "not provided: the records show the request reached \(layer.rawValue), but no \(layer.rawValue) logs were given", expected: false))
            } else if reached, layer == .nginx, let target = c.access(.alb)?.extra("target") {
                out.append(Absence(layer: layer.rawValue, why: "unlinked: the ALB sent the request to target `\(target)`, and no nginx record given matches it: if these nginx logs are another target's, the host behind `\(target)` has the record (see `investigate timeline`)", expected: false))
            } else if reached, !c.covers(layer), let cov = c.coverage[layer] {
                out.append(Absence(layer: layer.rawValue, why: "gap: the records show the request reached \(layer.rawValue), but the \(layer.rawValue) logs given cover \(cov.first ?? "?") to \(cov.last ?? "?"), not this moment", expected: false))
            } else if reached {
                out.append(Absence(layer: layer.rawValue, why: "unlinked: the records show the request reached \(layer.rawValue), but no \(layer.rawValue) record could be linked to it (see `investigate timeline`)", expected: false))
            } else if let why = v.expectedAbsent[layer], v.confidence != .high, c.hasData(layer), !c.covers(layer), let cov = c.coverage[layer] {
                // The rule expects silence from an inference, and these logs could not show a record
                // either way. (A high-confidence answer rests on the responder's own record.)
                let reason = why.hasPrefix("expected: ") ? String(why.dropFirst("expected: ".count)) : why
                out.append(Absence(layer: layer.rawValue, why: "gap: the \(layer.rawValue) logs given cover \(cov.first ?? "?") to \(cov.last ?? "?"), not this moment, so they cannot confirm what the rule expects (\(reason))", expected: false))
            } else if let why = v.expectedAbsent[layer] {
                let note = c.hasData(layer) ? "" : " (no \(layer.rawValue) logs were given either)"
                // A rule may say why a layer's silence cannot be judged ("unknown: …"): not expected.
                out.append(Absence(layer: layer.rawValue, why: why + note, expected: !why.hasPrefix("unknown:")))
            } else if !c.hasData(layer) {
                let given = layer == .alb && c.stack.albConnectionLogsOnly ? "only ALB connection logs were given (TLS connections, not requests)" : "no \(layer.rawValue) logs were given"
                out.append(Absence(layer: layer.rawValue, why: "not provided: \(given), so what it did with this request is unknown", expected: false))
            } else if layer > v.responder && v.confidence == .high && !passedResponder {
                let note = c.covers(layer) ? "" : " (the \(layer.rawValue) logs given do not cover this moment either)"
                out.append(Absence(layer: layer.rawValue, why: "expected: \(v.responder.rawValue) answered before the request reached \(layer.rawValue)" + note, expected: true))
            } else if let cov = c.coverage[layer], !cov.covers(t) {
                // Unless the responder's own record proves it answered, logs that lie elsewhere in
                // time cannot say the request never reached this layer.
                out.append(Absence(layer: layer.rawValue, why: "gap: the \(layer.rawValue) logs given cover \(cov.first ?? "?") to \(cov.last ?? "?"), not this moment", expected: false))
            } else if layer > v.responder && !passedResponder {
                out.append(Absence(layer: layer.rawValue, why: "expected: \(v.responder.rawValue) answered before the request reached \(layer.rawValue)", expected: true))
            } else {
                out.append(Absence(layer: layer.rawValue, why: "suspicious: \(layer.rawValue) logs cover this moment but hold no record linked to this request (a lost log line, or a record that could not be linked unambiguously: see `investigate timeline`)", expected: false))
            }
        }
        if c.stack.somethingInFrontOfNginx, outermostLayer == .nginx, !c.hasData(.alb), !c.hasData(.waf) {
            out.append(Absence(layer: Layer.upstream.rawValue,
                               why: "not provided: nginx's peers (\(c.stack.privatePeers.prefix(3).joined(separator: ", "))) are \(c.stack.balancerEvidence), so something sits in front of nginx\(c.stack.sawAmznTraceID || c.stack.sawHealthChecker ? " (an AWS load balancer)" : ""); it has no logs here", expected: false))
        }
        return out
    }

    /// Repeats of the same client, status and reason become one finding; a client hitting many
    /// paths for the same reason (a scan) becomes one finding listing them.
    private func group(_ raw: [(Finding, String)], zone: ZoneSpec) -> [Finding] {
        var groups: [String: Finding] = [:]
        var order: [String] = []
        var pathsPerKey: [String: Set<String>] = [:]
        for (f, reason) in raw {
            let key = [f.client_ip ?? "-", String(f.status ?? 0), f.responder, f.cause, reason].joined(separator: "|")
            pathsPerKey[key, default: []].insert(f.path ?? "")
        }
        for (f, reason) in raw {
            let base = [f.client_ip ?? "-", String(f.status ?? 0), f.responder, f.cause, reason].joined(separator: "|")
            let scan = (pathsPerKey[base]?.count ?? 0) > 3
            let key = scan ? base : base + "|" + (f.path ?? "")
            if var g = groups[key] {
                g.count += 1
                if let t = f.micros, let gt = g.micros, t < gt { /* keep the earliest as representative */ }
                if let first = f.first, first < (g.first ?? first) { g.first = first }
                if let last = f.last, last > (g.last ?? last) { g.last = last }
                if let p = f.path, !g.paths.contains(p) { g.paths.append(p) }
                groups[key] = g
            } else {
                groups[key] = f
                order.append(key)
            }
        }
        return order.compactMap { key -> Finding? in
            guard var g = groups[key] else { return nil }
            g.paths.sort()
            if g.count > 1 {
                let show: (String?) -> String = { iso in
                    iso.flatMap { UserTime.parse($0, zone: .utc) }.map { TimeFormat.display($0, zone: zone) } ?? "?"
                }
                let span = g.first == g.last ? "" : " between \(show(g.first)) and \(show(g.last))"
                g.explanation += " The same happened to \(g.count) requests from \(g.client_ip == nil ? "clients these logs do not name" : "this client")\(span)\(g.paths.count > 1 ? " across \(g.paths.count) paths" : "")."
            }
            return g
        }
    }

    // MARK: - Coverage and stack facts

    public static func coverage(_ db: Database, from: Int64, to: Int64) throws -> [LayerCoverage] {
        var out: [String: LayerCoverage] = [:]
        for row in try Row.fetchAll(db, sql: """
            SELECT layer, sum(events - copies + outside_records) AS n, min(first_time) AS lo, max(last_time) AS hi FROM source_layer GROUP BY layer
            """) {
            let layer: String = row["layer"]
            let lo: Int64? = row["lo"], hi: Int64? = row["hi"]
            out[layer] = LayerCoverage(layer: layer, first: lo.map(TimeFormat.isoUTC), last: hi.map(TimeFormat.isoUTC), events: row["n"],
                                       in_window: 0, rejected: 0, firstMicros: lo, lastMicros: hi)
        }
        for row in try Row.fetchAll(db, sql: "SELECT layer, count(*) AS n FROM event WHERE time >= ? AND time <= ? AND copy_of IS NULL AND kind IN ('access','log') GROUP BY layer",
                                    arguments: [from, to]) {
            let layer: String = row["layer"]
            out[layer, default: LayerCoverage(layer: layer, events: 0, in_window: 0, rejected: 0)].in_window = row["n"]
        }
        // Rejected lines count against the layer their file's format belongs to.
        let registry = ImporterRegistry.standard
        for row in try Row.fetchAll(db, sql: "SELECT format, sum(rejected) AS r FROM source WHERE format IS NOT NULL GROUP BY format") {
            guard let format: String = row["format"], let layer = registry.importer(id: format)?.layer.rawValue else { continue }
            out[layer]?.rejected += row["r"] ?? 0
        }
        return out.values.sorted { (Layer(rawValue: $0.layer) ?? .system) < (Layer(rawValue: $1.layer) ?? .system) }
    }

    static func stackFacts(_ db: Database, around q: DiagnosisQuery) throws -> StackFacts {
        var facts = StackFacts()
        // Ten minutes either side show the stack's shape without scanning hours of a busy timeline.
        let lo = q.from - 600_000_000, hi = q.to + 600_000_000
        // nginx's peers. A public site whose every client is one of a handful of private addresses
        // is behind a proxy or load balancer, whether or not the log format records X-Forwarded-For
        // (`combined` does not). Public peers, or many of them, are the clients themselves.
        let peers = try Row.fetchAll(db, sql: """
            SELECT CAST(peer_ip AS BLOB) AS peer_ip, count(*) AS n, max(forwarded_for IS NOT NULL) AS xff FROM event
            WHERE layer = 'nginx' AND kind = 'access' AND time >= ? AND time <= ? AND peer_ip IS NOT NULL AND copy_of IS NULL
            GROUP BY peer_ip ORDER BY n DESC LIMIT 33
            """, arguments: [lo, hi])
        // As bytes: a `Row` ends text at a NUL, and "10.0.0.5\0…" must not pass for a private peer.
        let addresses = peers.compactMap { StoredEvent.text($0, "peer_ip") }
        let requests = peers.reduce(0) { $0 + (($1["n"] as Int?) ?? 0) }
        facts.forwardsClient = peers.contains { ($0["xff"] as Int?) == 1 }
        if !addresses.isEmpty, addresses.count <= StackFacts.maxBalancerNodes, addresses.allSatisfy(ByteScanner.isPrivateAddress),
           facts.forwardsClient || requests >= 4 * addresses.count {
            facts.privatePeers = addresses.sorted()
        }
        facts.sawAmznTraceID = try Bool.fetchOne(db, sql: """
            SELECT EXISTS (SELECT 1 FROM event WHERE layer IN ('nginx','app','gunicorn') AND time >= ? AND time <= ? AND trace_id IS NOT NULL)
            """, arguments: [lo, hi]) ?? false
        facts.sawHealthChecker = try Bool.fetchOne(db, sql: """
            SELECT EXISTS (SELECT 1 FROM event WHERE layer IN ('nginx','gunicorn','app') AND time >= ? AND time <= ? AND user_agent LIKE 'ELB-HealthChecker%')
            """, arguments: [lo, hi]) ?? false
        let albKinds = try String.fetchAll(db, sql: """
            SELECT DISTINCT kind FROM event WHERE layer = 'alb' AND time >= ? AND time <= ? AND copy_of IS NULL
            """, arguments: [lo, hi])
        facts.albConnectionLogsOnly = !albKinds.isEmpty && !albKinds.contains(EventKind.access.rawValue)
        facts.nginxErrorLogGiven = try Bool.fetchOne(db, sql: """
            SELECT EXISTS (SELECT 1 FROM source WHERE format = 'nginx-error' AND status = 'complete')
            """) ?? false
        facts.gunicornRequestsLogged = try Bool.fetchOne(db, sql: """
            SELECT EXISTS (SELECT 1 FROM source s JOIN source_layer sl ON sl.source_id = s.id WHERE sl.layer = 'gunicorn' AND s.format = 'gunicorn-access')
            """) ?? false
        facts.edges = try Row.fetchAll(db, sql: "SELECT front, back, evidence FROM topology ORDER BY front, back").map {
            (front: $0["front"], back: $0["back"], evidence: $0["evidence"])
        }
        return facts
    }

    /// What each layer's logs hold inside the question's window, by kind of record.
    static func windowCoverage(_ db: Database, _ q: DiagnosisQuery, stack: StackFacts) throws -> [Layer: WindowCoverage] {
        var out: [Layer: WindowCoverage] = [:]
        let balancer = Set(stack.privatePeers)
        for row in try Row.fetchAll(db, sql: """
            SELECT layer, kind, CAST(client_ip AS BLOB) AS client_ip, count(*) AS n FROM event WHERE time >= ? AND time <= ? AND copy_of IS NULL
              AND kind IN ('access','log')
            GROUP BY layer, kind, client_ip
            """, arguments: [q.from, q.to]) {
            guard let layer = Layer(rawValue: row["layer"]) else { continue }
            let n: Int = row["n"]
            let client = StoredEvent.text(row, "client_ip")
            if (row["kind"] as String) == EventKind.access.rawValue {
                out[layer, default: WindowCoverage()].requests += n
                if let client, !balancer.contains(client) { out[layer, default: WindowCoverage()].requestsWithClient += n }
            } else {
                out[layer, default: WindowCoverage()].messages += n
            }
        }
        return out
    }

    static func stackNotes(_ stack: StackFacts, coverage: [Layer: LayerCoverage]) -> [String] {
        var notes: [String] = []
        if stack.somethingInFrontOfNginx {
            let front = coverage[.alb] != nil ? "the ALB" : coverage[.waf] != nil ? "the WAF-protected front end" : "a proxy or load balancer with no logs here"
            if coverage[.alb] == nil && coverage[.waf] == nil {
                notes.append("Responses sent in front of nginx (a web ACL's block, the load balancer's own errors) never reach nginx or the app, so they are not among these findings; ask about one client with --ip ADDR, or a status with --status, to have the missing requests reasoned about.")
            }
            notes.append("nginx's clients are only \(stack.privatePeers.count) address\(stack.privatePeers.count == 1 ? "" : "es") (\(stack.privatePeers.prefix(4).joined(separator: ", "))), \(stack.balancerEvidence): nginx sits behind \(front); " + (stack.forwardsClient ? "client addresses come from X-Forwarded-For." : "its log format records no X-Forwarded-For, so nginx's records do not name the real clients."))
        }
        let missing = [Layer.waf, .alb, .nginx, .app].filter { coverage[$0] == nil }
        let have = coverage.keys.filter { !Layer.offPath.contains($0) }
        if !have.isEmpty, !missing.isEmpty, coverage[.apigateway] == nil {
            notes.append("No logs given for: \(missing.map(\.rawValue).joined(separator: ", ")). A layer without logs is never taken to mean \"this layer saw no such request\".")
        }
        return notes
    }
}

extension Correlator {
    func loadOffsetsIn(_ db: Database) throws -> [ClockOffset] {
        try Row.fetchAll(db, sql: "SELECT * FROM clock_offset ORDER BY outer_layer, inner_layer").map {
            ClockOffset(outer: $0["outer_layer"], inner: $0["inner_layer"], offset: $0["offset_us"], samples: $0["samples"])
        }
    }
}
