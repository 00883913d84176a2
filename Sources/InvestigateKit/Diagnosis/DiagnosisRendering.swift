import Foundation

extension Diagnosis {
    /// The terminal answer: a one-line verdict per finding first, then each finding's evidence.
    /// All log-derived text is escaped; long lines are cut.
    /// Findings beyond which a window counts as dense and starts with a summary.
    public static let summaryThreshold = 10

    public func renderText(zone: ZoneSpec, lineWidth: Int = 240, limit: Int? = nil) -> String {
        var out = "Question: errors between \(display(query.from, zone)) and \(display(query.to, zone))"
        let filters = [query.status.map { "status \($0)" }, query.ip.map { "client \(Escape.terminal($0))" },
                       query.path.map { "path \(Escape.terminal($0))…" }].compactMap { $0 }
        if !filters.isEmpty { out += " (" + filters.joined(separator: ", ") + ")" }
        if let source = query.tz_source { out += "\n" + wrap("Zone: \(Escape.terminal(source))", indent: "", width: 100) }
        out += "\n"
        if let headline {
            out += "\n" + wrap("Answer: " + Escape.terminal(headline), indent: "", width: 100, hanging: "  ") + "\n"
        }
        if findings.count > Self.summaryThreshold {
            out += "\nSummary (\(findings.reduce(0) { $0 + max($1.count, 1) }) failed requests in \(findings.count) findings):\n"
            out += summaryLines().map { "  " + $0 }.joined(separator: "\n") + "\n"
        }
        let shown = limit.map { Array(findings.prefix(max($0, 0))) } ?? findings
        if !findings.isEmpty {
            out += "\nVerdicts:\n"
            for (i, f) in shown.enumerated() {
                out += "  \(i + 1). \(verdictLine(f, zone: zone))\n"
            }
            if shown.count < findings.count {
                out += "  … \(findings.count - shown.count) more finding\(findings.count - shown.count == 1 ? "" : "s") not shown (--limit \(shown.count)); `--json` has every one.\n"
            }
        }
        for (i, f) in shown.enumerated() {
            out += "\n── Finding \(i + 1): \(f.responder) answered\(f.status.map { " \($0)" } ?? ""), \(f.causePhrase) (\(f.confidence.rawValue) confidence, rule \(f.rule))\n"
            out += wrap(Escape.terminal(f.explanation), indent: "   ", width: 100) + "\n"
            if f.count > 1, f.paths.count > 1 {
                out += "   Paths (\(f.paths.count)): " + f.paths.prefix(12).map { Escape.terminal($0, limit: 60) }.joined(separator: ", ")
                out += f.paths.count > 12 ? ", …\n" : "\n"
            }
            if !f.evidence.isEmpty {
                out += "   Evidence:\n"
                for e in f.evidence {
                    let when = e.micros.map { TimeFormat.display($0, zone: zone) } ?? "(no time)"
                    out += "     [\(e.layer)] \(Escape.terminal(e.source)):\(e.line)  \(when)\n"
                    out += "       \(Escape.terminal(e.text, limit: lineWidth))\n"
                }
            }
            if !f.absent.isEmpty {
                out += "   No record at:\n"
                for a in f.absent { out += "     \(a.layer): \(Escape.terminal(a.why))\n" }
            }
            if !f.next_steps.isEmpty {
                out += "   Next steps:\n"
                for s in f.next_steps { out += wrap("- " + Escape.terminal(s), indent: "     ", width: 100, hanging: "       ") + "\n" }
            }
        }
        if coverage.isEmpty { return out + notesText() }
        out += "\nCoverage (whole logs; events in this window):\n"
        var rows: [[String]] = [["LAYER", "FROM", "TO", "EVENTS", "IN WINDOW", "REJECTED"]]
        for c in coverage {
            rows.append([c.layer, c.firstMicros.map { display($0, zone) } ?? "-", c.lastMicros.map { display($0, zone) } ?? "-",
                         String(c.events), String(c.in_window), String(c.rejected)])
        }
        out += TextTable.render(rows, rightAligned: [3, 4, 5]).split(separator: "\n").map { "  " + $0 }.joined(separator: "\n") + "\n"
        return out + notesText()
    }

