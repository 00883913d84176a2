import Foundation

/// How a report is written: what cannot be derived from the timeline (when, by which command) and
/// how paths are shown.
public struct ReportOptions: Sendable {
    /// µs UTC shown once as the generation time; fixed in tests so reports are byte-identical.
    public var generatedAt: Int64
    /// The exact command line that produced the report, shown in the appendix.
    public var commandLine: String
    /// Source paths under this directory are shown relative to it (the repository root, the cwd).
    public var pathBase: String?
    /// The database as the reader should know it (defaults to the store's path).
    public var databaseLabel: String?
    /// Half-width of the per-minute chart around `--at`, at least the query window.
    public var chartHalfWidth: Int64 = 5 * 60_000_000
    /// Most rows in the timeline table.
    public var maxTimelineRows = 300
    /// Longest record text quoted in a table cell (evidence blocks quote records whole).
    public var cellLimit = 200

    public init(generatedAt: Int64, commandLine: String, pathBase: String? = nil, databaseLabel: String? = nil) {
        self.generatedAt = generatedAt
        self.commandLine = commandLine
        self.pathBase = pathBase
        self.databaseLabel = databaseLabel
    }
}

/// The Markdown incident report: what the investigator hands to the person who asked. Built from a
/// `Diagnosis` plus the timeline it came from; every log-derived string goes through `Markdown` or
/// `Mermaid` escaping, and everything is sorted so the same inputs give the same bytes.
/// docs/reports.md walks through the sections.
public struct ReportBuilder {
    public let store: TimelineStore
    /// Run over the window's requests; the replay detectors plug in here.
    public var detectors: [any IncidentDetector]

    public init(store: TimelineStore, detectors: [any IncidentDetector] = SimpleDetectors.standard) {
        self.store = store
        self.detectors = detectors
    }

    public func build(_ diagnosis: Diagnosis, query q: DiagnosisQuery, options: ReportOptions) throws -> String {
        let half = max(q.halfWindow, options.chartHalfWidth)
        let chartFrom = Self.minuteStart(q.at - half, zone: q.zone)
        let chartTo = Self.minuteStart(q.at + half, zone: q.zone) + 60_000_000
        let data = try store.scoped(q.sources) {
            try store.read { db in try ReportData.load(db, diagnosis: diagnosis, query: q, chartFrom: chartFrom, chartTo: chartTo) }
        }
        let input = DetectionInput(from: q.from, to: q.to, requests: data.requests)
        let detections = detectors.flatMap { $0.detect(input) }.sorted {
            ($0.kind, $0.first, $0.subject, $0.detector) < ($1.kind, $1.first, $1.subject, $1.detector)
        }
        var r = Rendering(diagnosis: diagnosis, query: q, options: options, data: data, detections: detections,
                          database: options.databaseLabel ?? store.path)
        return r.render()
    }

    /// The start of the minute containing `t` in the zone's wall clock (zones with :30 offsets too).
    static func minuteStart(_ t: Int64, zone: ZoneSpec) -> Int64 {
        let off = Int64(zone.offset(atUTC: t)) * 1_000_000
        return floorMinute(t + off) - off
    }
}

/// One report's rendering, section by section, in the order of docs/reports.md.
private struct Rendering {
    let diagnosis: Diagnosis
    let query: DiagnosisQuery
    let options: ReportOptions
    let data: ReportData
    let detections: [Detection]
    let database: String
    var out = ""

    init(diagnosis: Diagnosis, query: DiagnosisQuery, options: ReportOptions, data: ReportData, detections: [Detection], database: String) {
        self.diagnosis = diagnosis
        self.query = query
        self.options = options
        self.data = data
        self.detections = detections
        self.database = database
    }

    var zone: ZoneSpec { query.zone }
    var findings: [Finding] { diagnosis.findings }

    mutating func render() -> String {
        title()
        scope()
        coverage()
        requestPaths()
        chart()
        timeline()
        evidence()
        otherSignals()
        missingLogs()
        detectionsSection()
        nextSteps()
        appendix()
        return out
    }

    // MARK: - Helpers

