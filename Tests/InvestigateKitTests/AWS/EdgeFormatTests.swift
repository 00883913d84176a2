import Foundation
import Testing
@testable import InvestigateKit

/// The formats in front of the stack: CloudFront standard logs, NLB access logs, ALB connection
/// logs. Samples are the vendors' documented examples (see each importer's doc comment); every
/// field is checked.
@Suite struct EdgeFormatTests {
    static func importer(_ id: String) throws -> any Importer {
        try #require(ImporterRegistry.standard.importer(id: id), "importer \(id) is registered")
    }

    static let header = [
        "#Version: 1.0",
        "#Fields: date time x-edge-location sc-bytes c-ip cs-method cs(Host) cs-uri-stem sc-status cs(Referer) cs(User-Agent) cs-uri-query cs(Cookie) x-edge-result-type x-edge-request-id x-host-header cs-protocol cs-bytes time-taken x-forwarded-for ssl-protocol ssl-cipher x-edge-response-result-type cs-protocol-version fle-status fle-encrypted-fields c-port time-to-first-byte x-edge-detailed-result-type sc-content-type sc-content-len sc-range-start sc-range-end",
    ]

    // MARK: - CloudFront

    @Test func cloudFrontHitEveryField() throws {
        let importer = try Self.importer("cloudfront")
        let sink = try parse(importer, [importer.samples[0].lines[0]])
        let e = try #require(sink.events.first)
        #expect(sink.rejected.isEmpty)
        #expect(e.layer == .cloudfront && e.kind == .access)
        #expect(e.time == AWSTime.iso8601("2019-12-04T21:02:31Z"))
        #expect(e.extra["edge_location"] == "LAX1")
        #expect(e.bytes == 392)
        #expect(e.clientIP == "192.0.2.100" && e.peerIP == "192.0.2.100")
        #expect(e.method == "GET")
        #expect(e.extra["distribution_host"] == "d111111abcdef8.cloudfront.net")
        #expect(e.path == "/index.html")
        #expect(e.status == 200)
        #expect(e.extra["referer"] == nil)
        #expect(e.userAgent == "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/78.0.3904.108 Safari/537.36")
        #expect(e.query == nil && e.extra["cookie"] == nil)
        #expect(e.extra["result_type"] == "Hit")
        #expect(e.requestID == "SOX4xwn4XV6Q4rgb7XiVGOHms_BGlTAC4KyHmureZmBNrjGdRLiNIQ==")
        #expect(e.host == "d111111abcdef8.cloudfront.net")
        #expect(e.extra["scheme"] == "https")
        #expect(e.extra["received_bytes"] == "23")
        #expect(e.duration == 1_000)
        #expect(e.forwardedFor == nil)
        #expect(e.extra["ssl_protocol"] == "TLSv1.2" && e.extra["ssl_cipher"] == "ECDHE-RSA-AES128-GCM-SHA256")
        #expect(e.extra["response_result_type"] == "Hit")
        #expect(e.extra["protocol"] == "HTTP/2.0")
        #expect(e.extra["fle_status"] == nil && e.extra["fle_encrypted_fields"] == nil)
        #expect(e.extra["client_port"] == "11040")
        #expect(e.extra["time_to_first_byte"] == "0.001")
        #expect(e.extra["detailed_result_type"] == "Hit")
        #expect(e.extra["content_type"] == "text/html" && e.extra["content_len"] == "78")
        #expect(e.extra["range_start"] == nil && e.extra["range_end"] == nil)
        #expect(e.error == nil)
    }

    @Test func cloudFrontOriginDnsErrorIsTheEdgesOwnError() throws {
        let importer = try Self.importer("cloudfront")
        let sink = try parse(importer, [importer.samples[0].lines[2]])
        let e = try #require(sink.events.first)
        #expect(e.status == 502)
        #expect(e.extra["referer"] == "http://www.example.com/")
        #expect(e.host == "www.example.com" && e.extra["distribution_host"] == "d111111abcdef8.cloudfront.net")
        #expect(e.extra["result_type"] == "Error" && e.extra["response_result_type"] == "Error")
        #expect(e.extra["detailed_result_type"] == "OriginDnsError")
        #expect(e.error == "OriginDnsError")
        #expect(e.extra["scheme"] == "http" && e.extra["ssl_protocol"] == nil)
        #expect(e.duration == 102_000)
        #expect(e.extra["client_port"] == "25260")
    }