    private func notesText() -> String {
        var out = ""
        if !notes.isEmpty {
            out += "\nNotes:\n"
            for n in notes { out += wrap("- " + Escape.terminal(n), indent: "  ", width: 100, hanging: "    ") + "\n" }
        }
        // Metrics that counted more than the logs and GuardDuty findings are already in the
        // findings or notes; what is left: metrics that agree with the logs, Inspector findings.
        let others = signals.filter { $0.kind == "inspector" || ($0.kind == "metric" && $0.unlogged == nil) }
        if !others.isEmpty {
            out += "\nOther signals:\n"
            for s in others.prefix(10) {
                out += wrap("- [\(s.layer)] " + Escape.terminal(s.text), indent: "  ", width: 100, hanging: "    ") + "\n"
            }
            if others.count > 10 { out += "  … \(others.count - 10) more (--json lists them all)\n" }
        }
        return out
    }

    /// One line per (responder, cause, reason), most requests first, with the top clients and paths.
    public func summaryLines() -> [String] {
        struct Group { var responder: String; var cause: String; var reason: String; var rule: String; var requests = 0
                       var clients: [String: Int] = [:]; var paths: [String: Int] = [:]; var sample = "" }
        var groups: [String: Group] = [:]
        for f in findings {
            let key = [f.responder, f.cause, f.reason.isEmpty ? f.rule : f.reason].joined(separator: "|")
            var g = groups[key] ?? Group(responder: f.responder, cause: f.cause, reason: f.reason.isEmpty ? f.rule : f.reason, rule: f.rule)
            let n = max(f.count, 1)
            g.requests += n
            if let ip = f.client_ip { g.clients[ip, default: 0] += n }
            let paths = f.paths.isEmpty ? [f.path].compactMap { $0 } : f.paths
            for p in paths { g.paths[p, default: 0] += paths.count == 1 ? n : 1 }
            if g.sample.isEmpty { g.sample = f.explanation.range(of: ". ").map { String(f.explanation[..<$0.lowerBound]) } ?? f.explanation }
            groups[key] = g
        }
        let top: ([String: Int]) -> String = { counts in
            let sorted = counts.sorted { ($0.value, $1.key) > ($1.value, $0.key) }
            return sorted.prefix(3).map { "\(Escape.terminal($0.key, limit: 60)) (\($0.value))" }.joined(separator: ", ") + (sorted.count > 3 ? ", … \(sorted.count - 3) more" : "")
        }
        return groups.values.sorted { ($0.requests, $1.responder, $1.reason) > ($1.requests, $0.responder, $0.reason) }.map { g in
            var line = "\(g.requests) × responder \(g.responder), cause \(g.cause) — \(Escape.terminal(g.reason, limit: 80)) (rule \(g.rule))"
            if !g.clients.isEmpty { line += "; clients: " + top(g.clients) }
            if !g.paths.isEmpty { line += "; paths: " + top(g.paths) }
            return line
        }
    }

    func verdictLine(_ f: Finding, zone: ZoneSpec) -> String {
        let when = f.micros.map { TimeFormat.clock($0, zone: zone) } ?? "--:--:--"
        let who = [f.client_ip, f.method, f.path].compactMap { $0 }.map { Escape.terminal($0, limit: 80) }.joined(separator: " ")
        let times = f.count > 1 ? " ×\(f.count)" : ""
        let status = f.status.map(String.init) ?? "???"
        let sentence = f.explanation.range(of: ". ").map { String(f.explanation[..<$0.lowerBound]) } ?? f.explanation
        let reason = Escape.terminal(sentence, limit: 110)
        return "\(when)  \(status)\(times)  \(who.isEmpty ? "(no matching record)" : who)  → responder \(f.responder), cause \(f.cause)\(f.dependency.map { " (its \($0))" } ?? "") [\(f.confidence.rawValue)]: \(reason)"
    }

    private func display(_ micros: Int64, _ zone: ZoneSpec) -> String { TimeFormat.display(micros, zone: zone, millis: false) }

    private func display(_ iso: String, _ zone: ZoneSpec) -> String {
        UserTime.parse(iso, zone: .utc).map { TimeFormat.display($0, zone: zone, millis: false) } ?? iso
    }

    func wrap(_ text: String, indent: String, width: Int, hanging: String? = nil) -> String {
        var lines: [String] = []
        var current = indent
        let next = hanging ?? indent
        for word in text.split(separator: " ", omittingEmptySubsequences: false) {
            if current.count + word.count + 1 > width, current.trimmingCharacters(in: .whitespaces).count > 0 {
                lines.append(current)
                current = next
            }
            current += (current == indent || current == next ? "" : " ") + word
        }
        lines.append(current)
        return lines.joined(separator: "\n")
    }
}