    func time(_ micros: Int64?) -> String { micros.map { TimeFormat.display($0, zone: zone) } ?? "(no time)" }
    func minuteTime(_ micros: Int64) -> String { TimeFormat.display(micros, zone: zone, millis: false) }

    func shownPath(_ path: String) -> String {
        guard let base = options.pathBase, !base.isEmpty else { return path }
        let prefix = base.hasSuffix("/") ? base : base + "/"
        return path.hasPrefix(prefix) ? String(path.dropFirst(prefix.count)) : path
    }

    func location(_ e: StoredEvent) -> String {
        let end = e.event.lineEnd > e.event.line ? "-\(e.event.lineEnd)" : ""
        return "\(shownPath(data.sourcePaths.path(e.sourceID))):\(e.event.line)\(end)"
    }

    mutating func line(_ s: String = "") { out += s + "\n" }

    mutating func table(_ header: [String], _ rows: [[String]], right: Set<Int> = []) {
        line("| " + header.joined(separator: " | ") + " |")
        line("|" + header.indices.map { right.contains($0) ? " ---: |" : " --- |" }.joined())
        for row in rows { line("| " + row.joined(separator: " | ") + " |") }
        line()
    }

    /// The finding most likely to be the asker's: highest confidence, then most requests, then earliest.
    var headline: Finding? {
        findings.enumerated().min { a, b in
            (a.element.confidence != b.element.confidence) ? a.element.confidence > b.element.confidence
                : (a.element.count != b.element.count ? a.element.count > b.element.count : a.offset < b.offset)
        }?.element
    }

    func who(_ f: Finding) -> String {
        let client = f.client_ip.map { "to " + Markdown.text($0, limit: 64) } ?? ""
        let request = [f.method, f.path].compactMap { $0 }.map { Markdown.text($0, limit: 120) }.joined(separator: " ")
        return [client, request.isEmpty ? "" : "for " + request].filter { !$0.isEmpty }.joined(separator: " ")
    }

    func firstSentence(_ text: String) -> String {
        text.range(of: ". ").map { String(text[..<$0.lowerBound]) + "." } ?? text
    }

    func lastSentence(_ text: String) -> String {
        let trimmed = text.hasSuffix(".") ? String(text.dropLast()) : text
        return trimmed.range(of: ". ", options: .backwards).map { String(trimmed[$0.upperBound...]) + "." } ?? text
    }

    func findingTitle(_ i: Int, _ f: Finding) -> String {
        let status = f.status.map { " \($0)" } ?? ""
        let times = f.count > 1 ? " (×\(f.count))" : ""
        let whom = who(f)
        return "Finding \(i + 1): \(f.responder) answered\(status)\(whom.isEmpty ? "" : " " + whom)\(times)"
    }

    // MARK: - Sections

    mutating func title() {
        let what = query.status.map { "\($0) responses" } ?? "Error responses"
        line("# Incident report: \(what) around \(minuteTime(query.at))")
        line()
        line("Generated \(TimeFormat.isoUTC(options.generatedAt)) by investigate \(InvestigateKit.version).")
        line()
        line("## Summary")
        line()
        let total = findings.reduce(0) { $0 + $1.count }
        if let h = headline {
            let requests = total == 1 ? "1 error response" : "\(total) error responses"
            if total == 0 {
                line("- **What happened:** no layer whose logs were given recorded a matching error response between \(minuteTime(query.from)) and \(minuteTime(query.to)).")
            } else {
                line("- **What happened:** \(requests) between \(minuteTime(query.from)) and \(minuteTime(query.to)), in \(findings.count) finding\(findings.count == 1 ? "" : "s").")
            }
            if h.rule == "absence" {
                line("- **Who answered:** most likely \(h.responder)\(h.status.map { ", which sent the \($0)" } ?? "")\(who(h).isEmpty ? "" : " " + who(h)): inferred from what the logs do not hold, \(h.confidence.rawValue) confidence.")
                // A reasoning from absence leads with its conclusion, like every other finding.
                line("- **Why:** \(Markdown.text(firstSentence(h.explanation), limit: 600))")
            } else {
                line("- **Who answered:** \(h.responder)\(h.status.map { " sent the \($0)" } ?? "")\(who(h).isEmpty ? "" : " " + who(h))\(h.count > 1 ? " (×\(h.count))" : "") — \(h.causePhrase), \(h.confidence.rawValue) confidence.")
                line("- **Why:** \(Markdown.text(firstSentence(h.explanation), limit: 600))")
            }
        } else {
            line("- **What happened:** \(diagnosis.headline.map { Markdown.text($0, limit: 600) } ?? "nothing the diagnosis could judge in this window.")")
        }
        if findings.count > Diagnosis.summaryThreshold {
            // A dense window: every (responder, cause, reason) with its count, before the details.
            line("- **All findings, by who answered and why:**")
            for s in diagnosis.summaryLines() { line("  - \(Markdown.text(s, limit: 400))") }
        }
        line()
    }

