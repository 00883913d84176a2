import Foundation
import Ink
import Testing
@testable import InvestigateKit

/// The committed reports in Reports/ are the fixtures' answers; a stale one fails here.
/// Regenerate them with `RECORD_REPORTS=1 swift test --filter ReportGoldenTests` (or scripts/regenerate-reports.sh).
@Suite(.serialized) struct ReportGoldenTests {
    struct Case: Sendable, CustomStringConvertible {
        var fixture: String
        var at: String
        var tz: String
        var status: String?
        var ip: String?
        var description: String { fixture }

        /// The command that writes the same report from the repository root.
        var commandLine: String {
            var args = ["investigate", "report", "--at", "'\(at)'", "--tz", tz]
            if let status { args += ["--status", status] }
            if let ip { args += ["--ip", ip] }
            args += ["--output", "Reports/\(fixture).md", "Fixtures/incidents/\(fixture)"]
            return args.joined(separator: " ")
        }
    }

    static let cases = [
        Case(fixture: "waf-block-2025-02-06", at: "2025-02-06 14:32", tz: "Asia/Tokyo", status: "403"),
        Case(fixture: "waf-block-2025-02-06-no-edge-logs", at: "2025-02-06 14:32", tz: "Asia/Tokyo", status: "403", ip: "203.0.113.45"),
        Case(fixture: "apigw-bot-scan-2026-01-22", at: "2026-01-22 03:55", tz: "UTC"),
    ]

    /// The generation time printed in committed reports (fixed so they are byte-identical).
    static let generatedAt = CivilTime.micros(year: 2026, month: 1, day: 1, hour: 0, minute: 0, second: 0)

    static func render(_ c: Case) throws -> String {
        let store = try FixtureTimelines.store(c.fixture)
        let zone = try #require(ZoneSpec(c.tz))
        let at = try #require(UserTime.parse(c.at, zone: zone))
        let q = DiagnosisQuery(at: at, zone: zone, status: c.status.flatMap(StatusFilter.init), clientIP: c.ip)
        let diagnosis = try Diagnoser(store: store).diagnose(q)
        let options = ReportOptions(generatedAt: generatedAt, commandLine: c.commandLine,
                                    pathBase: Corpus.repositoryRoot.path, databaseLabel: "investigate.db")
        return try ReportBuilder(store: store).build(diagnosis, query: q, options: options)
    }

    @Test(arguments: cases) func committedReportIsCurrent(_ c: Case) throws {
        _ = try FixtureTimelines.store(c.fixture)
        let started = Date()
        let text = try Self.render(c)
        print("report \(c.fixture): \(text.utf8.count) bytes, diagnosis and report in \(String(format: "%.3f", Date().timeIntervalSince(started))) s")
        let file = Corpus.repositoryRoot.appendingPathComponent("Reports/\(c.fixture).md")
        if ProcessInfo.processInfo.environment["RECORD_REPORTS"] == "1" {
            try FileManager.default.createDirectory(at: file.deletingLastPathComponent(), withIntermediateDirectories: true)
            try Data(text.utf8).write(to: file)
            return
        }
        let committed = try? Data(contentsOf: file)
        #expect(committed == Data(text.utf8),
                "Reports/\(c.fixture).md is stale or missing: regenerate with RECORD_REPORTS=1 swift test --filter ReportGoldenTests")
    }

    @Test func sameInputsGiveByteIdenticalReports() throws {
        let c = Self.cases[0]
        #expect(try Self.render(c) == Self.render(c))
    }

    @Test func fixtureReportsSayWhoAnswered() throws {
        let waf = try Self.render(Self.cases[0])
        #expect(waf.contains("- **Who answered:** waf sent the 403 to 203.0.113.45"))
        #expect(waf.contains("```mermaid\nsequenceDiagram"))
        #expect(waf.contains("xychart-beta"))
        #expect(waf.contains("Generated 2026-01-01T00:00:00Z by investigate \(InvestigateKit.version)."))
        let noEdge = try Self.render(Self.cases[1])
        #expect(noEdge.contains("- **Who answered:** most likely upstream"))
        #expect(noEdge.contains("**no logs given**"))
        let scan = try Self.render(Self.cases[2])
        #expect(scan.contains("| scanner | 20.171.207.31 |"))
    }
}

/// Hostile log text must render as inert text: in tables, prose, code blocks and mermaid diagrams.
@Suite struct ReportEscapingTests {
    static let hostilePath = "/x|y`z``<script>alert(1)</script>[c](http://e.vil/p)%%-->;#9;end\"q\\"
    static let hostileUA = "Mozilla\u{1b}[31mRED\u{1b}]0;title\u{07} | <img src=x onerror=alert(1)> ``` [k](javascript:alert(1)) www.evil.com a@b.cc $x^2$ \u{202e}gnp.exe\u{85}"
    static let hostileIP = "198.51.100.7|<b>x</b>"

