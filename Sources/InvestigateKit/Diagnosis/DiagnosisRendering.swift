import Foundation

extension Diagnosis {
    /// The terminal answer: a one-line verdict per finding first, then each finding's evidence.
    /// All log-derived text is escaped; long lines are cut.
    public func renderText(zone: ZoneSpec, lineWidth: Int = 240) -> String {
        var out = "Question: errors between \(display(query.from, zone)) and \(display(query.to, zone))"
        let filters = [query.status.map { "status \($0)" }, query.ip.map { "client \(Escape.terminal($0))" },
                       query.path.map { "path \(Escape.terminal($0))…" }].compactMap { $0 }
        if !filters.isEmpty { out += " (" + filters.joined(separator: ", ") + ")" }
        out += "\n\nVerdicts:\n"
        for (i, f) in findings.enumerated() {
            out += "  \(i + 1). \(verdictLine(f, zone: zone))\n"
        }
        for (i, f) in findings.enumerated() {
            out += "\n── Finding \(i + 1): \(f.responder) answered\(f.status.map { " \($0)" } ?? ""), caused by \(f.cause) (\(f.confidence.rawValue) confidence, rule \(f.rule))\n"
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
        out += "\nCoverage (whole logs; events in this window):\n"
        var rows: [[String]] = [["LAYER", "FROM", "TO", "EVENTS", "IN WINDOW", "REJECTED"]]
        for c in coverage {
            rows.append([c.layer, c.firstMicros.map { display($0, zone) } ?? "-", c.lastMicros.map { display($0, zone) } ?? "-",
                         String(c.events), String(c.in_window), String(c.rejected)])
        }
        out += TextTable.render(rows, rightAligned: [3, 4, 5]).split(separator: "\n").map { "  " + $0 }.joined(separator: "\n") + "\n"
        if !notes.isEmpty {
            out += "\nNotes:\n"
            for n in notes { out += wrap("- " + Escape.terminal(n), indent: "  ", width: 100, hanging: "    ") + "\n" }
        }
        return out
    }

    func verdictLine(_ f: Finding, zone: ZoneSpec) -> String {
        let when = f.micros.map { TimeFormat.clock($0, zone: zone) } ?? "--:--:--"
        let who = [f.client_ip, f.method, f.path].compactMap { $0 }.map { Escape.terminal($0, limit: 80) }.joined(separator: " ")
        let times = f.count > 1 ? " ×\(f.count)" : ""
        let status = f.status.map(String.init) ?? "???"
        let sentence = f.explanation.range(of: ". ").map { String(f.explanation[..<$0.lowerBound]) } ?? f.explanation
        let reason = Escape.terminal(sentence, limit: 110)
        return "\(when)  \(status)\(times)  \(who.isEmpty ? "(no matching record)" : who)  → responder \(f.responder), cause \(f.cause) [\(f.confidence.rawValue)]: \(reason)"
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