    mutating func scope() {
        line("## Question and scope")
        line()
        let filters = [query.status.map { "status \($0)" }, query.clientIP.map { "client " + Markdown.text($0, limit: 64) },
                       query.pathPrefix.map { "path prefix " + Markdown.text($0, limit: 120) }].compactMap { $0 }
        let half = query.halfWindow / 1_000_000
        let halfText = half % 60 == 0 ? "\(half / 60) min" : "\(half) s"
        let files = data.sources.count
        table(["Question", "Value"], [
            ["Moment (`--at`)", minuteTime(query.at)],
            ["Window", "\(minuteTime(query.from)) to \(minuteTime(query.to)) (±\(halfText))"],
            ["Zone (`--tz`)", Markdown.cell(query.zone.description)],
            ["Filters", filters.isEmpty ? "none" : filters.joined(separator: ", ")],
            ["Database", Markdown.cell(shownPath(database))],
            ["Inputs", "\(files) file\(files == 1 ? "" : "s") (see the appendix)"],
        ])
    }

    mutating func coverage() {
        line("## Coverage")
        line()
        line("What each layer's logs span, how many records they hold, and how many lines could not be read.")
        line()
        var rows: [[String]] = []
        var gaps: [String] = []
        for c in diagnosis.coverage {
            let gap: String
            if c.events == 0 {
                gap = "no events"
            } else if c.layer == Layer.cloudtrail.rawValue {
                // API calls, not traffic: a window without one is no gap in anything.
                gap = "context (API calls, not traffic)"
            } else if c.covers(query.from) && c.covers(query.to) {
                gap = "covers the window"
            } else if (c.lastMicros ?? Int64.min) < query.from || (c.firstMicros ?? Int64.max) > query.to {
                gap = "**gap**: no records in the window"
            } else {
                gap = "**partial**: starts or ends inside the window"
            }
            if gap != "covers the window" && c.layer != Layer.cloudtrail.rawValue { gaps.append("**\(c.layer)**: \(gap.replacingOccurrences(of: "**", with: ""))") }
            rows.append([c.layer, time(c.firstMicros), time(c.lastMicros), String(c.events), String(c.in_window), String(c.rejected), gap])
        }
        let present = Set(diagnosis.coverage.map(\.layer))
        var missing: [String: String] = [:]
        for f in findings { for a in f.absent where !present.contains(a.layer) && a.why.hasPrefix("not provided") { missing[a.layer] = a.why } }
        for layer in missing.keys.sorted(by: { (Layer(rawValue: $0) ?? .system) < (Layer(rawValue: $1) ?? .system) }) {
            rows.append([layer, "—", "—", "0", "0", "0", "**no logs given**"])
            gaps.append("**\(layer)**: no logs given — \(Markdown.text(missing[layer] ?? ""))")
        }
        table(["Layer", "First record", "Last record", "Events", "In window", "Rejected", "Coverage"], rows, right: [3, 4, 5])
        if gaps.isEmpty {
            line("Every layer with logs covers the whole window.")
        } else {
            line("Gaps:")
            line()
            for g in gaps { line("- " + g) }
        }
        line()
    }