    /// A small correlated timeline: a blocked-looking nginx 403, an app 403 with a multi-line record,
    /// and a scanning client, all carrying hostile text.
    static func hostileStore() throws -> TimelineStore {
        let store = try TimelineStore()
        var nginx: [Event] = []
        var e = Make.nginx(5, rt: 0.01, ip: hostileIP, path: hostilePath, status: 403, line: 1)
        e.userAgent = hostileUA
        e.raw = Array("10.1.1.210 - - [06/Feb/2025:14:32:05 +0900] \"GET \(hostilePath) HTTP/1.1\" 403 12 \"-\" \"\(hostileUA)\"\n# heading | cell\n- list\n1. item\n````\n> quote".utf8)
        nginx.append(e)
        for i in 0..<12 {
            var s = Make.nginx(10 + Double(i), rt: 0.001, ip: hostileIP, path: "/p\(i)|`<i>`[x](y)", status: 404, line: 2 + i)
            s.raw = Array("scan \(i) | `<i>` [x](http://y) \u{1b}[2J".utf8)
            nginx.append(s)
        }
        try insert(nginx, into: store, path: "/logs/nginx|access`<b>`.log")
        var app = Make.appResponse(4.99, path: hostilePath, status: 403, line: 7)
        app.raw = Array("Traceback | (most recent call last):\n  File \"<script>\", line 1\n```\nValueError: \u{1b}[31m%%-->".utf8)
        app.lineEnd = 10
        try insert([app], into: store, path: "/logs/app.log")
        _ = try Correlator(store: store).run()
        return store
    }

    static func report() throws -> String {
        let store = try hostileStore()
        let q = DiagnosisQuery(at: Make.s(10), zone: ZoneSpec("Asia/Tokyo")!)
        let d = try Diagnoser(store: store).diagnose(q)
        #expect(!d.findings.isEmpty)
        let options = ReportOptions(generatedAt: 0, commandLine: "investigate report --path '\(hostilePath)' \u{1b}[2J ```",
                                    pathBase: "/logs", databaseLabel: "db|`x`<b>.db")
        return try ReportBuilder(store: store).build(d, query: q, options: options)
    }

    /// The report split into prose lines and fenced blocks (with their info string).
    static func split(_ md: String) -> (prose: [String], blocks: [(info: String, lines: [String])]) {
        var prose: [String] = []
        var blocks: [(String, [String])] = []
        var fence: String?
        var current: [String] = []
        var info = ""
        for line in md.split(separator: "\n", omittingEmptySubsequences: false).map(String.init) {
            if let f = fence {
                if line == f { blocks.append((info, current)); fence = nil; current = [] } else { current.append(line) }
            } else if line.hasPrefix("```") {
                let ticks = String(line.prefix { $0 == "`" })
                fence = ticks
                info = String(line.dropFirst(ticks.count))
            } else {
                prose.append(line)
            }
        }
        #expect(fence == nil, "a fenced block is never closed")
        return (prose, blocks)
    }

    /// Pipes that split cells: those not escaped by an odd number of backslashes.
    static func cellSeparators(_ line: String) -> Int {
        var count = 0, backslashes = 0
        for ch in line {
            if ch == "\\" { backslashes += 1; continue }
            if ch == "|" && backslashes % 2 == 0 { count += 1 }
            backslashes = 0
        }
        return count
    }