    /// The guide's example: two header lines (rejected as comment lines, their field order used),
    /// a trailing tab after the last field, an X-Forwarded-For list with spaces.
    /// The W3C header is the file's frame: used for the field order, neither a record nor a rejected line.
    @Test func cloudFrontHeaderIsReadAndCountedAsFrame() throws {
        let importer = try Self.importer("cloudfront")
        let line = importer.samples[0].lines[1].replacingOccurrences(of: "\t0.000\t-\t", with: "\t0.000\t1.2.3.4, 5.6.7.8, 9.10.11.12\t") + "\t"
        let sink = try parse(importer, Self.header + [line], path: "/logs/E2EXAMPLE1ABCD.2019-12-04-21.a1b2c3d4.gz")
        #expect(sink.rejected.isEmpty && sink.framingLines == 2)
        let e = try #require(sink.events.first)
        #expect(e.forwardedFor == "1.2.3.4, 5.6.7.8, 9.10.11.12")
        #expect(e.clientIP == "192.0.2.100")
        #expect(e.extra["range_end"] == nil)
        #expect(ImporterRegistry.standard.detect(Self.header + [line], fileName: "E2EXAMPLE1ABCD.2019-12-04-21.a1b2c3d4.gz").importer?.id == "cloudfront")
    }

    /// A distribution that logs fewer fields, in another order: read by name.
    @Test func cloudFrontFieldsComeFromTheHeader() throws {
        let importer = try Self.importer("cloudfront")
        let lines = ["#Version: 1.0", "#Fields: date time c-ip cs-method cs-uri-stem sc-status x-edge-request-id x-edge-detailed-result-type x-edge-result-type c-country",
                     "2024-05-01\t10:00:00\t2001:db8::1\tGET\t/a%20b/%E2%9C%93\t403\tREQ1==\tClientGeoBlocked\tError\tFR"]
        let sink = try parse(importer, lines)
        let e = try #require(sink.events.first)
        #expect(e.clientIP == "2001:db8::1")
        #expect(e.path == "/a b/✓")
        #expect(e.status == 403 && e.error == "ClientGeoBlocked" && e.requestID == "REQ1==")
        #expect(e.extra["c_country"] == "FR")
        #expect(sink.notes.contains { $0.contains("c-country") })
    }

    @Test func cloudFrontRejectsAndNotes() throws {
        let importer = try Self.importer("cloudfront")
        let good = importer.samples[0].lines[0]
        var f = good.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
        // A client that is no IP address, a path that is not valid percent-encoding.
        f[4] = "not-an-ip"
        f[7] = "/bad%zzpath"
        let sink = try parse(importer, [f.joined(separator: "\t"),
                                        "2019-12-04\t21:02:31\tLAX1\t392",                      // cut short
                                        good.replacingOccurrences(of: "\t200\t", with: "\t2x0\t"), // status
                                        good.replacingOccurrences(of: "2019-12-04", with: "2019-13-04")])
        let e = try #require(sink.events.first)
        #expect(e.clientIP == nil && e.extra["client_text"] == "not-an-ip")
        #expect(e.path == nil && e.extra["cs_uri_stem_text"] == "/bad%zzpath")
        #expect(sink.notes.contains { $0.contains("not valid URL encoding") })
        #expect(sink.notes.contains { $0.contains("client_text") })
        #expect(sink.rejected.count == 3)
        #expect(sink.rejected[0].reason.hasPrefix("only 4 tab-separated fields"))
        #expect(sink.rejected[1].reason.contains("sc-status"))
        #expect(sink.rejected[2].reason.contains("not YYYY-MM-DD"))
    }

    // MARK: - NLB

    @Test func nlbTLSConnectionEveryField() throws {
        let importer = try Self.importer("nlb")
        let sink = try parse(importer, importer.samples[0].lines)
        #expect(sink.rejected.isEmpty)
        let e = try #require(sink.events.first)
        #expect(e.layer == .nlb && e.kind == .access)
        #expect(e.time == AWSTime.iso8601("2018-12-20T02:59:40Z"))
        #expect(e.extra["type"] == "tls" && e.extra["version"] == "2.0")
        #expect(e.extra["elb"] == "net/my-network-loadbalancer/c6e77e28c25b2234" && e.extra["listener"] == "g3d4b5e8bb8464cd")
        #expect(e.clientIP == "72.21.218.154" && e.extra["client_port"] == "51341")
        #expect(e.extra["target"] == "172.100.100.185:443")
        #expect(e.duration == 5_000 && e.extra["connection_time"] == "5" && e.extra["tls_handshake_time"] == "2")
        #expect(e.extra["received_bytes"] == "98" && e.bytes == 246)
        #expect(e.extra["incoming_tls_alert"] == nil && e.error == nil)
        #expect(e.extra["chosen_cert_arn"] == "arn:aws:acm:us-east-2:671290407336:certificate/2a108f19-aded-46b0-8493-c63eb1ef4a99")
        #expect(e.extra["chosen_cert_serial"] == nil)
        #expect(e.extra["tls_cipher"] == "ECDHE-RSA-AES128-SHA" && e.extra["tls_protocol_version"] == "tlsv12")
        #expect(e.extra["tls_named_group"] == nil)
        #expect(e.host == "my-network-loadbalancer-c6e77e28c25b2234.elb.us-east-2.amazonaws.com")
        #expect(e.extra["alpn_fe_protocol"] == nil)
        #expect(e.extra["tls_connection_creation_time"] == "2018-12-20T02:59:30")
        #expect(e.extra["connection_creation_us"] == AWSTime.iso8601("2018-12-20T02:59:30Z").map(String.init))
        #expect(e.method == nil && e.path == nil && e.status == nil)
        let alpn = sink.events[1]
        #expect(alpn.extra["alpn_fe_protocol"] == "h2" && alpn.extra["alpn_be_protocol"] == "h2")
        #expect(alpn.extra["alpn_client_preference_list"] == #""h2","http/1.1""#)
    }

