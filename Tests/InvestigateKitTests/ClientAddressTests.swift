import Foundation
import GRDB
import Testing
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
@testable import InvestigateKit

/// The C library's reading of an address: the oracle `IPAddressText` is held to.
func libcIsAddress(_ text: String) -> Bool {
    var v4 = in_addr(), v6 = in6_addr()
    return inet_pton(AF_INET, text, &v4) == 1 || inet_pton(AF_INET6, text, &v6) == 1
}

/// `client_ip` and `peer_ip` hold an IP address or nothing: the shared validator.
@Suite struct IPAddressTextTests {
    @Test(arguments: [
        "203.0.113.7", "0.0.0.0", "255.255.255.255", "10.1.1.211", "::", "::1", "2001:db8::1", "2001:DB8::80da:af6b:8b2c",
        "2a03:0000:10ff:f00f:0000:0000:0:8000", "::ffff:192.0.2.1", "fe80::1:2", "1:2:3:4:5:6:7::", "1::", "1:2:3:4:5:6:192.0.2.4",
    ])
    func addresses(_ text: String) {
        #expect(IPAddressText.isAddress(text))
        #expect(libcIsAddress(text))
    }

    @Test(arguments: [
        "", "-", "X.X.X.X", "x.0.0.0", "xxx.xxx.xxx.xxx", "109.86.xxx.xxx", "unix:", "example.com", "256.1.1.1", "1.2.3",
        "1.2.3.4.5", "01.2.3.4", "1.2.3.4 ", " 1.2.3.4", "1.2.3.4:80", "[2001:db8::1]", "2001:db8::1::2", ":::", "1:2:3:4:5:6:7:8:9",
        "12345::", "fe80::1%eth0", "1.2.3.4,", "203.0.113.7, 10.0.0.1", "::ffff:1.2.3", "1:2:3:4:5:6:7:1.2.3.4", "unknown", "localhost",
        "<script>", "１.２.３.４",
    ])
    func notAddresses(_ text: String) {
        #expect(!IPAddressText.isAddress(text))
        #expect(!libcIsAddress(text))
    }

    /// Random strings over the characters addresses are made of: the validator agrees with libc.
    @Test func agreesWithTheCLibraryOnRandomText() {
        var rng = SystemRandomNumberGenerator()
        let alphabet = Array("0123456789abcdefABCDEF.:x%")
        for _ in 0..<50_000 {
            let length = Int.random(in: 1...20, using: &rng)
            let text = String((0..<length).map { _ in alphabet.randomElement(using: &rng)! })
            #expect(IPAddressText.isAddress(text) == libcIsAddress(text), "\(text)")
        }
        // And on mutations of real addresses (digits changed, separators doubled, parts cut).
        for base in ["192.0.2.1", "2001:db8:0:0:1:0:0:1", "::ffff:10.0.0.1", "fe80::a:b"] {
            for _ in 0..<5_000 {
                var chars = Array(base)
                let k = Int.random(in: 0..<chars.count, using: &rng)
                switch Int.random(in: 0..<3, using: &rng) {
                case 0: chars[k] = alphabet.randomElement(using: &rng)!
                case 1: chars.insert(chars[k], at: k)
                default: chars.remove(at: k)
                }
                let text = String(chars)
                #expect(IPAddressText.isAddress(text) == libcIsAddress(text), "\(text)")
            }
        }
    }

    @Test func hostPortForms() {
        #expect(IPAddressText.address(inHostPort: "192.0.2.1:443") == "192.0.2.1")
        #expect(IPAddressText.address(inHostPort: "[2001:db8::1]:443") == "2001:db8::1")
        #expect(IPAddressText.address(inHostPort: "[2001:db8::1]") == "2001:db8::1")
        #expect(IPAddressText.address(inHostPort: "2001:db8::1") == "2001:db8::1")
        #expect(IPAddressText.address(inHostPort: "example.com:443") == nil)
        #expect(IPAddressText.address(inHostPort: "x.0.0.0:50337") == nil)
        #expect(IPAddressText.address(inHostPort: "192.0.2.1:") == nil)
    }

