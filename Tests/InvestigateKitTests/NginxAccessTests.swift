import Foundation
import Testing
@testable import InvestigateKit

/// `nginx-access` without a `log_format`: combined, main, and the client/peer choice.
@Suite struct NginxAccessTests {
    let importer = NginxAccessImporter()

    func one(_ line: String) throws -> Event {
        let sink = try parse(importer, [line])
        #expect(sink.rejected.isEmpty, "\(sink.rejected.map(\.reason))")
        return try #require(sink.events.first)
    }

    @Test func clientIsTheRightmostPublicForwardedHop() throws {
        let e = try one(#"10.1.1.211 - alice [06/Feb/2025:14:32:46 +0900] "POST /app/login HTTP/1.1" 302 0 "https://example.com/app/" "curl/8.5.0" "198.51.100.23, 203.0.113.9""#)
        #expect(e.peerIP == "10.1.1.211")
        #expect(e.clientIP == "203.0.113.9")
        #expect(e.forwardedFor == "198.51.100.23, 203.0.113.9")
        // A private hop our own proxy appended after the client does not hide it.
        #expect(try one(#"10.1.1.211 - - [06/Feb/2025:14:32:46 +0900] "GET / HTTP/1.1" 200 1 "-" "ua" "203.0.113.7, 10.0.0.4""#).clientIP == "203.0.113.7")
        // All hops private: the rightmost is the best guess; no header: the peer.
        #expect(try one(#"10.1.1.211 - - [06/Feb/2025:14:32:46 +0900] "GET / HTTP/1.1" 200 1 "-" "ua" "10.0.0.1, 10.0.0.2""#).clientIP == "10.0.0.2")
        let none = try one(#"10.1.1.211 - - [06/Feb/2025:14:32:46 +0900] "GET / HTTP/1.1" 200 1 "-" "ua" "-""#)
        #expect(none.clientIP == "10.1.1.211" && none.forwardedFor == nil)
    }

    /// Filebeat's nginx test log puts address lists before the ident field.
    @Test func leadingAddressLists() throws {
        let quoted = try one(#""10.5.102.222, 199.96.1.1, 204.246.1.1" 10.2.1.185 - - [22/Jan/2016:13:18:29 +0000] "GET /assets/xxxx?q=100 HTTP/1.1" 200 25507 "-" "Amazon CloudFront""#)
        #expect(quoted.peerIP == "10.2.1.185" && quoted.clientIP == "204.246.1.1")
        #expect(quoted.forwardedFor == "10.5.102.222, 199.96.1.1, 204.246.1.1")
        #expect(quoted.path == "/assets/xxxx" && quoted.query == "q=100")
        let bare = try one(#"2a03:0000:10ff:f00f:0000:0000:0:8000, 10.225.192.17 10.2.2.121 - - [30/Dec/2016:06:47:09 +0000] "GET /test.html HTTP/1.1" 404 8571 "-" "Facebot""#)
        #expect(bare.peerIP == "10.2.2.121" && bare.clientIP == "2a03:0000:10ff:f00f:0000:0000:0:8000")
        let proxyAdd = try one(#"10.0.0.2, 10.0.0.1, 85.181.35.98 - - [07/Dec/2016:11:05:07 +0100] "GET /ocelot HTTP/1.1" 200 571 "-" "Firefox""#)
        #expect(proxyAdd.peerIP == "85.181.35.98" && proxyAdd.clientIP == "85.181.35.98")
        #expect(proxyAdd.extra["remote_user"] == nil)
        #expect(proxyAdd.time.map(TimeFormat.isoUTC) == "2016-12-07T10:05:07Z")
    }

    @Test func oddRequestLinesAreKeptWhole() throws {
        let empty = try one(#"127.0.0.1 - - [12/Apr/2018:09:48:40 +0200] "" 400 0 "-" "-""#)
        #expect(empty.status == 400 && empty.method == nil && empty.path == nil)
        let tls = try one(#"12.34.56.78 - - [20/Jan/2015:19:53:28 +0100] "\x03\x00\x00/*\xE0\x00\x00\x00\x00\x00Cookie: mstshash=Administr" 400 47 "-" "-" "-""#)
        #expect(tls.method == nil && tls.extra["request"]?.hasPrefix(#"\x03"#) == true)
    }

    @Test func commentLinesDoNotStopDetection() {
        let lines = [
            #"# failJSON: { "time": "2015-01-20T19:53:28", "match": true , "host": "12.34.56.78" }"#,
            #"12.34.56.78 - - [20/Jan/2015:19:53:28 +0100] "GET //pma/scripts/setup.php HTTP/1.1" 404 47 "-" "-" "-""#,
            #"# failJSON: { "time": "2015-01-20T19:53:28", "match": true , "host": "12.34.56.78" }"#,
            #"12.34.56.78 - - [20/Jan/2015:19:53:28 +0100] "GET //mysqladmin/scripts/setup.php HTTP/1.1" 404 47 "-" "-" "-""#,
        ]
        #expect(importer.recognize(lines, fileName: "nginx-botsearch") == 1)
        #expect(ImporterRegistry.standard.detect(lines, fileName: "nginx-botsearch").importer?.id == "nginx-access")
    }
}

/// A real file and what ingesting it must give.
struct CorpusExpectation: Sendable, CustomStringConvertible {
    var file: String
    var format: String
    var events: Int
    var rejected: Int
    var description: String { file }
}

/// The real nginx logs of ../shared/corpus through the whole pipeline (detection, gzip, store).
@Suite(.enabled(if: Corpus.available)) struct NginxCorpusTests {
    static let expectations = [
        CorpusExpectation(file: "lnav/logfile_access_log.0", format: "nginx-access", events: 3, rejected: 0),
        CorpusExpectation(file: "lnav/logfile_access_log.1", format: "nginx-access", events: 1, rejected: 0),
        // One line lacks the ident and user fields.
        CorpusExpectation(file: "lnav/logfile_bad_access_log.0", format: "nginx-access", events: 2, rejected: 1),
        CorpusExpectation(file: "lnav/logfile_shop_access_log.0", format: "nginx-access", events: 1000, rejected: 0),
        CorpusExpectation(file: "lnav/access_log.gz", format: "nginx-access", events: 2492, rejected: 0),
        // Line 8899 is cut off inside the user agent in the published file.
        CorpusExpectation(file: "elastic-examples/apache_logs", format: "nginx-access", events: 9999, rejected: 1),
        CorpusExpectation(file: "elastic-beats/test.log", format: "nginx-access", events: 7, rejected: 0),
        // 6 lines, 4 records: one FastCGI record spans 3 lines.
        CorpusExpectation(file: "elastic-beats/error.log", format: "nginx-error", events: 4, rejected: 0),
        // fail2ban's fixtures: every `# failJSON`/`# filterOptions` comment is rejected with its reason.
        // The file ends without a newline: a plain access log's unterminated last line may be caught
        // mid-write, so it is held back (with a note) until a later run finds it finished.
        CorpusExpectation(file: "fail2ban/nginx-bad-request", format: "nginx-access", events: 7, rejected: 8),
        // 15 comments; 8 access records and 6 error-log records (2 through journald) in one file.
        CorpusExpectation(file: "fail2ban/nginx-botsearch", format: "nginx-access", events: 14, rejected: 15),
        CorpusExpectation(file: "fail2ban/nginx-forbidden", format: "nginx-error", events: 2, rejected: 2),
        CorpusExpectation(file: "fail2ban/nginx-http-auth", format: "nginx-error", events: 18, rejected: 22),
        CorpusExpectation(file: "fail2ban/nginx-limit-req", format: "nginx-error", events: 9, rejected: 10),
    ]

    func ingest(_ relative: String, options: ImportOptions = ImportOptions()) throws -> (FileResult, TimelineStore) {
        let store = try TimelineStore()
        let summary = try Ingester(store: store, options: options).ingest(paths: [Corpus.path(relative)])
        return (try #require(summary.files.first), store)
    }

    /// A torn last line (the writer died mid-line, or the copy was cut) in logrotate's numbered
    /// copy is final: read as it is and rejected with its reason, not held back for a later run
    /// that will never come. The live file's is held back, with a note.
    @Test func aRotatedFilesTornLastLineIsRejectedNotHeldBack() throws {
        let dir = try TemporaryDirectory()
        let text = #"198.51.100.7 - - [06/Feb/2025:14:32:01 +0000] "GET / HTTP/1.1" 200 512 "-" "curl/8""# + "\n"
            + #"198.51.100.8 - - [06/Feb/2025:14:32:02 +0000] "GET /api/ite"#
        let rotated = try dir.write("nginx/access.log.1", text)
        let live = try dir.write("other/access.log", text.replacingOccurrences(of: "198.51.100.", with: "203.0.113."))
        let store = try TimelineStore()
        let summary = try Ingester(store: store, options: ImportOptions()).ingest(paths: [rotated, live])
        let r = try #require(summary.files.first { $0.path.hasSuffix(".1") })
        #expect(r.events == 1 && r.rejected == 1 && !r.notes.contains { $0.contains("held back") }, "\(r.notes)")
        let l = try #require(summary.files.first { $0.path.hasSuffix("other/access.log") })
        #expect(l.events == 1 && l.rejected == 0 && l.notes.contains { $0.contains("held back") })
    }

    @Test(arguments: expectations)
    func ingestsWithExpectedCounts(_ expected: CorpusExpectation) throws {
        try #require(Corpus.exists(expected.file))
        let (result, _) = try ingest(expected.file)
        #expect(result.status == .ingested, "\(result.skipped ?? "")")
        #expect(result.format == expected.format)
        #expect(result.events == expected.events)
        #expect(result.rejected == expected.rejected)
    }

    @Test func fastCGIRecordSpansThreeLines() throws {
        let lines = try String(contentsOfFile: Corpus.path("elastic-beats/error.log"), encoding: .utf8)
            .split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        let sink = try parse(NginxErrorImporter(), lines, options: ImportOptions(timeZone: .utc))
        #expect(sink.rejected.isEmpty)
        #expect(sink.events.map(\.line) == [1, 2, 3, 6])
        #expect(sink.events[2].lineEnd == 5)
        #expect(sink.events[2].message?.hasPrefix("FastCGI sent in stderr: \"PHP message: PHP Warning:") == true)
        #expect(sink.events[2].extra["connection"] == "180289")
        #expect(sink.events[0].clientIP == "127.0.0.1" && sink.events[0].path == "/favicon.ico")
        #expect(sink.events[0].extra["referer"] == "http://localhost:8080/")
    }

    @Test func failJSONCommentsAreRejectedWithAReason() throws {
        let text = try String(contentsOfFile: Corpus.path("fail2ban/nginx-limit-req"), encoding: .utf8)
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        let sink = try parse(NginxErrorImporter(), lines)
        #expect(sink.rejected.count == lines.filter { $0.hasPrefix("#") }.count)
        #expect(sink.rejected.allSatisfy { $0.reason.contains("comment") })
        #expect(sink.events.allSatisfy { $0.clientIP != nil && $0.message?.contains("by zone") == true })
    }
}

/// The access parser reads the common shape straight into columns and everything else through its
/// general reader: on any line, both must store exactly the same record (or the same rejection).
@Suite struct NginxFastPathTests {
    static func read(_ lines: [[UInt8]], commonShape: Bool) -> (events: [Event], rejected: [RejectedLine], fast: Int) {
        var parser = NginxAccessParser(directory: "", learnZone: nil)
        var sink = RecordSink()
        var fast = 0
        for (i, bytes) in lines.enumerated() {
            Line.with(bytes: bytes, number: i + 1) { line in
                if commonShape {
                    if line.isEmpty { return }
                    if parser.consumeCommonShape(line, into: &sink) { fast += 1 } else { parser.consumeAnyShape(line, into: &sink) }
                } else if !line.isEmpty {
                    parser.consumeAnyShape(line, into: &sink)
                }
            }
        }
        return (sink.events, sink.rejected, fast)
    }

    static let hostileLines: [[UInt8]] = {
        var lines = NginxAccessImporter().samples.flatMap(\.lines).map { Array($0.utf8) }
        lines += [
            #"203.0.113.5 - - [06/Feb/2025:14:32:45 +0900] "GET /a?b=1&c HTTP/1.1" 200 12 "-" "-""#,
            #"203.0.113.5 - - [06/Feb/2025:14:32:45 +0900] "GET /a? HTTP/1.1" 200 - "-" "-" "-""#,
            #"203.0.113.5 - - [06/Feb/2025:14:32:45 +0900] "GET /only-path" 200 1"#,
            #"203.0.113.5 - - [06/Feb/2025:14:32:45 +0900] "GET /two  spaces HTTP/1.1" 200 1 "-" "ua""#,
            #"203.0.113.5 - - [06/Feb/2025:14:32:45 +0900] "GET http://evil.example:8080/x?y HTTP/1.1" 200 1 "-" "ua""#,
            #"203.0.113.5 - - [06/Feb/2025:14:32:45 +0900] "\x16\x03\x01" 400 150 "-" "-""#,
            #"203.0.113.5 - user name [06/Feb/2025:14:32:45 +0900] "GET / HTTP/1.1" 200 1 "ref \"quoted\"" "ua\\x22""#,
            #"10.0.0.2 - - [06/Feb/2025:14:32:45 +0900] "POST /app/login HTTP/2.0" 302 0 "-" "curl" "198.51.100.2, 10.0.0.9""#,
            #"10.0.0.2 - - [06/Feb/2025:14:32:45 +0900] "GET / HTTP/1.1" 200 0 "-" "curl" "unknown, -""#,
            #"10.0.0.2 - - [06/Feb/2025:14:32:45 +0900] "GET / HTTP/1.1" 200  0 "-" "curl""#,
            #"10.0.0.2 - - [06/Feb/2025:14:32:45 +0900] "GET / HTTP/1.1" 20x 0 "-" "curl""#,
            #"10.0.0.2 - - [06/Feb/2025:14:32:45 +0900] "GET / HTTP/1.1" 200 abc "-" "curl""#,
            #"10.0.0.2 - - [06/Feb/2025:14:32:45] "GET / HTTP/1.1" 200 0 "-" "curl""#,
            #"10.0.0.2 - - [06/Feb/2025:14:32:45 +0900] "GET / HTTP/1.1 200 0 "-" "curl"#,
            #"10.0.0.2 - - [06/Feb/2025:14:32:45 +0900] "GET / HTTP/1.1" 200 0 "-" "curl" "1.2.3.4" rt=0.5 extra"#,
            #""198.51.100.7" 10.0.0.2 - - [06/Feb/2025:14:32:45 +0900] "GET / HTTP/1.1" 200 0 "-" "curl""#,
            #"no brackets at all"#,
            // Shapes the common-shape reader must leave to the general one.
            #"shop.example.com 203.0.113.7 - - [06/Feb/2025:14:32:45 +0900] "GET / HTTP/1.1" 200 5 "-" "ua""#,
            #"192.0.2.80 203.0.113.7 - - [06/Feb/2025:14:32:45 +0900] "GET / HTTP/1.1" 200 5 "-" "ua""#,
            #"unix: - - [06/Feb/2025:14:32:45 +0900] "GET / HTTP/1.1" 200 5 "-" "ua""#,
            #"X.X.X.X - - [06/Feb/2025:14:32:45 +0900] "GET / HTTP/1.1" 200 5 "-" "ua" "203.0.113.7""#,
            #"203.0.113.7 identd - [06/Feb/2025:14:32:45 +0900] "GET / HTTP/1.1" 200 5 "-" "ua""#,
            #"203.0.113.7 - - [06/Feb/2025:14:32:45 +0900] "GET / HTTP/1.1" 200 5 "-" "ua" "evil, 10.0.0.1""#,
            #"{"time_local":"06/Feb/2025:14:32:45 +0900","remote_addr":"10.0.0.2","request":"GET / HTTP/1.1","status":"200"}"#,
        ].map { Array($0.utf8) }
        // Invalid UTF-8 and control bytes in every free-text field.
        let bad: [UInt8] = [0xC3, 0x28, 0xFF, 0x00, 0x1B, 0x0D, 0x09]
        let head = Array(#"203.0.113.5 - - [06/Feb/2025:14:32:45 +0900] "GET /p"#.utf8)
        lines.append(head + bad + Array("?q=".utf8) + bad + Array(#" HTTP/1.1" 200 5 ""#.utf8) + bad + Array(#"" ""#.utf8) + bad + Array("\"".utf8))
        lines.append(Array(#"203.0.113.5 - "#.utf8) + bad + Array(#" [06/Feb/2025:14:32:45 +0900] "GET / HTTP/1.1" 200 5 "-" "-""#.utf8))
        return lines
    }()

    @Test func bothReadersStoreTheSameRecordForEveryLine() {
        let fast = Self.read(Self.hostileLines, commonShape: true)
        let general = Self.read(Self.hostileLines, commonShape: false)
        #expect(fast.events == general.events)
        #expect(fast.rejected == general.rejected)
        // The common shape really is the common case (the samples and most lines above).
        #expect(fast.fast >= 10)
    }

    @Test(.enabled(if: Corpus.available)) func bothReadersAgreeOnTheRealCorpus() throws {
        for file in ["lnav/logfile_shop_access_log.0", "elastic-examples/apache_logs", "fail2ban/nginx-botsearch", "elastic-beats/test.log"]
        where Corpus.exists(file) {
            let data = try Data(contentsOf: URL(fileURLWithPath: Corpus.path(file)))
            let lines = data.split(separator: 0x0A, omittingEmptySubsequences: false).map { Array($0) }
            let fast = Self.read(lines, commonShape: true)
            let general = Self.read(lines, commonShape: false)
            #expect(fast.events == general.events, "\(file)")
            #expect(fast.rejected == general.rejected, "\(file)")
        }
    }
}
