import Foundation
import Testing
@testable import InvestigateKit

/// `--nginx-log-format`: compiling a `log_format` definition and reading lines with it.
@Suite struct NginxLogFormatTests {
    /// Parses lines through `nginx-access` with the given definition, as `ingest --nginx-log-format` does.
    func read(_ definition: String, _ lines: [String], hints: IngestHints = IngestHints()) throws -> RecordSink {
        try parse(NginxAccessImporter(), lines, path: "/var/log/nginx/access.log",
                  options: ImportOptions(nginxLogFormat: definition), hints: hints)
    }

    static let issueFormat = #"'$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent $request_time "$host" "$http_referer" "$http_x_forwarded_for"'"#

    @Test func issueExampleMapsEveryField() throws {
        let hints = IngestHints()
        let sink = try read(Self.issueFormat, [
            #"10.0.1.5 - bob [06/Feb/2025:14:32:45 +0900] "GET /api/items?id=3&x=y HTTP/1.1" 502 157 0.012 "shop.example.com" "https://shop.example.com/cart" "203.0.113.7, 10.0.1.9""#,
        ], hints: hints)
        #expect(sink.rejected.isEmpty)
        let e = try #require(sink.events.first)
        #expect(e.layer == .nginx && e.kind == .access)
        #expect(e.time.map(TimeFormat.isoUTC) == "2025-02-06T05:32:45Z")
        #expect(e.peerIP == "10.0.1.5")
        // The rightmost public hop of X-Forwarded-For is the client; the private one after it is ours.
        #expect(e.clientIP == "203.0.113.7")
        #expect(e.forwardedFor == "203.0.113.7, 10.0.1.9")
        #expect(e.method == "GET" && e.path == "/api/items" && e.query == "id=3&x=y")
        #expect(e.status == 502 && e.bytes == 157 && e.duration == 12_000)
        #expect(e.host == "shop.example.com")
        #expect(e.extra["referer"] == "https://shop.example.com/cart")
        #expect(e.extra["remote_user"] == "bob")
        #expect(hints.zone(forDirectory: "/var/log/nginx")?.zone == .fixed(seconds: 32_400))
    }