    @Test func forwardedForCountsOnlyAddressHops() {
        #expect(ByteScanner.clientFromForwardedFor("198.51.100.23, 203.0.113.9") == "203.0.113.9")
        // A hop the client wrote that is no address never becomes the client.
        #expect(ByteScanner.clientFromForwardedFor("203.0.113.9, evil.example") == "203.0.113.9")
        #expect(ByteScanner.clientFromForwardedFor("<script>, 10.0.0.2") == "10.0.0.2")
        #expect(ByteScanner.clientFromForwardedFor("unknown, -") == nil)
        #expect(ByteScanner.clientFromForwardedFor("X.X.X.X") == nil)
        // Hops some proxies write with a port.
        #expect(ByteScanner.clientFromForwardedFor("203.0.113.9:51234, 10.0.0.2") == "203.0.113.9")
        #expect(ByteScanner.clientFromForwardedFor("[2001:db8::7]:443") == "2001:db8::7")
    }
}

/// nginx access lines in the shapes people add to `combined`, read without `--nginx-log-format`.
@Suite struct NginxVariantTests {
    let importer = NginxAccessImporter()

    func one(_ line: String, sourceLocation: SourceLocation = #_sourceLocation) throws -> (Event, [String]) {
        let sink = try parse(importer, [line])
        #expect(sink.rejected.isEmpty, "\(sink.rejected.map(\.reason))", sourceLocation: sourceLocation)
        #expect(ImporterRegistry.standard.detect([line], fileName: "access.log").importer?.id == "nginx-access", sourceLocation: sourceLocation)
        return (try #require(sink.events.first, sourceLocation: sourceLocation), sink.notes)
    }

    /// `log_format vhosts '$host $remote_addr - $remote_user [$time_local] "$request" …'`.
    @Test func virtualHostFirst() throws {
        let (e, notes) = try one(#"shop.example.com 203.0.113.7 - - [06/Feb/2025:14:32:45 +0900] "GET /cart?id=3 HTTP/1.1" 404 153 "-" "curl/8.5.0""#)
        #expect(e.clientIP == "203.0.113.7" && e.peerIP == "203.0.113.7" && e.host == "shop.example.com")
        #expect(e.extra["remote_user"] == nil && e.path == "/cart" && e.query == "id=3" && e.status == 404)
        #expect(notes.contains { $0.contains("virtual host") })
        // `$host:$server_port`, and Apache's vhost_combined (`%v:%p %h %l %u %t …`, goaccess#645).
        let (apache, _) = try one(#"www.xxxxxx.com:80 46.229.168.73 - - [31/Jan/2017:09:44:00 +0100] "GET /showthread.php?s=ff10fb2cebe47ec51e598eb4c6eb0b8f&t=14607 HTTP/1.1" 301 738 "-" "Mozilla/5.0 (compatible; SemrushBot/1.2~bl; +http://www.semrush.com/bot.html)""#)
        #expect(apache.clientIP == "46.229.168.73" && apache.host == "www.xxxxxx.com" && apache.extra["server_port"] == "80")
        #expect(apache.status == 301 && apache.path == "/showthread.php")
        // Apache's suggested `%v %h %l %u %t "%r" %>s %b` with an IPv6 peer (goaccess#2973).
        let (v6, _) = try one(#"test ::1 - - [25/Jul/2026:17:38:53 +0800] "GET / HTTP/1.1" 200 0"#)
        #expect(v6.clientIP == "::1" && v6.host == "test")
        // The host is an address when clients asked for one.
        let (ipHost, _) = try one(#"192.0.2.80 203.0.113.7 - alice [06/Feb/2025:14:32:45 +0900] "GET / HTTP/1.1" 200 5 "-" "ua""#)
        #expect(ipHost.clientIP == "203.0.113.7" && ipHost.host == "192.0.2.80" && ipHost.extra["remote_user"] == "alice")
        let (bracketed, _) = try one(#"[2001:db8::80]:443 203.0.113.7 - - [06/Feb/2025:14:32:45 +0900] "GET / HTTP/1.1" 200 5 "-" "ua""#)
        #expect(bracketed.host == "[2001:db8::80]" && bracketed.extra["server_port"] == "443" && bracketed.clientIP == "203.0.113.7")
    }

    /// A masked peer after the virtual host (goaccess#218's `%V %h %l %u`): the host is not taken
    /// for the client, and the masked text stays out of the address columns.
    @Test func virtualHostBeforeAMaskedPeer() throws {
        let (e, notes) = try one(#"kitchenstyle.example.net 109.86.xxx.xxx - user [05/Mar/2015:20:33:53 +0000] "GET /skin/adminhtml/default/default/images/cancel_btn_icon.gif HTTP/1.1" 200 648 "http://kitchenstyle.example.net/skin/adminhtml/default/default/boxes.css" "Mozilla/5.0 (Windows NT 6.1; WOW64)""#)
        #expect(e.host == "kitchenstyle.example.net" && e.clientIP == nil && e.peerIP == nil)
        #expect(e.extra["remote_addr_text"] == "109.86.xxx.xxx" && e.extra["remote_user"] == "user")
        #expect(notes.contains { $0.contains("remote_addr_text") })
    }

    /// `$remote_addr` written as a list by some proxies, with and without a virtual host first.
    @Test func remoteAddrAsAList() throws {
        let (plain, _) = try one(#"203.0.113.7, 10.0.0.2 - - [06/Feb/2025:14:32:45 +0900] "GET / HTTP/1.1" 200 5 "-" "ua""#)
        #expect(plain.clientIP == "203.0.113.7" && plain.peerIP == "10.0.0.2" && plain.forwardedFor == "203.0.113.7, 10.0.0.2")
        let (hosted, _) = try one(#"api.example.com 198.51.100.4, 203.0.113.7, 10.0.0.2 - - [06/Feb/2025:14:32:45 +0900] "GET / HTTP/1.1" 200 5 "-" "ua""#)
        #expect(hosted.host == "api.example.com" && hosted.clientIP == "203.0.113.7" && hosted.peerIP == "10.0.0.2")
        #expect(hosted.forwardedFor == "198.51.100.4, 203.0.113.7, 10.0.0.2")
    }

    /// A host name, a socket or a masked value where `$remote_addr` stands is kept as text, never as an address.
    @Test func remoteAddrThatIsNoAddress() throws {
        for (line, text) in [
            (#"unix: - - [06/Feb/2025:14:32:45 +0900] "GET / HTTP/1.1" 200 5 "-" "ua""#, "unix:"),
            (#"crawl-66-249-66-1.googlebot.com - - [06/Feb/2025:14:32:45 +0900] "GET / HTTP/1.1" 200 5 "-" "ua""#, "crawl-66-249-66-1.googlebot.com"),
            (#"X.X.X.X - - [06/Feb/2025:14:32:45 +0900] "GET / HTTP/1.1" 200 5 "-" "ua""#, "X.X.X.X"),
        ] {
            let (e, notes) = try one(line)
            #expect(e.clientIP == nil && e.peerIP == nil && e.extra["remote_addr_text"] == text)
            #expect(e.host == nil, "\(line)")
            #expect(notes.contains { $0.contains("remote_addr_text") })
        }
        // The forwarded client still counts when the peer is a socket.
        let (proxied, _) = try one(#"unix: - - [06/Feb/2025:14:32:45 +0900] "GET / HTTP/1.1" 200 5 "-" "ua" "203.0.113.7""#)
        #expect(proxied.clientIP == "203.0.113.7" && proxied.peerIP == nil)
    }

    /// nginx writes `"` and `\` in quoted fields as `\x22` and `\x5C`: restored, as other layers
    /// log them; escapes of unprintable bytes stay as written (round 12 kept `q=a\x22b`).
    @Test func quoteEscapesAreDecoded() throws {
        let (e, _) = try one(#"203.0.113.7 - - [06/Feb/2025:14:32:45 +0000] "GET /search?q=a\x22b\x5Cx22c\x16 HTTP/1.1" 200 5 "https://x.example/\x22" "Mozilla/5.0 \x22quoted\x22""#)
        #expect(e.path == "/search" && e.query == #"q=a"b\x22c\x16"#)
        #expect(e.userAgent == #"Mozilla/5.0 "quoted""# && e.extra["referer"] == #"https://x.example/""#)
    }

    /// The common suffixes: `$request_time $upstream_response_time $upstream_addr
    /// "$http_x_forwarded_for" $request_id`.
    @Test func trailingFieldsPeopleAdd() throws {
        let (e, notes) = try one(#"10.0.0.2 - - [06/Feb/2025:14:32:45 +0900] "POST /api/orders HTTP/1.1" 502 157 "-" "curl/8.5.0" 0.012 0.010 10.0.1.5:8000 "203.0.113.7" 8a3c1f0e9b7d4c2a8e6f1b3d5c7a9e0f"#)
        #expect(e.duration == 12_000 && e.extra["upstream_response_time"] == "0.010" && e.extra["upstream_addr"] == "10.0.1.5:8000")
        #expect(e.forwardedFor == "203.0.113.7" && e.clientIP == "203.0.113.7" && e.peerIP == "10.0.0.2")
        #expect(e.requestID == "8a3c1f0e9b7d4c2a8e6f1b3d5c7a9e0f" && e.extra["trailing"] == nil)
        #expect(notes.contains { $0.contains("the larger as $request_time") })
        // `$upstream_response_time $request_time`, the other common order: the larger is still
        // the request's time, and a list or `-` is never it (red-team round 12 stored 0.050 of
        // `0.050 0.052`, and 60.000 of `60.000 60.004`).
        for (times, duration, upstream) in [("0.050 0.052", 52_000, "0.050"), ("60.000 60.004", 60_004_000, "60.000"),
                                            ("0.001, 0.049 0.052", 52_000, "0.001, 0.049")] as [(String, Int64, String)] {
            let (u, _) = try one(#"10.0.0.2 - - [06/Feb/2025:14:32:45 +0900] "GET / HTTP/1.1" 200 5 "-" "ua" "# + times)
            #expect(u.duration == duration && u.extra["upstream_response_time"] == upstream, "\(times)")
        }
        // Several upstreams tried: the lists keep their spaces; a socket upstream.
        let (retried, _) = try one(#"10.0.0.2 - - [06/Feb/2025:14:32:45 +0900] "GET / HTTP/1.1" 504 0 "-" "ua" "-" 60.002 30.001, 30.001 : 0.000 10.0.1.5:8000, 10.0.1.6:8000 : unix:/run/app.sock"#)
        #expect(retried.duration == 60_002_000 && retried.extra["upstream_response_time"] == "30.001, 30.001 : 0.000")
        #expect(retried.extra["upstream_addr"] == "10.0.1.5:8000, 10.0.1.6:8000 : unix:/run/app.sock" && retried.extra["trailing"] == nil)
        // No upstream contacted: `-`; more bare times than can be told apart stay as text.
        let (many, _) = try one(#"10.0.0.2 - - [06/Feb/2025:14:32:45 +0900] "GET / HTTP/1.1" 200 1 "-" "ua" 0.004 0.001 0.002 0.003"#)
        #expect(many.duration == 4_000 && many.extra["upstream_response_time"] == nil && many.extra["trailing"] == "0.001 0.002 0.003")
    }

    /// `log_format json escape=json '{…}'` lines, keys named after the variables.
    @Test func escapeJSONLines() throws {
        let line = #"{"time_local":"06/Feb/2025:14:32:45 +0900","remote_addr":"10.0.0.2","remote_user":"","request":"GET /api/orders?page=2 HTTP/1.1","status": "503","body_bytes_sent":"197","request_time":"0.003","http_referrer":"","http_user_agent":"curl/8.5.0","http_x_forwarded_for":"203.0.113.7","upstream_addr":"10.0.1.5:8000","request_id":"8a3c1f0e9b7d4c2a8e6f1b3d5c7a9e0f"}"#
        let (e, _) = try one(line)
        #expect(e.time == CivilTime.micros(year: 2025, month: 2, day: 6, hour: 5, minute: 32, second: 45))
        #expect(e.clientIP == "203.0.113.7" && e.peerIP == "10.0.0.2" && e.status == 503 && e.bytes == 197 && e.duration == 3_000)
        #expect(e.method == "GET" && e.path == "/api/orders" && e.query == "page=2" && e.userAgent == "curl/8.5.0")
        #expect(e.requestID == "8a3c1f0e9b7d4c2a8e6f1b3d5c7a9e0f" && e.extra["upstream_addr"] == "10.0.1.5:8000")
        // ISO stamps, `$`-prefixed keys, a hostile address.
        let (iso, notes) = try one(#"{"$time_iso8601":"2025-02-06T14:32:45+09:00","$remote_addr":"evil<script>","$request_method":"GET","$request_uri":"/x","$status":"200"}"#)
        #expect(iso.time == e.time && iso.clientIP == nil && iso.peerIP == nil && iso.extra["remote_addr_text"] == "evil<script>")
        #expect(notes.contains { $0.contains("remote_addr_text") })
        // nginx-proxy's JSON default (LOG_JSON, nginx-proxy#2197) puts $time_iso8601 under `time_local`
        // and $http_x_forwarded_for under `client_ip`: the stamp is read by its shape, the other key kept.
        let (proxy, _) = try one(#"{"time_local":"2025-02-06T14:32:45+09:00","client_ip":"203.0.113.7","remote_addr":"172.18.0.1","request":"GET / HTTP/1.1","status":"200","body_bytes_sent":"615","request_time":"0.000","upstream_response_time":"0.001","upstream_addr":"172.18.0.3:80","http_referrer":"","http_user_agent":"curl/8.5.0","request_id":"0b2a1c3d4e5f60718293a4b5c6d7e8f9"}"#)
        #expect(proxy.time == e.time && proxy.peerIP == "172.18.0.1" && proxy.clientIP == "172.18.0.1" && proxy.extra["client_ip"] == "203.0.113.7")
        #expect(proxy.extra["upstream_response_time"] == "0.001" && proxy.requestID == "0b2a1c3d4e5f60718293a4b5c6d7e8f9")
        // goaccess#1017's published line: numbers unquoted, addresses removed by the reporter.
        let (removed, _) = try one(#"{"server_name": "domain.*", "server_port": 80, "server_protocol": "HTTP/1.1", "http_host": "www.example.com", "remote_addr": "ip_removed", "remote_user": "-", "time_local": "15/Feb/2018:14:26:56 -0500", "request": "GET /example/test/test HTTP/1.1", "status": 200, "body_bytes_sent": 21, "http_referrer": "-", "http_user_agent": "user agent string", "request_time": "0.015", "http_client_ip": "-", "http_x_forwarded_for" : "ip_removed, ip_removed, ip_removed"}"#)
        #expect(removed.clientIP == nil && removed.peerIP == nil && removed.extra["remote_addr_text"] == "ip_removed")
        #expect(removed.status == 200 && removed.bytes == 21 && removed.host == "www.example.com" && removed.path == "/example/test/test")
        #expect(removed.forwardedFor == "ip_removed, ip_removed, ip_removed" && removed.duration == 15_000)
        // Other JSON is not an nginx line; a JSON line without a stamp is rejected with the reason.
        let other = try parse(importer, [#"{"requestId":"x","ip":"1.2.3.4","requestTime":"06/Feb/2025:14:32:45 +0900","httpMethod":"GET","status":"200"}"#])
        #expect(other.events.isEmpty && other.rejected.first?.reason.contains("remote_addr") == true)
        let stampless = try parse(importer, [#"{"remote_addr":"1.2.3.4","status":"200"}"#])
        #expect(stampless.events.isEmpty && stampless.rejected.count == 1)
    }
}

/// Every importer that fills `client_ip` or `peer_ip` keeps text that is not an address out of them.
@Suite struct ClientAddressPerFormatTests {
    func registryImporter(_ id: String) throws -> any Importer {
        try #require(ImporterRegistry.standard.importer(id: id))
    }

    @Test func nginxLogFormat() throws {
        let format = "log_format main '$remote_addr - $remote_user [$time_local] \"$request\" $status $body_bytes_sent \"$http_x_forwarded_for\"';"
        let sink = try parse(NginxAccessImporter(), [
            #"unix: - - [06/Feb/2025:14:32:45 +0900] "GET / HTTP/1.1" 200 5 "not-an-ip, also not""#,
            #"10.0.0.2 - - [06/Feb/2025:14:32:45 +0900] "GET / HTTP/1.1" 200 5 "203.0.113.7""#,
        ], options: ImportOptions(nginxLogFormat: format))
        try #require(sink.events.count == 2)
        #expect(sink.events[0].clientIP == nil && sink.events[0].peerIP == nil && sink.events[0].extra["remote_addr_text"] == "unix:")
        #expect(sink.events[0].forwardedFor == "not-an-ip, also not")
        #expect(sink.events[1].clientIP == "203.0.113.7" && sink.events[1].peerIP == "10.0.0.2")
        #expect(sink.notes.contains { $0.contains("remote_addr_text") })
    }

    @Test func nginxErrorLogClient() throws {
        // formats.md §5.3's public line, its client masked.
        let sink = try parse(try registryImporter("nginx-error"), [
            #"2012/10/11 07:57:41 [error] 1372#0: *649643 connect() to unix:/tmp/php.socket failed (111: Connection refused) while connecting to upstream, client: xxx.xxx.xxx.xxx, server: domain.com, request: "GET / HTTP/1.1", upstream: "fastcgi://unix:/tmp/php.socket:", host: "xxx.xxx.xxx.xxx:80""#,
            #"2016/09/30 08:36:06 [error] 22923#0: *4758725916 limiting requests, excess: 15.243 by zone "one", client: 2001:db8::80da:af6b:8b2c, server: example.com, request: "GET / HTTP/1.1", host: "example.com""#,
        ])
        try #require(sink.events.count == 2)
        #expect(sink.events[0].clientIP == nil && sink.events[0].extra["client_text"] == "xxx.xxx.xxx.xxx")
        #expect(sink.events[1].clientIP == "2001:db8::80da:af6b:8b2c")
        #expect(sink.notes.contains { $0.contains("client_text") })
    }

    @Test func albAndClassicELB() throws {
        // The corpus's masked ALB object (aws-waf-security-automations) writes `x.0.0.0:50337`.
        let masked = #"http 2023-04-24T21:28:01.047920Z app/wordpress/XXXXXXXXXXXXXXXX x.0.0.0:50337 X.X.X.X:80 0.001 0.113 0.000 400 400 152 13911 "GET http://wordpress-XXXXXXXXXX.us-east-2.elb.amazonaws.com:80/ HTTP/1.1" "Apache-HttpClient/4.5.6 (Java/1.8.0_191)" - - arn:aws:elasticloadbalancing:us-east-2:XXXXXXXXXXXX:targetgroup/wordpress/XXXXXXXXXXXXXXXX "Root=XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX" "-" "-" 0 2023-04-24T21:28:00.933000Z "waf,forward" "-" "-""#
        let alb = try parse(try registryImporter("alb"), [masked, try registryImporter("alb").samples[0].lines[0]])
        try #require(alb.events.count == 2)
        #expect(alb.events[0].clientIP == nil && alb.events[0].extra["client_text"] == "x.0.0.0" && alb.events[0].extra["client_port"] == "50337")
        #expect(alb.events[1].clientIP == "192.168.131.39")
        #expect(alb.notes.contains { $0.contains("client_text") })
        let classic = try parse(try registryImporter("elb-classic"), [
            #"2015-05-13T23:39:43.945958Z my-loadbalancer [2001:db8::7]:2817 10.0.0.1:80 0.000073 0.001048 0.000057 200 200 0 29 "GET http://www.example.com:80/ HTTP/1.1" "curl/7.38.0" - -"#,
            #"2015-05-13T23:39:43.945958Z my-loadbalancer X.X.X.X:2817 10.0.0.1:80 0.000073 0.001048 0.000057 200 200 0 29 "GET http://www.example.com:80/ HTTP/1.1" "curl/7.38.0" - -"#,
        ])
        try #require(classic.events.count == 2)
        #expect(classic.events[0].clientIP == "2001:db8::7")
        #expect(classic.events[1].clientIP == nil && classic.events[1].extra["client_text"] == "X.X.X.X")
    }

    @Test func wafBothReaders() throws {
        // The corpus's WAF sample (aws-waf-security-automations) masks addresses as `X.X.X.X`.
        let record = #"{"timestamp":1684825816966,"formatVersion":1,"webaclId":"arn:aws:wafv2:us-east-1:111111111111:global/webacl/w/1","terminatingRuleId":"Default_Action","terminatingRuleType":"REGULAR","action":"ALLOW","httpSourceName":"CF","httpSourceId":"X","ruleGroupList":[],"rateBasedRuleList":[],"nonTerminatingMatchingRules":[],"httpRequest":{"clientIp":"X.X.X.X","country":"US","headers":[{"name":"Host","value":"example.com"}],"uri":"/","args":"","httpVersion":"HTTP/1.1","httpMethod":"GET","requestId":"abc"}}"#
        let sink = try parse(try registryImporter("waf"), [record])
        let e = try #require(sink.events.first)
        #expect(e.clientIP == nil && e.extra["client_ip_text"] == "X.X.X.X")
        #expect(sink.notes.contains { $0.contains("client_ip_text") })
        #expect(WAFRecordTests.check(record))
        // A number where the address should be: the generic reader's path, the same outcome.
        let numeric = record.replacingOccurrences(of: #""clientIp":"X.X.X.X""#, with: #""clientIp":12345"#)
        #expect(WAFRecordTests.generic(Array(numeric.utf8)) == (WAFRecordTests.typed(Array(numeric.utf8)) ?? WAFRecordTests.generic(Array(numeric.utf8))))
        let n = try #require(try parse(try registryImporter("waf"), [numeric]).events.first)
        #expect(n.clientIP == nil && n.extra["client_ip_text"] == "12345")
    }

    @Test func apiGatewayAccessAndExecution() throws {
        let access = try parse(try registryImporter("apigateway-access"), [
            #"{"requestId":"48752d0f-c99d-4cfa-a5a7-f3c6834d19e5","ip":"test-invoke-source-ip","requestTime":"10/Jun/2023:15:36:28 +0000","httpMethod":"GET","resourcePath":"/pets","status":"200","protocol":"HTTP/1.1","responseLength":"184"}"#,
            "203.0.113.7,-,-,06/Feb/2025:05:32:45 +0000,GET,/pets/{petId},HTTP/1.1,502,36,fbcaf9e5-d535-40a1-891c-7b70118cf7e8,K2G9wEbUoAMEvag=",
        ])
        try #require(access.events.count == 2)
        #expect(access.events[0].clientIP == nil && access.events[0].extra["source_ip_text"] == "test-invoke-source-ip")
        #expect(access.events[1].clientIP == "203.0.113.7")
        #expect(access.notes.contains { $0.contains("source_ip_text") })
        // The CLF format, read with --format.
        let clf = try parse(try registryImporter("apigateway-access"), [
            #"not.an.ip - - [06/Feb/2025:05:32:45 +0000] "GET /pets HTTP/1.1" 200 36 fbcaf9e5-d535-40a1-891c-7b70118cf7e8"#,
        ])
        #expect(clf.events.allSatisfy { $0.clientIP == nil })
        let execution = try parse(try registryImporter("apigateway-execution"), [
            "(fbcaf9e5-d535-40a1-891c-7b70118cf7e8) Method request headers: {X-Forwarded-For=spoofed-by-client, 203.0.113.7, Host=abc.execute-api.us-east-1.amazonaws.com}",
            "(11111111-d535-40a1-891c-7b70118cf7e8) Method request headers: {X-Forwarded-For=203.0.113.8, 70.132.1.1, Host=abc.execute-api.us-east-1.amazonaws.com}",
        ])
        try #require(execution.events.count == 2)
        #expect(execution.events[0].clientIP == nil && execution.events[0].forwardedFor == "spoofed-by-client, 203.0.113.7")
        #expect(execution.events[1].clientIP == "203.0.113.8")
    }

    @Test func gunicornWerkzeugAndSyslogWrapped() throws {
        let gunicorn = try parse(try registryImporter("gunicorn-access"), [
            #"unix:/run/gunicorn.sock - - [01/Feb/2019:18:33:56 +0000] "GET / HTTP/1.0" 200 14 "-" "ApacheBench/2.3""#,
        ], path: "/var/log/gunicorn-access.log")
        let g = try #require(gunicorn.events.first)
        #expect(g.layer == .gunicorn && g.clientIP == nil && g.peerIP == nil && g.extra["remote_addr_text"] == "unix:/run/gunicorn.sock")
        let flask = try parse(try registryImporter("flask"), [
            "[2025-02-06 14:32:44,002] INFO in app: starting order service",
            #"localhost - - [06/Feb/2025 14:32:45] "GET /api/orders HTTP/1.1" 200 -"#,
            #"abcd - - [06/Feb/2025 14:32:45] "GET /api/orders HTTP/1.1" 200 -"#,
        ], options: ImportOptions(appTimeZone: .utc))
        #expect(flask.events.allSatisfy { $0.clientIP.map(IPAddressText.isAddress) ?? true })
        #expect(flask.events.allSatisfy { $0.peerIP.map(IPAddressText.isAddress) ?? true })
        let syslog = try parse(try registryImporter("syslog"), [
            #"Feb  6 05:32:45 web gunicorn[2156944]: abc.def - - [06/Feb/2025:14:32:45 +0900] "GET /api/ping?x=1 HTTP/1.0" 400 31 "-" "curl/8.5.0""#,
            #"Feb  6 05:32:45 web gunicorn[2156944]: 10.1.1.210 - - [06/Feb/2025:14:32:45 +0900] "GET /api/ping?x=1 HTTP/1.0" 400 31 "-" "curl/8.5.0""#,
        ], referenceTime: CivilTime.micros(year: 2025, month: 3, day: 1, hour: 0, minute: 0, second: 0))
        try #require(syslog.events.count == 2)
        #expect(syslog.events[0].clientIP == nil && syslog.events[0].peerIP == nil)
        #expect(syslog.events[1].clientIP == "10.1.1.210")
    }

    /// nginx lines inside a CloudWatch Logs export: the inner importer's check holds there too.
    @Test func cloudWatchWrappedNginxLines() throws {
        let sink = try parse(try registryImporter("cloudwatch-export"), [
            #"2025-02-06T05:32:45.123Z shop.example.com 203.0.113.7 - - [06/Feb/2025:14:32:45 +0900] "GET / HTTP/1.1" 200 5 "-" "ua""#,
            #"2025-02-06T05:32:46.123Z unix: - - [06/Feb/2025:14:32:46 +0900] "GET / HTTP/1.1" 200 5 "-" "ua""#,
            #"2025-02-06T05:32:47.123Z 10.0.0.2 - - [06/Feb/2025:14:32:47 +0900] "GET / HTTP/1.1" 200 5 "-" "ua" "evil, 198.51.100.4""#,
        ], path: "/exports/task/nginx-access/000000")
        try #require(sink.events.count == 3)
        #expect(sink.events.map(\.clientIP) == ["203.0.113.7", nil, "198.51.100.4"])
        #expect(sink.events[0].host == "shop.example.com" && sink.events[1].extra["remote_addr_text"] == "unix:")
    }

    /// The last guard: an importer that let other text through still stores none.
    @Test func emitMovesAnythingElseToExtra() {
        var sink = RecordSink()
        var e = Event(time: 0, layer: .nginx, kind: .access, line: 1, raw: [])
        e.clientIP = "evil.example"
        e.peerIP = "10.0.0.2"
        sink.emit(e)
        #expect(sink.events.first?.clientIP == nil && sink.events.first?.peerIP == "10.0.0.2")
        #expect(sink.events.first?.extra["client_ip_text"] == "evil.example")
        #expect(!sink.notes.isEmpty)
    }
}

/// Every real file of ../shared/corpus through the whole pipeline: no `client_ip` or `peer_ip`
/// holds a non-address, and every rejected line is listed with its reason.
@Suite(.enabled(if: Corpus.available)) struct CorpusClientAddressTests {
    @Test func noStoredAddressIsText() throws {
        let store = try TimelineStore()
        let summary = try Ingester(store: store).ingest(paths: [Corpus.root.path])
        let rows = try store.read { db in
            try Row.fetchAll(db, sql: """
                SELECT s.path AS path, e.line AS line, e.client_ip AS client, e.peer_ip AS peer
                FROM event e JOIN source s ON s.id = e.source_id
                WHERE e.client_ip IS NOT NULL OR e.peer_ip IS NOT NULL
                """)
        }
        #expect(rows.count > 10_000)
        var bad: [String] = []
        for row in rows {
            for column in ["client", "peer"] {
                guard let value: String = row[column] else { continue }
                if !libcIsAddress(value) || !IPAddressText.isAddress(value) {
                    bad.append("\(row["path"] as String):\(row["line"] as Int) \(column)_ip=\(value)")
                }
            }
        }
        #expect(bad.isEmpty, "non-addresses stored: \(bad.prefix(20))")
        // What was not read, and why: printed for the record, and each rejection carries a reason.
        let rejected = try store.read { db in
            try Row.fetchAll(db, sql: """
                SELECT s.path AS path, r.reason AS reason, COUNT(*) AS n FROM rejected r JOIN source s ON s.id = r.source_id
                GROUP BY s.path, r.reason ORDER BY s.path, n DESC
                """)
        }
        let prefix = Corpus.root.path + "/"
        var lines = ["corpus: \(summary.files.count) files, \(rows.count) records with an address, \(bad.count) non-addresses stored"]
        for row in rejected {
            let path: String = row["path"], reason: String = row["reason"], n: Int = row["n"]
            #expect(!reason.isEmpty)
            lines.append("  rejected \(n)× \(path.replacingOccurrences(of: prefix, with: "")): \(reason)")
        }
        print(lines.joined(separator: "\n"))
    }
}