    mutating func requestPaths() {
        line("## How far each request got, and who answered")
        line()
        if findings.isEmpty { line("No findings."); line(); return }
        for (i, f) in findings.enumerated() {
            line("### " + findingTitle(i, f))
            line()
            var facts = "Responder **\(f.responder)**, cause **\(f.cause)**\(f.dependency.map { " (its \(Markdown.text($0)))" } ?? ""), \(f.confidence.rawValue) confidence (rule `\(f.rule)`)"
            if f.count > 1, let first = f.first, let last = f.last,
               let a = UserTime.parse(first, zone: .utc), let b = UserTime.parse(last, zone: .utc) {
                facts += "; \(f.count) requests from \(time(a)) to \(time(b))"
            } else if let t = f.micros {
                facts += "; at \(time(t))"
            }
            line(facts + ".")
            line()
            line(Markdown.text(f.explanation, lineStart: true))
            line()
            if f.paths.count > 1 {
                let shown = f.paths.prefix(20).map { Markdown.text($0, limit: 100) }.joined(separator: ", ")
                line("Paths (\(f.paths.count)): \(shown)\(f.paths.count > 20 ? ", …" : "").")
                line()
            }
            let diagram = sequenceDiagram(f, records: i < data.findingRecords.count ? data.findingRecords[i].records : [])
            let fence = Markdown.fence(for: diagram)
            line(fence + "mermaid")
            out += diagram
            line(fence)
            line()
        }
    }

    /// The representative request's path: forward through every layer that logged it, back from the
    /// responder, and a note over the layers it never reached.
    func sequenceDiagram(_ f: Finding, records: [StoredEvent]) -> String {
        let responder = Layer(rawValue: f.responder) ?? .upstream
        let accessByLayer = Dictionary(grouping: records.filter { $0.event.kind == .access }, by: \.event.layer)
        // Metric datapoints and findings cited as evidence are signals, not records of this request.
        var present = Set(records.filter { $0.event.kind.isLogRecord }.map(\.event.layer)).subtracting(Layer.offPath)
        if f.rule == "absence" { present = [] }
        var participants = present.union([responder]).subtracting([.client])
        var unreached: [Layer] = []
        for a in f.absent {
            guard let layer = Layer(rawValue: a.layer), layer != .client, layer != .system, layer != .cloudtrail else { continue }
            participants.insert(layer)
            unreached.append(layer)
        }
        // Reasoning from absence: the layers whose logs cover the window but hold no such response.
        var silent: [Layer] = []
        if f.rule == "absence" {
            silent = diagnosis.coverage.filter { $0.in_window > 0 }.compactMap { Layer(rawValue: $0.layer) }
                .filter { $0 != .system && $0 != .cloudtrail && $0 != .client && !participants.contains($0) }
            participants.formUnion(silent)
        }
        let order = participants.sorted()
        var d = "sequenceDiagram\n"
        d += "    participant client as Client\n"
        for layer in order { d += "    participant \(layer.rawValue) as \(Self.layerTitle(layer))\n" }
        let request = Mermaid.label([f.method, f.path].compactMap { $0 }.joined(separator: " ").isEmpty
                                    ? "request" : [f.method, f.path].compactMap { $0 }.joined(separator: " "))
        // Forward through every layer that logged the request (and the responder), to the deepest.
        // AWS WAF decides before anything is forwarded: an ALB record next to a WAF block is the ALB
        // logging that decision, not a hop behind the WAF.
        // A layer inferred in front with no logs ("upstream") is still a hop the request crossed.
        let hops = responder == .waf ? [responder] : order.filter { present.contains($0) || $0 == responder || $0 == .upstream }
        var previous = "client"
        for (k, layer) in hops.enumerated() {
            d += "    \(previous)->>\(layer.rawValue): \(k == 0 ? request : "forwards")\n"
            previous = layer.rawValue
        }
        // Back, each layer with the status it logged; behind the responder, what did not come back.
        let status = f.status.map(String.init) ?? "error"
        let inferred = f.rule == "absence" ? " (inferred: no logs)" : ""
        func answer(_ layer: Layer) -> String {
            if let own = accessByLayer[layer]?.first?.event.status { return String(own) }
            return layer > responder ? "no response logged" : status + inferred
        }
        for idx in stride(from: hops.count - 1, through: 0, by: -1) {
            let to = idx == 0 ? "client" : hops[idx - 1].rawValue
            d += "    \(hops[idx].rawValue)-->>\(to): \(Mermaid.label(answer(hops[idx])))\n"
        }
        d += "    Note over \(responder.rawValue): answered \(Mermaid.label(status)) (\(f.confidence.rawValue) confidence)\n"
        for layer in order where present.contains(layer) && !hops.contains(layer) {
            let logged = accessByLayer[layer]?.first?.event.status.map { " (\($0))" } ?? ""
            d += "    Note over \(layer.rawValue): logged the decision\(logged)\n"
        }
        for layer in silent.sorted() {
            d += "    Note over \(layer.rawValue): logs cover the window, no such response\n"
        }
        // One note per run of adjacent participants without a record, so no note covers a layer that logged it.
        let never = Set(unreached.filter { !present.contains($0) && !hops.contains($0) })
        var run: [Layer] = []
        for layer in order + [Layer.system] {
            if never.contains(layer) { run.append(layer); continue }
            if let a = run.first, let b = run.last {
                let span = a == b ? a.rawValue : "\(a.rawValue),\(b.rawValue)"
                let expected = f.absent.filter { run.map(\.rawValue).contains($0.layer) }.allSatisfy(\.expected)
                d += "    Note over \(span): no record (\(expected ? "expected" : "unexplained or no logs given"))\n"
            }
            run = []
        }
        return d
    }