    @Test func definitionWithDirectiveNameAndConcatenatedPieces() throws {
        let definition = """
            log_format  main  '$remote_addr - $remote_user [$time_local] "$request" '
                              '$status $body_bytes_sent "$http_referer" '
                              '"$http_user_agent" "$http_x_forwarded_for"';
            """
        let format = try NginxLogFormat(definition: definition)
        #expect(format.name == "main")
        #expect(format.variables == ["remote_addr", "remote_user", "time_local", "request", "status", "body_bytes_sent",
                                     "http_referer", "http_user_agent", "http_x_forwarded_for"])
        // The same format without the directive, and unquoted, compiles to the same parser.
        let bare = try NginxLogFormat(definition: #"$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent" "$http_x_forwarded_for""#)
        #expect(bare.variables == format.variables)
        #expect(bare.format == format.format)

        let sink = try read(definition, [
            #"10.1.1.210 - - [06/Feb/2025:14:32:45 +0900] "GET /api/ping?x=1 HTTP/1.1" 400 31 "-" "Mozilla/5.0 (X11; Linux x86_64)" "203.0.113.7""#,
        ])
        #expect(sink.rejected.isEmpty)
        let e = try #require(sink.events.first)
        #expect(e.userAgent == "Mozilla/5.0 (X11; Linux x86_64)")
        #expect(e.extra["referer"] == nil)
        #expect(e.clientIP == "203.0.113.7" && e.peerIP == "10.1.1.210")
    }

    /// formats.md §5.1, alerta/docker-alerta#374. The issue shows only the logged line; this definition
    /// is the one that writes it (upstream time `-`, request time, then the named fields and ids).
    @Test func alertaCustomFormat() throws {
        let definition = #"log_format main '$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent" $upstream_response_time $request_time x_forwarded_for=$http_x_forwarded_for host=$host $request_id $http_x_request_id';"#
        let sink = try read(definition, [
            #"192.0.2.10 - - [11/Feb/2022:13:32:04 +0000] "GET /api/environments?status=open&status=ack HTTP/1.1" 200 86 "http://example.org/alerts" "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/98.0.4758.80 Safari/537.36" - 0.016 x_forwarded_for=- host=example.org d800a214304b188147d569b5df5328e6 71248cd6-6ede-4a89-9a51-f1b3eeb1b6ea"#,
        ])
        #expect(sink.rejected.isEmpty)
        let e = try #require(sink.events.first)
        #expect(e.time.map(TimeFormat.isoUTC) == "2022-02-11T13:32:04Z")
        #expect(e.path == "/api/environments" && e.query == "status=open&status=ack")
        #expect(e.status == 200 && e.bytes == 86 && e.duration == 16_000)
        #expect(e.extra["upstream_response_time"] == nil)
        #expect(e.forwardedFor == nil && e.clientIP == "192.0.2.10")
        #expect(e.host == "example.org")
        #expect(e.requestID == "d800a214304b188147d569b5df5328e6")
        #expect(e.extra["http_x_request_id"] == "71248cd6-6ede-4a89-9a51-f1b3eeb1b6ea")
        #expect(e.userAgent?.hasSuffix("Safari/537.36") == true)
    }

    @Test func upstreamListsKeepTheirSpaces() throws {
        let sink = try read(#"'$remote_addr [$time_local] "$request" $status $upstream_response_time $request_time $upstream_addr $connection'"#, [
            #"198.51.100.4 [06/Feb/2025:14:32:45 +0900] "POST /pay HTTP/1.1" 502 0.001, 0.002 : 0.010 0.012 10.0.0.5:8000, 10.0.0.6:8000 : unix:/run/g.sock 8812"#,
        ])
        #expect(sink.rejected.isEmpty)
        let e = try #require(sink.events.first)
        #expect(e.extra["upstream_response_time"] == "0.001, 0.002 : 0.010")
        #expect(e.duration == 12_000)
        #expect(e.extra["upstream_addr"] == "10.0.0.5:8000, 10.0.0.6:8000 : unix:/run/g.sock")
        #expect(e.extra["connection"] == "8812")
    }

    @Test func jsonEscapedFormatWithTraceIdAndIsoTime() throws {
        let definition = #"""
            log_format json escape=json '{"time":"$time_iso8601","msec":"$msec","addr":"$remote_addr",'
                '"request":"$request","status":$status,"ua":"$http_user_agent",'
                '"trace":"$http_x_amzn_trace_id","rid":"$request_id","conn":$connection}';
            """#
        let sink = try read(definition, [
            #"{"time":"2025-02-06T14:32:45+09:00","msec":"1738819965.136","addr":"10.0.2.7","request":"GET /a?b=1 HTTP/1.1","status":504,"ua":"curl \"quoted\" agent","trace":"Self=1-67891233-12456789abcdef012345678;Root=1-67891233-abcdef012345678912345678","rid":"0123456789abcdef0123456789abcdef","conn":77}"#,
        ])
        #expect(sink.rejected.isEmpty)
        let e = try #require(sink.events.first)
        // $msec is the most precise stamp and wins over $time_iso8601.
        #expect(e.time.map(TimeFormat.isoUTC) == "2025-02-06T05:32:45.136Z")
        #expect(e.userAgent == #"curl \"quoted\" agent"#)
        #expect(e.traceID == "1-67891233-abcdef012345678912345678")
        #expect(e.requestID == "0123456789abcdef0123456789abcdef")
        #expect(e.status == 504 && e.extra["connection"] == "77")
        #expect(e.method == "GET" && e.path == "/a" && e.query == "b=1")
    }

    @Test func requestPartsFromSeparateVariables() throws {
        let sink = try read(#"'$time_iso8601 | $remote_addr | $request_method | $scheme | $host | $request_uri | $server_protocol | $status | $body_bytes_sent | $http_referer | $http_user_agent'"#, [
            "2024-01-15T10:30:00+00:00 | 192.168.1.1 | GET | https | example.com | /api/products?page=2 | HTTP/2.0 | 200 | 1234 | - | Mozilla/5.0",
        ])
        #expect(sink.rejected.isEmpty)
        let e = try #require(sink.events.first)
        #expect(e.method == "GET" && e.path == "/api/products" && e.query == "page=2")
        #expect(e.extra["scheme"] == "https" && e.extra["protocol"] == "HTTP/2.0")
        #expect(e.host == "example.com" && e.userAgent == "Mozilla/5.0" && e.bytes == 1234)
    }

    @Test func linesThatDoNotFitAreRejectedWithTheReason() throws {
        let sink = try read(Self.issueFormat, [
            "# a comment",
            #"10.0.1.5 - - [06/Feb/2025:14:32:45 +0900] "GET / HTTP/1.1" 200 1 0.001 "h" "-" "-" trailing"#,
            #"10.0.1.5 - - [06/Feb/2025:14:32:45 +0900] "GET / HTTP/1.1" 2000 1 0.001 "h" "-" "-""#,
            #"10.0.1.5 - - [99/Feb/2025:14:32:45 +0900] "GET / HTTP/1.1" 200 1 0.001 "h" "-" "-""#,
            "",
            "\u{0}\u{1}binary",
        ])
        #expect(sink.events.isEmpty)
        #expect(sink.rejected.map(\.line) == [1, 2, 3, 4, 6])
        #expect(sink.rejected[0].reason.contains("$remote_addr"))
        #expect(sink.rejected[1].reason.contains("does not end with"))
        #expect(sink.rejected[2].reason.contains("$status"))
        #expect(sink.rejected[3].reason.contains("$time_local"))
    }

    @Test(arguments: [
        "",
        "'$remote_addr $'",
        "'$remote_addr$remote_user'",
        "log_format main '$remote_addr",
        "log_format main escape=xml '$remote_addr'",
        "'just text'",
        "'$remote_addr' trailing",
        "log_format a b c '$remote_addr'",
        "'${remote_addr'",
    ])
    func badDefinitionsAreClearErrors(_ definition: String) {
        #expect(throws: ImporterError.self) { try NginxLogFormat(definition: definition) }
        // And the importer refuses before any line is read.
        #expect(throws: ImporterError.self) {
            try NginxAccessImporter().makeParser(ParseContext(path: "/x/access.log", options: ImportOptions(nginxLogFormat: definition)))
        }
    }

    @Test func detectionRecognisesTheUsersFormat() throws {
        let dir = try TemporaryDirectory()
        try dir.write("access.log", "2024-01-15T10:30:00+09:00 | 192.168.1.1 | GET | /a?b=c | 200\n")
        let definition = "log_format pipes '$time_iso8601 | $remote_addr | $request_method | $request_uri | $status';"
        // Without the format the layout is unknown…
        let plain = try Ingester(store: try TimelineStore()).ingest(paths: [dir.path])
        #expect(plain.files.first?.status == .skipped)
        // …with it, detection and parsing both use it.
        let registry = try ImporterRegistry.standard.withNginxLogFormat(definition)
        let summary = try Ingester(store: try TimelineStore(), registry: registry,
                                   options: ImportOptions(nginxLogFormat: definition)).ingest(paths: [dir.path])
        let file = try #require(summary.files.first)
        #expect(file.format == "nginx-access" && file.events == 1 && file.rejected == 0)
        #expect(file.first.map(TimeFormat.isoUTC) == "2024-01-15T01:30:00Z")
        #expect(throws: ImporterError.self) { try ImporterRegistry.standard.withNginxLogFormat("'$'") }
        #expect(try ImporterRegistry.standard.withNginxLogFormat(nil).ids == ImporterRegistry.standard.ids)
    }

    @Test func bracedVariablesAndLiteralsAtBothEnds() throws {
        let format = try NginxLogFormat(definition: #"'[${remote_addr}]-${status}!'"#)
        #expect(format.variables == ["remote_addr", "status"])
        let sink = try read(#"'[${remote_addr}]-${status}!'"#, ["[2001:db8::1]-404!"])
        #expect(sink.rejected.isEmpty)
        #expect(sink.events.first?.peerIP == "2001:db8::1")
        #expect(sink.events.first?.status == 404)
    }

    @Test func hostileBytesNeverCrash() throws {
        var lines: [String] = []
        for n in 0..<200 {
            var s = ""
            for k in 0..<(n % 40) { s.append(["\"", " ", "[", "]", "-", "\\", "$", "0", ":", ","][(n * 7 + k * 3) % 10]) }
            lines.append(s)
        }
        let sink = try read(Self.issueFormat, lines)
        #expect(sink.events.count + sink.rejected.count == lines.filter { !$0.isEmpty }.count)
    }
}