    @Test func hostileTextIsInertInTheMarkdown() throws {
        let md = try Self.report()
        // To look at it: REPORT_DUMP=/tmp/hostile.md swift test --filter ReportEscapingTests
        if let dump = ProcessInfo.processInfo.environment["REPORT_DUMP"] { try md.write(toFile: dump, atomically: true, encoding: .utf8) }
        // No control character but newline, nor a bidi override, anywhere in the file.
        for s in md.unicodeScalars {
            #expect(s == "\n" || s == "\t" || (s.value >= 0x20 && s.value != 0x7F && !(0x80...0x9F).contains(s.value)), "control U+\(String(s.value, radix: 16))")
            #expect(!Escape.isBidiControl(s.value))
        }
        let (prose, blocks) = Self.split(md)
        // Tables: every row has exactly the header's number of cell separators.
        var header: Int?
        for line in prose {
            guard line.hasPrefix("|") else { header = nil; continue }
            let n = Self.cellSeparators(line)
            if let h = header { #expect(n == h, "row splits differently from its header: \(line)") } else { header = n }
        }
        for line in prose {
            #expect(!line.contains("<script") && !line.contains("<img") && !line.contains("<b>") && !line.contains("<i>"), "raw HTML: \(line)")
            #expect(!line.contains("://") && !line.lowercased().contains("www.evil"), "autolink: \(line)")
            #expect(line.range(of: #"(?<!\\)\[[^\]]*(?<!\\)\]\("#, options: .regularExpression) == nil, "link syntax: \(line)")
            #expect(!line.hasPrefix("# heading") && !line.hasPrefix("- list") && !line.hasPrefix("1. item"))
            #expect(!line.contains("$x"), "math: \(line)")
        }
        // The hostile lines are quoted whole inside their blocks, their backtick runs unable to close them.
        let text = blocks.filter { $0.info == "text" }.flatMap(\.lines)
        #expect(text.contains { $0.contains("<script>alert(1)</script>") && $0.contains("\\x1b[31mRED") })
        #expect(text.contains("````"))
        #expect(text.contains("```"))
        #expect(blocks.contains { $0.info == "sh" && $0.lines.first?.contains("\\x1b[2J ```") == true })
        // Mermaid: labels carry no statement separator, comment, quote, arrow, entity start or backtick.
        for block in blocks where block.info == "mermaid" && block.lines.first == "sequenceDiagram" {
            for line in block.lines.dropFirst() {
                let label = line.range(of: ": ").map { String(line[$0.upperBound...]) } ?? ""
                let stripped = label.replacingOccurrences(of: #"#[0-9]+;"#, with: "", options: .regularExpression)
                for bad in [";", "%", "\"", "`", "#", "<", ">", "-->", "[", "{", "\\"] {
                    #expect(!stripped.contains(bad), "mermaid label carries \(bad): \(line)")
                }
            }
        }
        #expect(md.contains("#96;#96;"), "the backticks of the path are shown as mermaid entities")
    }

    @Test func inkRendersTablesIntactAndNoTagLeaks() throws {
        let md = try Self.report()
        let html = MarkdownParser().html(from: md)
        #expect(!html.contains("<script") && !html.contains("<img") && !html.contains("<b>") && !html.contains("<i>"))
        #expect(!html.contains("<a "), "no link may come from log text")
        #expect(!html.contains("<h1>heading") && !html.contains("<li>list") && !html.contains("<blockquote>"))
        let tables = html.components(separatedBy: "<table>").dropFirst()
        #expect(tables.count >= 5)
        for t in tables {
            let body = t.components(separatedBy: "</table>").first ?? ""
            let rows = body.components(separatedBy: "<tr>").dropFirst()
            let widths = rows.map { $0.components(separatedBy: "<td").count - 1 + $0.components(separatedBy: "<th").count - 1 }
            #expect(Set(widths).count == 1, "table rows of different widths: \(widths)")
        }
        // Every fenced block survived as one code block: none was closed early by a backtick run.
        let (_, blocks) = Self.split(md)
        #expect(html.components(separatedBy: "<pre>").count - 1 == blocks.count)
        #expect(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"))
    }

    @Test func escapingPrimitives() {
        #expect(Markdown.text("a|b") == "a\\|b")
        #expect(Markdown.text("<b>&") == "&lt;b&gt;&amp;")
        #expect(Markdown.text("[x](y)") == "\\[x\\](y)")
        #expect(Markdown.text("http://x") == "http&#58;//x")
        #expect(Markdown.text("line\none") == "line\\\\none")
        #expect(Markdown.text("\u{1b}[1m") == "\\\\x1b\\[1m")
        #expect(Markdown.text("# h", lineStart: true) == "\\# h")
        #expect(Markdown.text("1. x", lineStart: true) == "1\\. x")
        #expect(Markdown.text("203.0.113.45", lineStart: true) == "203.0.113.45")
        #expect(Markdown.text("# h") == "# h")
        #expect(Markdown.codeSpan("a`b") == "``a`b``")
        #expect(Markdown.codeSpan("`x") == "`` `x ``")
        #expect(Markdown.codeBlock("a\n```\nb").hasPrefix("````text\n"))
        #expect(Mermaid.label("a;b%%c-->d\"e#f`g") == "a#59;b#37;#37;c#45;#45;#62;d#34;e#35;f#96;g")
        #expect(Mermaid.label("x\ny") == "x#92;ny")
        #expect(Mermaid.label("") == "#160;")
    }
}

/// docs/diagnosis.md is generated from the rules; a stale copy fails here.
@Suite struct DiagnosisDocTests {
    @Test func committedRuleReferenceIsCurrent() throws {
        let committed = try String(contentsOf: Corpus.repositoryRoot.appendingPathComponent("docs/diagnosis.md"), encoding: .utf8)
        #expect(committed == RuleCatalog.markdown(), "docs/diagnosis.md is stale: swift run investigate rules --markdown > docs/diagnosis.md")
        for rule in DiagnosisRules.standard { #expect(committed.contains("`\(rule.id)`")) }
    }
}

@Suite struct ReportDetectionTests {
    static func request(_ second: Int64, ip: String, path: String, status: Int) -> RequestSample {
        RequestSample(time: Make.base + second * 1_000_000, layer: .nginx, clientIP: ip, method: "GET", path: path, status: status, userAgent: nil)
    }

    @Test func scannerFloodAndSpikeFireOnTheirThresholdsOnly() {
        var requests = (0..<12).map { Self.request(Int64($0), ip: "192.0.2.1", path: "/p\($0 % 6)", status: 404) }
        requests += (0..<9).map { Self.request(Int64($0), ip: "192.0.2.2", path: "/p\($0)", status: 404) }   // 9 errors: not a scanner
        requests += (0..<61).map { Self.request(70 + Int64($0) / 2, ip: "192.0.2.3", path: "/", status: 200) } // 61 in one minute
        let input = DetectionInput(from: Make.base, to: Make.base + 180_000_000, requests: requests)
        let found = SimpleDetectors.standard.flatMap { $0.detect(input) }
        #expect(found.filter { $0.kind == "scanner" }.map(\.subject) == ["192.0.2.1"])
        #expect(found.filter { $0.kind == "flood" }.map(\.subject) == ["192.0.2.3"])
        // Minute 0 holds 21 errors of 21 responses; minute 1 holds 61 successes.
        let spikes = found.filter { $0.kind == "spike" }
        #expect(spikes.count == 1 && spikes.first?.first == floorMinute(Make.base))
    }

    /// GRDB's `Row` reads TEXT up to its first NUL byte; log text may hold one. What the report's
    /// detectors group by and the chain summaries show must be the whole value, not a prefix
    /// that merges distinct paths.
    @Test func textHoldingANULByteIsReadWhole() throws {
        let store = try TimelineStore()
        var nginx: [Event] = []
        var app: [Event] = []
        for i in 0..<3 {
            let path = "/a\u{0}b\(i)"
            var e = Make.nginx(5 + Double(i), rt: 0.01, ip: "198.51.100.9\u{0}x", path: path, status: 404, line: 1 + i)
            e.userAgent = "curl\u{0}evil"
            nginx.append(e)
            app.append(Make.appResponse(4.995 + Double(i), path: path, status: 404, line: 1 + i))
        }
        try insert(nginx, into: store, path: "/logs/access.log")
        try insert(app, into: store, path: "/logs/app.log")
        _ = try Correlator(store: store).run()
        let q = DiagnosisQuery(at: Make.s(6))
        let d = try Diagnoser(store: store).diagnose(q)
        let data = try store.read { db in
            try ReportData.load(db, diagnosis: d, query: q, chartFrom: Make.base, chartTo: Make.base + 600_000_000)
        }
        #expect(data.requests.compactMap(\.path).sorted() == ["/a\u{0}b0", "/a\u{0}b1", "/a\u{0}b2"])
        #expect(data.requests.allSatisfy { $0.clientIP == "198.51.100.9\u{0}x" && $0.userAgent == "curl\u{0}evil" })
        let chainPaths = try store.read { db in
            try Data.fetchAll(db, sql: "SELECT CAST(path AS BLOB) FROM chain WHERE path IS NOT NULL ORDER BY path")
        }.map { String(decoding: $0, as: UTF8.self) }
        #expect(chainPaths == ["/a\u{0}b0", "/a\u{0}b1", "/a\u{0}b2"])
    }

    @Test func anEmptyTimelineStillGivesEverySection() throws {
        let store = try TimelineStore()
        let q = DiagnosisQuery(at: Make.base)
        let d = try Diagnoser(store: store).diagnose(q)
        let md = try ReportBuilder(store: store).build(d, query: q, options: ReportOptions(generatedAt: 0, commandLine: "investigate report"))
        for section in ["## Summary", "## Question and scope", "## Coverage", "## How far each request got", "## Responses per minute",
                        "## Timeline of the correlated records", "## Evidence", "## Missing logs", "## Detections in the window",
                        "## Next steps", "## Appendix"] {
            #expect(md.contains(section + (section.hasSuffix("got") ? ", and who answered" : "")), "missing \(section)")
        }
        #expect(md.contains("No input files."))
    }
}