    static func layerTitle(_ layer: Layer) -> String {
        switch layer {
        case .cloudfront: return "CloudFront"
        case .waf: return "AWS WAF"
        case .nlb: return "NLB"
        case .alb: return "ALB"
        case .apigateway: return "API Gateway"
        case .nginx: return "nginx"
        case .gunicorn: return "gunicorn"
        case .app: return "app"
        case .lambda: return "Lambda"
        case .upstream: return "upstream (no logs)"
        case .system: return "system"
        case .cloudtrail: return "CloudTrail"
        case .client: return "Client"
        }
    }

    mutating func chart() {
        line("## Responses per minute")
        line()
        line("Access records per minute from \(minuteTime(data.chartFrom)) to \(minuteTime(data.chartTo)), by layer: bars are all responses, the line is errors (4xx and 5xx). The table below gives every status class.")
        line()
        let minutes = stride(from: data.chartFrom, to: data.chartTo, by: 60_000_000).map { $0 }
        let layers = Set(data.minuteCounts.keys.map(\.layer) + data.metricSeries.map(\.layer)).sorted()
        if !data.metricSeries.isEmpty {
            line("CloudWatch error metrics of the same layers are drawn as further lines on their layer's chart and given as their own columns: what the service counted, beside what its logs show.")
            line()
        }
        if layers.isEmpty || minutes.isEmpty {
            line("No access records in this span.")
            line()
            return
        }
        let labels = minutes.map { "\"\(TimeFormat.clock($0, zone: zone).prefix(5))\"" }.joined(separator: ", ")
        for layer in layers {
            let totals = minutes.map { m in [2, 4, 5].reduce(0) { $0 + (data.minuteCounts[.init(layer: layer, minute: m, statusClass: $1)] ?? 0) } }
            let errors = minutes.map { m in [4, 5].reduce(0) { $0 + (data.minuteCounts[.init(layer: layer, minute: m, statusClass: $1)] ?? 0) } }
            let metrics = data.metricSeries.filter { $0.layer == layer }
            let metricValues = metrics.map { s in minutes.map { s.perMinute[$0] ?? 0 } }
            let top = max(1, totals.max() ?? 1, Int((metricValues.flatMap { $0 }.max() ?? 0).rounded(.up)))
            // Metric names only (the dimensions are in the table's columns): a title must stay short.
            let metricNames = data.metricSeries.filter { $0.layer == layer }.map { String($0.name.prefix { $0 != " " }) }
            let metricTitle = metrics.isEmpty ? "" : Mermaid.label("; further lines: CloudWatch " + metricNames.joined(separator: ", "), limit: 160)
            line("```mermaid")
            line("xychart-beta")
            line("    title \"\(Rendering.layerTitle(layer)): responses per minute (bars: all, line: errors\(metricTitle))\"")
            line("    x-axis [\(labels)]")
            line("    y-axis \"responses\" 0 --> \(top)")
            line("    bar [\(totals.map(String.init).joined(separator: ", "))]")
            line("    line [\(errors.map(String.init).joined(separator: ", "))]")
            for values in metricValues { line("    line [\(values.map(ContextSignals.number).joined(separator: ", "))]") }
            line("```")
            line()
        }
        var rows: [[String]] = []
        for m in minutes {
            var row = [TimeFormat.clock(m, zone: zone).prefix(5).description + (m <= query.at && query.at < m + 60_000_000 ? " ◀" : "")]
            for layer in layers {
                let c = [2, 4, 5].map { data.minuteCounts[.init(layer: layer, minute: m, statusClass: $0)] ?? 0 }
                row.append("\(c[0]) / \(c[1]) / \(c[2])")
            }
            for s in data.metricSeries { row.append(s.perMinute[m].map(ContextSignals.number) ?? "–") }
            rows.append(row)
        }
        table(["Minute (\(Markdown.text(zone.description)))"] + layers.map { "\($0.rawValue) 2xx-3xx / 4xx / 5xx" }
              + data.metricSeries.map { "\($0.layer.rawValue) \(Markdown.cell($0.name)) (CloudWatch)" }, rows,
              right: Set(1...(layers.count + data.metricSeries.count)))
        line("◀ marks the minute of `--at`.")
        line()
    }

