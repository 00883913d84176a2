import Foundation
import Testing
@testable import InvestigateKit

/// `nginx-error`: the error log, its context fields, multi-line records and its zone.
@Suite struct NginxErrorTests {
    let importer = NginxErrorImporter()

    func one(_ line: String, options: ImportOptions = ImportOptions()) throws -> Event {
        let sink = try parse(importer, [line], path: "/var/log/nginx/error.log", options: options)
        #expect(sink.rejected.isEmpty, "\(sink.rejected.map(\.reason))")
        return try #require(sink.events.first)
    }

    @Test func connectionRefused502() throws {
        let e = try one(#"2012/10/11 07:57:41 [error] 1372#0: *649643 connect() to unix:/tmp/php.socket failed (111: Connection refused) while connecting to upstream, client: 192.0.2.44, server: domain.com, request: "GET / HTTP/1.1", upstream: "fastcgi://unix:/tmp/php.socket:", host: "192.0.2.80:80""#)
        #expect(e.layer == .nginx && e.kind == .log)
        #expect(e.time.map(TimeFormat.isoUTC) == "2012-10-11T07:57:41Z")
        #expect(e.level == "error" && e.pid == 1372 && e.extra["tid"] == "0")
        #expect(e.extra["connection"] == "649643")
        #expect(e.message == "connect() to unix:/tmp/php.socket failed (111: Connection refused) while connecting to upstream")
        #expect(e.error == e.message)
        #expect(e.clientIP == "192.0.2.44" && e.extra["server"] == "domain.com")
        #expect(e.method == "GET" && e.path == "/" && e.query == nil)
        #expect(e.extra["upstream"] == "fastcgi://unix:/tmp/php.socket:")
        #expect(e.host == "192.0.2.80:80")
        #expect(e.extra["errno"] == "111" && e.extra["action"] == "connecting to upstream")
    }

    @Test func upstreamPrematurelyClosed() throws {
        let e = try one(#"2016/03/15 02:21:37 [error] 28937#0: *50 upstream prematurely closed connection while reading response header from upstream, client: 10.23.3.124, server: go-gru.gruapi.xcal.tv, request: "GET /favicon.ico HTTP/1.1", upstream: "http://172.17.0.3:5000/favicon.ico", host: "gruapi.xcal.tv", referrer: "http://gruapi.xcal.tv/""#)
        #expect(e.message == "upstream prematurely closed connection while reading response header from upstream")
        #expect(e.clientIP == "10.23.3.124" && e.path == "/favicon.ico")
        #expect(e.extra["upstream"] == "http://172.17.0.3:5000/favicon.ico")
        #expect(e.host == "gruapi.xcal.tv" && e.extra["referer"] == "http://gruapi.xcal.tv/")
    }

    @Test func upstreamTimedOut() throws {
        let e = try one(#"2014/07/18 13:48:30 [error] 3068#0: *1 upstream timed out (110: Connection timed out) while reading response header from upstream, client: A.B.C.D, server: _, request: "GET /ui/dashboard/ HTTP/1.1", upstream: "uwsgi://unix:/tmp/uwsgi.sock:", host: "127.0.0.1:X""#)
        #expect(e.message == "upstream timed out (110: Connection timed out) while reading response header from upstream")
        #expect(e.extra["server"] == "_" && e.extra["connection"] == "1")
        #expect(e.extra["errno"] == "110" && e.extra["action"] == "reading response header from upstream")
        #expect(e.path == "/ui/dashboard/" && e.extra["upstream"] == "uwsgi://unix:/tmp/uwsgi.sock:")
    }

    @Test func tooLargeBodyWithEmptyServer() throws {
        let e = try one(#"2018/11/23 19:23:19 [error] 6#6: *80090 client intended to send too large body: 4409206 bytes, client: 54.182.244.67, server: , request: "POST /api/compiler/g82/compile HTTP/1.1", host: "godbolt.org""#)
        #expect(e.message == "client intended to send too large body: 4409206 bytes")
        #expect(e.clientIP == "54.182.244.67")
        #expect(e.extra["errno"] == nil && e.extra["action"] == nil)
        #expect(e.extra["server"] == nil)
        #expect(e.method == "POST" && e.path == "/api/compiler/g82/compile" && e.host == "godbolt.org")
    }

    @Test func limitReqAndAccessForbidden() throws {
        let limited = try one(#"2015/10/29 19:24:05 [error] 12684#12684: *22174 limiting requests, excess: 1.495 by zone "one", client: 192.0.2.0, server: example.com, request: "GET /index.php HTTP/1.1", host: "example.com", referrer: "https://example.com""#)
        #expect(limited.message == #"limiting requests, excess: 1.495 by zone "one""#)
        #expect(limited.clientIP == "192.0.2.0" && limited.extra["referer"] == "https://example.com")
        let delayed = try one(#"2025/08/01 04:24:17 [warn] 4772#4772: *68 delaying request, excess: 0.841, by zone "req_limit", client: 206.189.215.97, server: myserver.net, request: "GET /ab2h HTTP/1.1", host: "22.18.134.49""#)
        #expect(delayed.level == "warn" && delayed.message == #"delaying request, excess: 0.841, by zone "req_limit""#)
        let forbidden = try one(#"2018/09/14 19:03:05 [error] 2035#2035: *9134 access forbidden by rule, client: 12.34.56.78, server: www.example.net, request: "GET /wp-content/x/upload_handler.php HTTP/1.1", host: "www.example.net", referrer: "http://example.net/foo.php""#)
        #expect(forbidden.message == "access forbidden by rule" && forbidden.clientIP == "12.34.56.78")
        #expect(forbidden.path == "/wp-content/x/upload_handler.php")
    }

    /// The request context nginx appends is the last `, client: `: text before it (a user name
    /// crafted to look like context, fail2ban's injection test) stays in the message.
    @Test func injectedContextInTheMessage() throws {
        let e = try one(#"2014/04/03 22:20:40 [error] 30708#0: *3 user "test": password mismatch, client: 127.0.0.1, server: test, request: "GET / HTTP/1.1", host: "localhost:8443"": was not found in "/etc/nginx/.htpasswd", client: 192.0.2.2, server: , request: "GET / HTTP/1.1", host: "localhost:8443""#)
        #expect(e.clientIP == "192.0.2.2")
        #expect(e.message?.hasPrefix(#"user "test": password mismatch, client: 127.0.0.1"#) == true)
    }

    @Test func messagesWithoutRequestContext() throws {
        let e = try one("2016/10/25 14:49:34 [notice] 54053#0: signal process started")
        #expect(e.level == "notice" && e.pid == 54053 && e.extra["connection"] == nil)
        #expect(e.message == "signal process started" && e.clientIP == nil)
        let emerg = try one(#"2024/05/01 10:00:00 [emerg] 1#1: bind() to 0.0.0.0:80 failed (98: Address already in use)"#)
        #expect(emerg.level == "emerg" && emerg.message == "bind() to 0.0.0.0:80 failed (98: Address already in use)")
    }

    @Test func multiLineRecordKeepsEveryLine() throws {
        let lines = [
            #"2019/10/30 23:26:34 [error] 205860#205860: *180289 FastCGI sent in stderr: "PHP message: PHP Warning:  one"#,
            "PHP message: PHP Warning:  two",
            "",
            #"PHP message: PHP Warning:  three" while reading response header from upstream, client: 192.0.2.9, server: example.com, request: "GET /x?y=1 HTTP/1.1", upstream: "fastcgi://unix:/run/php.sock:", host: "example.com""#,
            "stray text after a closed record",
            "# a comment",
            "2019/10/30 23:26:35 [error] 205860#205860: *180290 open() \"/srv/a\" failed (2: No such file or directory), client: 192.0.2.9, server: example.com, request: \"GET /a HTTP/1.1\", host: \"example.com\"",
        ]
        let sink = try parse(importer, lines)
        #expect(sink.events.count == 2)
        let first = try #require(sink.events.first)
        #expect(first.line == 1 && first.lineEnd == 4)
        #expect(first.raw == Array(lines[0...3].joined(separator: "\n").utf8))
        #expect(first.clientIP == "192.0.2.9" && first.path == "/x" && first.query == "y=1")
        #expect(first.message?.hasPrefix(#"FastCGI sent in stderr: "PHP message: PHP Warning:  one"#) == true)
        #expect(first.message?.hasSuffix(#"three" while reading response header from upstream"#) == true)
        #expect(sink.events[1].line == 7)
        #expect(sink.rejected.map(\.line) == [5, 6])
        #expect(sink.rejected[1].reason.contains("comment"))
    }

    @Test func syslogRelayedLinesWithoutTheirSyslogStamp() throws {
        let sink = try parse(importer, [
            #"host nginx[983478]: 2023/12/09 21:35:20 [error] 983478#983478: *3 user "fakeusername" was not found in "/etc/nginx/.htpasswd", client: 192.0.2.1, server: , request: "GET / HTTP/1.1", host: "example.com""#,
            #"daemon.err nginx[8751]: 2024/04/08 22:17:52 [error] 8759#0: *9 client intended to send too large body: 191975675 bytes"#,
        ])
        #expect(sink.rejected.isEmpty)
        #expect(sink.events.count == 2)
        #expect(sink.events[0].hostname == "host" && sink.events[0].clientIP == "192.0.2.1")
        #expect(sink.events[0].time.map(TimeFormat.isoUTC) == "2023-12-09T21:35:20Z")
        #expect(sink.events[1].message == "client intended to send too large body: 191975675 bytes")
        // A full syslog line is left to the syslog importer, which keeps its own stamp too.
        #expect(importer.recognize([#"Apr  8 22:17:52 box nginx[1]: 2024/04/08 22:17:52 [error] 8759#0: *9 x"#], fileName: "syslog") == 0)
    }

    @Test func badRecordsAreRejectedNotDropped() throws {
        let sink = try parse(importer, [
            "2019/13/40 99:00:00 [error] 1#1: impossible date",
            "2019/10/30 23:26:34 no level here",
            "2019/10/30 23:26:34 [ERROR!] 1#1: odd level",
            "\u{0}\u{0}\u{0}",
            String(repeating: "\"", count: 3),
        ])
        #expect(sink.events.isEmpty)
        #expect(sink.rejected.count == 5)
    }

    /// Random bytes built from the format's own punctuation, invalid UTF-8 and NULs included: every
    /// line ends up in an event or a rejection, and nothing traps.
    @Test func hostileBytesNeverCrash() throws {
        let alphabet: [UInt8] = Array("2019/10/30 23:26:34 [error] 1#1: *9 \", client: server: request: host:\n".utf8) + [0, 0xFF, 0xC3, 0x80]
        var seed: UInt64 = 0x9E3779B97F4A7C15
        var parser = NginxErrorParser(zone: .utc, zoneNote: nil)
        var sink = RecordSink()
        var nonBlank = 0
        for n in 1...3000 {
            var bytes: [UInt8] = n % 3 == 0 ? Array("2019/10/30 23:26:34 ".utf8) : []
            for _ in 0..<(n % 97) {
                seed = seed &* 6364136223846793005 &+ 1442695040888963407
                let b = alphabet[Int(seed >> 33) % alphabet.count]
                if b != 0x0A { bytes.append(b) }
            }
            if !bytes.allSatisfy({ $0 == 0x20 }) { nonBlank += 1 }
            Line.with(bytes: bytes, number: n) { parser.consume($0, into: &sink) }
        }
        parser.finish(into: &sink)
        // A rejected record keeps all its lines in `raw`, joined by "\n" (the input has no other "\n").
        let inEvents = sink.events.reduce(0) { $0 + $1.lineEnd - $1.line + 1 }
        let inRejects = sink.rejected.reduce(0) { $0 + $1.raw.filter { $0 == 0x0A }.count + 1 }
        #expect(inEvents + inRejects >= nonBlank)
        #expect(inEvents + inRejects <= 3000)
    }

    @Test func runawayQuoteStopsAbsorbingLines() throws {
        var lines = [#"2019/10/30 23:26:34 [error] 1#1: *1 FastCGI sent in stderr: "never closed"#]
        lines += Array(repeating: "more", count: NginxErrorParser.maxRecordLines + 5)
        let sink = try parse(importer, lines)
        #expect(sink.events.count == 1)
        #expect(sink.events[0].lineEnd == NginxErrorParser.maxRecordLines)
        #expect(sink.events.count + sink.rejected.count + NginxErrorParser.maxRecordLines - 1 == lines.count)
    }

    // MARK: - Zone

    static let accessLine = #"10.1.1.210 - - [06/Feb/2025:14:32:45 +0900] "GET /api/ping HTTP/1.1" 502 31 "-" "curl/8.5.0" "203.0.113.7""#
    static let errorLine = #"2025/02/06 14:32:45 [error] 26#26: *504921 connect() failed (111: Connection refused) while connecting to upstream, client: 10.1.1.210, server: api, request: "GET /api/ping HTTP/1.1", upstream: "http://127.0.0.1:8000/api/ping", host: "api.example.com""#

    @Test func zoneComesFromTheAccessLogBesideIt() throws {
        let dir = try TemporaryDirectory()
        // Named so the error log sorts first: ingest order, not the walk, must put the access log first.
        try dir.write("a-error.log", Self.errorLine + "\n")
        try dir.write("b-access.log", Self.accessLine + "\n")
        let store = try TimelineStore()
        let summary = try Ingester(store: store).ingest(paths: [dir.path])
        let error = try #require(summary.files.first { $0.path.hasSuffix("a-error.log") })
        #expect(error.format == "nginx-error" && error.events == 1 && error.rejected == 0)
        #expect(error.first.map(TimeFormat.isoUTC) == "2025-02-06T05:32:45Z")
        #expect(error.notes.contains { $0.contains("+0900") && $0.contains("b-access.log") })
        let access = try #require(summary.files.first { $0.path.hasSuffix("b-access.log") })
        #expect(access.first == error.first)
    }

    @Test func zoneFromTzWinsOverTheAccessLog() throws {
        let dir = try TemporaryDirectory()
        try dir.write("error.log", Self.errorLine + "\n")
        try dir.write("access.log", Self.accessLine + "\n")
        let store = try TimelineStore()
        let summary = try Ingester(store: store, options: ImportOptions(timeZone: ZoneSpec("Europe/Paris"))).ingest(paths: [dir.path])
        let error = try #require(summary.files.first { $0.path.hasSuffix("error.log") })
        #expect(error.first.map(TimeFormat.isoUTC) == "2025-02-06T13:32:45Z")
        #expect(error.notes.contains { $0.contains("Europe/Paris") && $0.contains("--tz") })
    }

    @Test func zoneIsUTCAndSaidSoWhenNothingIsKnown() throws {
        let sink = try parse(importer, [Self.errorLine])
        #expect(sink.events.first?.time.map(TimeFormat.isoUTC) == "2025-02-06T14:32:45Z")
        #expect(sink.notes.contains { $0.contains("UTC") && $0.contains("--tz") })
    }
}