    @Test func nlbRejectsShortAndBadLines() throws {
        let importer = try Self.importer("nlb")
        let good = importer.samples[0].lines[0]
        let sink = try parse(importer, ["tls 2.0 2018-12-20T02:59:40 net/x/1 l 72.21.218.154:51341",
                                        good.replacingOccurrences(of: " 5 2 98 ", with: " five 2 98 ")])
        #expect(sink.events.isEmpty)
        #expect(sink.rejected.map(\.reason).first?.hasPrefix("only 6 fields") == true)
        #expect(sink.rejected.last?.reason.contains("connection_time") == true)
        // The ALB importer still says what such a line is.
        let alb = try parse(try Self.importer("alb"), [good])
        #expect(alb.rejected.first?.reason.contains("Network Load Balancer") == true)
    }

    // MARK: - ALB connection log

    @Test func albConnectionLogEveryField() throws {
        let importer = try Self.importer("alb-connection")
        let sink = try parse(importer, importer.samples[0].lines)
        #expect(sink.rejected.isEmpty)
        let ok = sink.events[0], failed = sink.events[1]
        #expect(ok.layer == .alb && ok.kind == .log)
        #expect(ok.time == AWSTime.iso8601("2023-10-04T17:05:15.514108Z"))
        #expect(ok.clientIP == "203.0.113.1" && ok.extra["client_port"] == "36280" && ok.extra["listener_port"] == "443")
        #expect(ok.extra["tls_protocol"] == "TLSv1.2" && ok.extra["tls_cipher"] == "ECDHE-RSA-AES128-GCM-SHA256")
        #expect(ok.extra["tls_handshake_latency"] == "4.036" && ok.duration == 4_036_000)
        #expect(ok.extra["leaf_client_cert_subject"] == "CN=amazondomains.com,O=endEntity,L=Seattle,ST=Washington,C=US")
        #expect(ok.extra["leaf_client_cert_validity"] == "NotBefore=2023-09-21T22:43:21Z;NotAfter=2026-06-17T22:43:21Z")
        #expect(ok.extra["leaf_client_cert_serial_number"] == "FEF257372D5C14D4")
        #expect(ok.extra["tls_verify_status"] == "Success" && ok.error == nil)
        #expect(ok.extra["conn_trace_id"] == "TID_3180a73013c8ca4bac2f731159d4b0fe")
        #expect(failed.duration == nil && failed.extra["tls_handshake_latency"] == nil)
        #expect(failed.error == "Failed:ClientCertUntrusted")
    }

    @Test func albConnectionLogRejectsTooFewFields() throws {
        let importer = try Self.importer("alb-connection")
        // Ten fields: no serial number, no verify status in its place.
        let sink = try parse(importer, [#"2023-10-04T17:03:17.123456Z 203.0.113.1 41086 443 TLSv1.2 ECDHE-RSA-AES128-GCM-SHA256 12 "-" - Success"#])
        #expect(sink.events.isEmpty)
        #expect(sink.rejected.first?.reason.hasPrefix("only 10 fields") == true)
    }
}

extension EdgeFormatTests {
    /// A CloudFront object as S3 holds it (gzipped, `DISTID.YYYY-MM-DD-HH.unique.gz`), through the
    /// whole pipeline: detected, both header lines counted as comments, every record stored; a
    /// question about another hour does not read it.
    @Test func aGzippedCloudFrontObjectThroughIngest() throws {
        let importer = try Self.importer("cloudfront")
        let text = (Self.header + importer.samples[0].lines).joined(separator: "\n") + "\n"
        let dir = try TemporaryDirectory()
        try dir.write("E2EXAMPLE1ABCD.2019-12-04-21.a1b2c3d4.gz", bytes: GzipInflater.gzip(Array(text.utf8)))
        let store = try TimelineStore()
        let outcome = try TimelineUpdate.run(store: store, paths: [dir.path], options: ImportOptions())
        let file = try #require(outcome.ingest.files.first)
        #expect(file.format == "cloudfront")
        #expect(file.lines == 6 && file.events == 4 && file.rejected == 0)
        var later = ImportOptions()
        later.window = (AWSTime.iso8601("2019-12-05T10:00:00Z")!)...(AWSTime.iso8601("2019-12-05T10:05:00Z")!)
        #expect(WindowPlan.reasonToSkip(path: dir.path + "/E2EXAMPLE1ABCD.2019-12-04-21.a1b2c3d4.gz", window: later.window!) != nil)
    }
}