    mutating func timeline() {
        line("## Timeline of the correlated records")
        line()
        line("Every record of each finding's representative request (for a finding reasoned from absence, the records it cites), in \(Markdown.text(zone.description)), with where it came from.")
        line()
        var seen = Set<Int64>()
        var records: [(StoredEvent, Int)] = []
        for (i, fr) in data.findingRecords.enumerated() {
            for e in fr.records where seen.insert(e.id).inserted { records.append((e, i + 1)) }
        }
        records.sort { ($0.0.event.time ?? Int64.min, $0.0.id) < ($1.0.event.time ?? Int64.min, $1.0.id) }
        if records.isEmpty { line("No correlated records."); line(); return }
        let rows = records.prefix(options.maxTimelineRows).map { e, finding -> [String] in
            [time(e.event.time), String(finding), e.event.layer.rawValue, e.event.kind.rawValue, e.event.status.map(String.init) ?? "",
             Markdown.cell(location(e)), Markdown.cell(e.text, limit: options.cellLimit)]
        }
        table(["Time", "Finding", "Layer", "Kind", "Status", "Source", "Record"], rows)
        if records.count > options.maxTimelineRows {
            line("\(records.count - options.maxTimelineRows) more records are not shown; `investigate timeline` lists them all.")
            line()
        }
    }

    mutating func evidence() {
        line("## Evidence")
        line()
        line("The log lines each finding rests on, quoted verbatim (control characters shown as escapes).")
        line()
        for (i, f) in findings.enumerated() {
            line("### Evidence for finding \(i + 1)")
            line()
            if f.evidence.isEmpty { line("No log line: this finding rests on what is absent."); line(); continue }
            for e in f.evidence {
                line("**\(e.layer)** · \(Markdown.text(shownPath(e.source))):\(e.line) · \(time(e.micros))")
                line()
                out += Markdown.codeBlock(e.text)
                line()
            }
        }
    }

    /// Metrics, GuardDuty and Inspector findings beside the logs (only when some were given).
    mutating func otherSignals() {
        let signals = diagnosis.signals
        guard !signals.isEmpty else { return }
        line("## Other signals")
        line()
        line("What CloudWatch metrics, GuardDuty and Inspector say about the same window and layers. They are cited as evidence, never as the answer: who answered and how sure rests on the logs.")
        line()
        for (kind, heading) in [("metric", "CloudWatch metrics"), ("guardduty", "GuardDuty findings in the window"),
                                ("inspector", "Inspector findings about the layers in the answer")] {
            let some = signals.filter { $0.kind == kind }
            guard !some.isEmpty else { continue }
            line("### " + heading)
            line()
            for s in some {
                var text = "- **\(s.layer)**: " + Markdown.text(s.text)
                if let u = s.unlogged { text += " What \(s.layer) leaves unlogged: " + Markdown.text(u) + "." }
                if let e = s.evidence.first { text += " (" + Markdown.text(shownPath(e.source)) + ":\(e.line))" }
                line(text)
            }
            line()
        }
    }

    mutating func missingLogs() {
        line("## Missing logs")
        line()
        line("Which layers hold no record of each request, and whether that is what the failure leaves behind.")
        line()
        for (i, f) in findings.enumerated() {
            line("### Finding \(i + 1)")
            line()
            if f.absent.isEmpty { line("Every layer on the request's path logged it."); line(); continue }
            for a in f.absent {
                line("- **\(Markdown.text(a.layer))** (\(a.expected ? "expected" : "not explained")): \(Markdown.text(a.why))")
            }
            line()
        }
        if !diagnosis.notes.isEmpty {
            line("### About the stack")
            line()
            for n in diagnosis.notes { line("- " + Markdown.text(n, lineStart: true)) }
            line()
        }
    }

    mutating func detectionsSection() {
        line("## Detections in the window")
        line()
        line("Computed from the window's requests (one per correlated chain, as the client saw it): scanners (≥ 10 errors over ≥ 5 paths from one client), floods (≥ 60 requests in a minute from one client), error spikes (a minute with ≥ 10 responses where at least half are errors, or at least three times the usual error count).")
        line()
        if detections.isEmpty { line("None."); line(); return }
        table(["Kind", "Subject", "From", "To", "Count", "What"], detections.map { d in
            // A spike's subject is its minute: shown in the question's zone like every other time.
            [d.kind, d.kind == "spike" ? "minute " + TimeFormat.clock(d.first, zone: zone).prefix(5) : Markdown.cell(d.subject, limit: 64), time(d.first), time(d.last), String(d.count), Markdown.cell(d.summary, limit: 300)]
        }, right: [4])
    }

    mutating func nextSteps() {
        line("## Next steps")
        line()
        var seen = Set<String>()
        var steps: [String] = []
        for f in findings { for s in f.next_steps where seen.insert(s).inserted { steps.append(s) } }
        if steps.isEmpty { line("None suggested."); line(); return }
        for s in steps { line("- " + Markdown.text(s, lineStart: true)) }
        line()
    }

    mutating func appendix() {
        line("## Appendix")
        line()
        line("### Input files")
        line()
        let rows = data.sources.sorted { ($0.path, $0.id) < ($1.path, $1.id) }.map { s -> [String] in
            [Markdown.cell(shownPath(s.path)), Markdown.cell(s.format ?? "—"), String(s.size), s.sha256,
             String(s.lines), String(s.events), String(s.rejected),
             Markdown.cell(s.status + (s.skipped.map { ": " + $0 } ?? "") + (s.covered.map {
                 ": records \(TimeFormat.isoUTC($0.lowerBound)) to \(TimeFormat.isoUTC($0.upperBound)) only (\(s.outsideLines) lines outside not stored)"
             } ?? ""))]
        }
        if rows.isEmpty { line("No input files."); line() } else {
            table(["Path", "Format", "Bytes", "SHA-256", "Lines", "Events", "Rejected", "Status"], rows, right: [2, 4, 5, 6])
        }
        if !diagnosis.unread.isEmpty {
            // Files the question left unread: they are not in the timeline, so the table above
            // cannot list them.
            line("### Files not read for this window")
            line()
            table(["Path", "Why"], diagnosis.unread.sorted { $0.path < $1.path }.map { [Markdown.cell(shownPath($0.path)), Markdown.cell($0.reason)] },
                  right: [])
        }
        line("### Tool")
        line()
        line("- investigate \(InvestigateKit.version)")
        line("- Command line:")
        line()
        out += Markdown.codeBlock(options.commandLine, info: "sh")
    }
}
