import Foundation
import Testing
@testable import InvestigateKit

/// The AWS importers on their own samples, on real corpus files and on hostile input.
@Suite struct AWSImporterTests {
    static let awsIDs = ["waf", "alb", "elb-classic", "apigateway-access", "apigateway-execution", "lambda",
                         "cloudwatch-export", "cloudwatch-json", "cloudwatch-tail", "cloudwatch-insights", "cloudwatch-subscription"]

    static func importer(_ id: String) throws -> any Importer {
        try #require(ImporterRegistry.standard.importer(id: id), "importer \(id) is registered")
    }

    @Test(arguments: awsIDs)
    func samplesParseCleanlyAndAreDetected(id: String) throws {
        let importer = try Self.importer(id)
        #expect(!importer.samples.isEmpty)
        #expect(importer.documentation.hasPrefix("https://docs.aws.amazon.com/"))
        #expect(!importer.fieldNotes.isEmpty)
        for sample in importer.samples {
            let sink = try parse(importer, sample.lines, path: "/logs/\(sample.fileName)")
            #expect(sink.rejected.isEmpty, "\(id) rejects its sample \(sample.fileName): \(sink.rejected.map(\.reason))")
            #expect(!sink.events.isEmpty)
            let detected = ImporterRegistry.standard.detect(sample.lines, fileName: sample.fileName).importer?.id
            #expect(detected == id, "sample \(sample.fileName) detected as \(detected ?? "nothing")")
        }
    }

    @Test func awsImportersDoNotClaimOtherFormatsSamples() {
        for importer in ImporterRegistry.standard.importers where !Self.awsIDs.contains(importer.id) {
            for sample in importer.samples {
                let detected = ImporterRegistry.standard.detect(sample.lines, fileName: sample.fileName).importer?.id
                #expect(!Self.awsIDs.contains(detected ?? ""), "\(importer.id) sample \(sample.fileName) detected as \(detected ?? "-")")
                for id in Self.awsIDs {
                    let score = ImporterRegistry.standard.importer(id: id)?.recognize(sample.lines, fileName: sample.fileName) ?? 0
                    #expect(score < 1 || id == "apigateway-access", "\(id) scores \(score) on \(importer.id)'s sample")
                }
            }
        }
    }

    // MARK: - WAF

    @Test func wafBlockByManagedRuleGroupFromALB() throws {
        let importer = try Self.importer("waf")
        let sink = try parse(importer, [importer.samples[0].lines[0]])
        let e = try #require(sink.events.first)
        #expect(e.layer == .waf && e.kind == .access)
        #expect(e.time == 1_684_825_816_966_000)
        #expect(e.wafAction == "BLOCK")
        #expect(e.status == 403)
        #expect(e.wafRule == "AWS-AWSManagedRulesAnonymousIpList")
        #expect(e.extra["waf_subrule"] == "AWS#AWSManagedRulesAnonymousIpList:HostingProviderIPList")
        #expect(e.clientIP == "185.254.196.186")
        #expect(e.path == "/.env" && e.query == "REDACTED" && e.method == "GET")
        #expect(e.host == "52.54.199.152")
        #expect(e.userAgent?.hasPrefix("Mozilla/5.0") == true)
        #expect(e.traceID == "1-646c66d8-23174f95617bd0c633b81f3a")
        #expect(e.requestID == "1-646c66d8-23174f95617bd0c633b81f3a")
        #expect(e.extra["labels"] == "awswaf:managed:aws:anonymous-ip-list:HostingProviderIPList")
        #expect(e.extra["http_source_name"] == "ALB")
        #expect(e.extra["terminating_rule_type"] == "MANAGED_RULE_GROUP")
    }

    @Test func wafCaptchaUsesResponseCodeSentAndTraceHeader() throws {
        let importer = try Self.importer("waf")
        let e = try #require(try parse(importer, [importer.samples[0].lines[1]]).events.first)
        #expect(e.wafAction == "CAPTCHA" && e.status == 405)
        #expect(e.traceID == "1-614cc240-18b57ff33c10e5c016b508c5")
        #expect(e.requestID == "GINKHEssoAMFsrg=")
        #expect(e.forwardedFor == "72.21.198.65")
        #expect(e.query == nil)
        #expect(e.extra["captcha_failure"] == "TOKEN_MISSING")
    }

    @Test func wafStatusMapping() throws {
        let importer = try Self.importer("waf")
        func status(_ action: String, sent: String = "null") throws -> Int? {
            let line = #"{"timestamp":1700000000000,"action":"\#(action)","responseCodeSent":\#(sent),"httpRequest":{"clientIp":"192.0.2.1","uri":"/","headers":[]}}"#
            let sink = try parse(importer, [line])
            #expect(sink.rejected.isEmpty)
            return sink.events.first?.status
        }
        #expect(try status("ALLOW") == nil)
        #expect(try status("COUNT") == nil)
        #expect(try status("BLOCK") == 403)
        #expect(try status("CHALLENGE") == 202)
        #expect(try status("BLOCK", sent: "429") == 429)
        #expect(try status("BLOCK", sent: "\"418\"") == 418)
    }

    @Test func wafFirehoseRecordsBackToBackAreSplitEvenWithBracesInStrings() throws {
        let importer = try Self.importer("waf")
        let a = #"{"timestamp":1700000000000,"action":"ALLOW","httpRequest":{"clientIp":"192.0.2.1","uri":"/a}{b","headers":[{"name":"User-Agent","value":"x\"}{\"y"}]}}"#
        let b = #"{"timestamp":1700000001000,"action":"BLOCK","httpRequest":{"clientIp":"192.0.2.2","uri":"/c","headers":[]}}"#
        let sink = try parse(importer, [a + b + String(b.prefix(40))])
        #expect(sink.events.count == 2)
        #expect(sink.events.first?.path == "/a}{b")
        #expect(sink.events.first?.userAgent == #"x"}{"y"#)
        #expect(sink.events.last?.status == 403)
        #expect(sink.rejected.count == 1)
        #expect(sink.rejected.first?.reason.contains("truncated") == true)
    }

    @Test func wafHostileInputIsRejectedWithReasons() throws {
        let importer = try Self.importer("waf")
        let sink = try parse(importer, [
            #"{"timestamp":1700000000000,"action":"BLOCK","httpRequest":{"clientIp":"#,
            #"{"timestamp":"yesterday","action":"BLOCK","httpRequest":{}}"#,
            #"{"foo":1}"#,
            #"{"timestamp":1700000000000,"action":42,"responseCodeSent":"abc","httpRequest":{"clientIp":7,"headers":"nope","uri":["x"]}}"#,
            "garbage",
        ])
        #expect(sink.rejected.map(\.line) == [1, 2, 3, 5])
        #expect(sink.rejected.allSatisfy { !$0.reason.isEmpty && !$0.raw.isEmpty })
        let e = try #require(sink.events.first)
        #expect(e.line == 4 && e.status == nil && e.path == nil)
    }

    @Test func wafLargeValidRecordParses() throws {
        let importer = try Self.importer("waf")
        let header = #"{"name":"X-Pad","value":"\#(String(repeating: "a", count: 1000))"}"#
        let headers = Array(repeating: header, count: 3000).joined(separator: ",")
        let line = #"{"timestamp":1700000000000,"action":"BLOCK","httpRequest":{"clientIp":"192.0.2.1","uri":"/big","headers":[\#(headers),{"name":"host","value":"example.com"}]}}"#
        #expect(line.utf8.count > 3_000_000)
        let sink = try parse(importer, [line])
        #expect(sink.rejected.isEmpty)
        #expect(sink.events.first?.host == "example.com")
    }

    @Test(.enabled(if: Corpus.available)) func wafCorpusElastic() throws {
        let lines = try String(contentsOfFile: Corpus.path("elastic-integrations/test-waf.log"), encoding: .utf8)
            .split(separator: "\n").map(String.init)
        #expect(ImporterRegistry.standard.detect(lines, fileName: "test-waf.log").importer?.id == "waf")
        let sink = try parse(try Self.importer("waf"), lines)
        #expect(sink.rejected.isEmpty)
        #expect(sink.events.filter { $0.wafAction == "BLOCK" }.count == 3)
        #expect(sink.events.filter { $0.wafAction == "ALLOW" }.count == 1)
        #expect(sink.events.filter { $0.wafAction == "BLOCK" }.allSatisfy { $0.status == 403 })
    }

    // MARK: - ALB

    @Test func albLineIsMappedFieldByField() throws {
        let importer = try Self.importer("alb")
        let e = try #require(try parse(importer, [importer.samples[0].lines[0]]).events.first)
        #expect(e.time == CivilTime.micros(year: 2018, month: 7, day: 2, hour: 22, minute: 23, second: 0, micro: 186_641))
        #expect(e.clientIP == "192.168.131.39" && e.extra["client_port"] == "2817")
        #expect(e.peerIP == nil)
        #expect(e.extra["target"] == "10.0.0.1:80")
        #expect(e.duration == 171_000)
        #expect(e.status == 200 && e.elbStatus == 200 && e.targetStatus == 200)
        #expect(e.method == "GET" && e.host == "www.example.com" && e.path == "/")
        #expect(e.userAgent == "curl/7.46.0")
        #expect(e.traceID == "1-58337281-1d84f3d73c47ec4e58577259")
        #expect(e.extra["domain"] == "www.example.com")
        #expect(e.extra["actions_executed"] == "authenticate,forward")
        #expect(e.extra["request_creation_time"] == "2018-07-02T22:22:48.364000Z")
        #expect(e.extra["request_creation_us"] == String(CivilTime.micros(year: 2018, month: 7, day: 2, hour: 22, minute: 22, second: 48, micro: 364_000)))
        #expect(e.extra["matched_rule_priority"] == "1")
        #expect(e.bytes == 57)
        #expect(e.error == nil)
    }

    @Test func albNoTargetErrorReasonAndConnTrace() throws {
        let importer = try Self.importer("alb")
        let sink = try parse(importer, Array(importer.samples[0].lines[1...2]))
        let lambda = try #require(sink.events.first)
        #expect(lambda.status == 502 && lambda.targetStatus == nil && lambda.extra["target"] == nil)
        #expect(lambda.error == "LambdaInvalidResponse")
        let tid = try #require(sink.events.last)
        #expect(tid.extra["conn_trace_id"] == "TID_dc57cebed65b444ebc8177bb698fe166")
    }

    @Test func albSelfRootTraceAndMinusOneTimes() throws {
        let line = #"https 2023-04-26T19:53:47.809400Z app/x/490d 2.3.4.5:44750 - -1 -1 -1 403 - 203 167 "GET https://api.example.com:443/.awscfg?a=1 HTTP/1.1" "ua" - - - "Self=1-67891233-12456789abcdef012345678;Root=1-67891233-abcdef012345678912345678" "api.example.com" "-" 0 2023-04-26T19:53:47.808000Z "waf" "-" "-" "-" "-" "-" "-""#
        let e = try #require(try parse(try Self.importer("alb"), [line]).events.first)
        #expect(e.traceID == "1-67891233-abcdef012345678912345678")
        // -1: not dispatched; the client waited from request_creation_time to the response.
        #expect(e.duration == 1_400)
        #expect(e.query == "a=1" && e.path == "/.awscfg")
        #expect(e.extra["actions_executed"] == "waf")
        // The same -1 with decimals, as a log shipper may write it: no time, not a rejected line.
        let decimals = line.replacingOccurrences(of: " - -1 -1 -1 403 ", with: " - -1.000 -1.0 -1 403 ")
        #expect(decimals != line)
        let sink = try parse(try Self.importer("alb"), [decimals])
        #expect(sink.rejected.isEmpty)
        let d = try #require(sink.events.first)
        #expect(d.duration == 1_400 && d.status == 403)
        #expect(d.extra["request_processing_time"] == "-1.000")
        // A target that never answered: the other times' sum (1 ms) is not the minute the client waited.
        let idle = line.replacingOccurrences(of: " - -1 -1 -1 403 - ", with: " 10.0.1.12:80 0.001 -1 -1 504 - ")
            .replacingOccurrences(of: "2023-04-26T19:53:47.808000Z", with: "2023-04-26T19:52:47.808000Z")
        let i = try #require(try parse(try Self.importer("alb"), [idle]).events.first)
        #expect(i.status == 504 && i.duration == 60_001_400, "\(String(describing: i.duration))")
        // Other negative times are still refused.
        let negative = try parse(try Self.importer("alb"), [line.replacingOccurrences(of: " - -1 -1 -1 403 ", with: " - -1.5 -1 -1 403 ")])
        #expect(negative.events.isEmpty && negative.rejected.count == 1)
    }

    @Test func albBadLinesAreRejectedWithReasons() throws {
        let sink = try parse(try Self.importer("alb"), [
            "http 2018-07-02T22:23:00.186641Z app/my-loadbalancer/50dc6c495c0c9188 192.168.131.39:2817 10.0.0.1:80 0.086",
            #"http 2018-07-02T22:23:00.186641Z app/lb/1 1.2.3.4:1 - x 0 0 200 200 0 0 "GET / HTTP/1.1" "ua" - - - "Root=1-a" "-" "-" 0 2018-07-02T22:22:48.364000Z "forward" "-" "-""#,
            #"http 2018-07-02T22:23:00.186641Z app/lb/1 1.2.3.4:1 - 0 0 0 200 200 0 0 "GET / HTTP/1.1"#,
            "# comment",
            #"http 2018-07-02T22:23:00.186641Z app/lb/1 1.2.3.4:1 - 99999999999999999999999999.5 0 0 200 200 0 0 "GET / HTTP/1.1" "ua" - - - "Root=1-a" "-" "-" 0 2018-07-02T22:22:48.364000Z "forward" "-" "-""#,
        ])
        #expect(sink.events.isEmpty)
        #expect(sink.rejected.count == 5)
        #expect(sink.rejected[0].reason.contains("only 6 fields"))
        #expect(sink.rejected[1].reason.contains("request_processing_time"))
        #expect(sink.rejected[2].reason.contains("unterminated"))
    }

    @Test(.enabled(if: Corpus.available)) func albCorpusElasticMixedFile() throws {
        let lines = try String(contentsOfFile: Corpus.path("elastic-integrations/test-alb.log"), encoding: .utf8)
            .split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        #expect(ImporterRegistry.standard.detect(lines, fileName: "test-alb.log").importer?.id == "alb")
        let sink = try parse(try Self.importer("alb"), lines)
        #expect(sink.events.count == 3)
        #expect(sink.rejected.count == 7)
        #expect(sink.rejected.filter { $0.reason.contains("Network Load Balancer") }.count == 4)
        #expect(sink.rejected.filter { $0.reason.contains("connection-log") }.count == 3)
        let malformed = try #require(sink.events.last)
        #expect(malformed.method == nil && malformed.extra["request"] != nil)
        #expect(sink.events[1].extra["classification"] == "Acceptable")
    }

    @Test(.enabled(if: Corpus.available)) func albCorpusCrowdsecSplicedLine() throws {
        let lines = try String(contentsOfFile: Corpus.path("crowdsec-hub/aws-alb-logs.log"), encoding: .utf8)
            .split(separator: "\n").map(String.init)
        let sink = try parse(try Self.importer("alb"), lines)
        #expect(sink.rejected.map(\.line) == [6])
        #expect(sink.events.count == lines.count - 1)
        #expect(sink.events.filter { $0.extra["actions_executed"] == "waf,fixed-response" }.count >= 2)
    }

    @Test func classicELB() throws {
        let importer = try Self.importer("elb-classic")
        let sink = try parse(importer, importer.samples[0].lines)
        #expect(sink.events.count == 3)
        #expect(sink.events[0].duration == 1_178)
        #expect(sink.events[2].status == nil && sink.events[2].extra["request"] == "- - - ")
        #expect(sink.events[1].extra["ssl_protocol"] == "TLSv1.2")
    }

    // MARK: - API Gateway access

    @Test func apiGatewayJSONWithStringAndNumberTypes() throws {
        let importer = try Self.importer("apigateway-access")
        let sink = try parse(importer, [
            #"{"requestId":"r1","extendedRequestId":"K2G9wEbUoAMEvag=","ip":"203.0.113.7","requestTimeEpoch":1738819965000,"httpMethod":"POST","path":"/prod/pets?x=1","resourcePath":"/pets","status":403,"responseLength":"36","error":"Forbidden","integrationStatus":"-","responseLatency":"12","wafResponseCode":"WAF_BLOCK","xrayTraceId":"Root=1-67a44b7d-abcdef012345678912345678","custom":{"a":1},"stage":"prod"}"#,
            #"{"requestId":"r2","requestTime":"06/Feb/2025:05:32:45 +0000","httpMethod":"GET","routeKey":"GET /items/{id}","status":"teapot","integrationStatus":"502","integrationErrorMessage":"The Lambda function returned the following error"}"#,
            #"{"requestId":"r3","status":"#,
            #"{"hello":"world"}"#,
        ])
        #expect(sink.rejected.map(\.line) == [3, 4])
        let a = try #require(sink.events.first)
        #expect(a.status == 403 && a.bytes == 36 && a.error == "Forbidden" && a.targetStatus == nil)
        #expect(a.time == 1_738_819_965_000_000)
        #expect(a.path == "/prod/pets" && a.query == "x=1" && a.extra["resource_path"] == "/pets")
        #expect(a.extra["extended_request_id"] == "K2G9wEbUoAMEvag=")
        #expect(a.duration == 12_000 && a.wafAction == "BLOCK")
        #expect(a.traceID == "1-67a44b7d-abcdef012345678912345678")
        #expect(a.extra["stage"] == "prod" && a.extra["custom.a"] == "1")
        let b = try #require(sink.events.last)
        #expect(b.status == nil && b.extra["status"] == "teapot" && b.extra["problems"]?.contains("status") == true)
        #expect(b.targetStatus == 502 && b.path == "/items/{id}" && b.method == "GET")
        #expect(b.extra["integration_error"] == "The Lambda function returned the following error")
        #expect(b.time == CivilTime.micros(year: 2025, month: 2, day: 6, hour: 5, minute: 32, second: 45))
    }

    @Test func apiGatewayConsoleFormats() throws {
        let importer = try Self.importer("apigateway-access")
        let sink = try parse(importer, [
            #"203.0.113.7 - - [06/Feb/2025:05:32:45 +0000] "GET /pets/{petId} HTTP/1.1" 502 36 fbcaf9e5-d535-40a1-891c-7b70118cf7e8 K2G9wEbUoAMEvag="#,
            #"K2G9wEbUoAMEvag= 203.0.113.7 - - [06/Feb/2025:05:32:45 +0000] "GET /pets HTTP/1.1" 200 36 fbcaf9e5-d535-40a1-891c-7b70118cf7e8"#,
        ] + importer.samples[1].lines + importer.samples[2].lines)
        #expect(sink.rejected.isEmpty)
        #expect(sink.events.count == 5)
        #expect(sink.events.allSatisfy { $0.extra["extended_request_id"] != nil || $0.requestID != nil })
        #expect(sink.events[0].status == 502 && sink.events[0].path == "/pets/{petId}" && sink.events[0].clientIP == "203.0.113.7")
        #expect(sink.events[1].extra["extended_request_id"] == "K2G9wEbUoAMEvag=" && sink.events[1].clientIP == "203.0.113.7")
        #expect(sink.events[2].requestID == "fbcaf9e5-d535-40a1-891c-7b70118cf7e8" && sink.events[2].status == 502)
        #expect(sink.events[3].method == "GET" && sink.events[3].path == "/pets")
        #expect(sink.events[4].requestID == "48752d0f-c99d-4cfa-a5a7-f3c6834d19e5" && sink.events[4].bytes == 184)
    }

    /// The console's CLF preset with `$context` variables appended (here integrationLatency): the
    /// preset's fields are read, the appended ones kept as written, and detection picks API Gateway
    /// over nginx, whose reader would take the line too.
    @Test func apiGatewayCLFWithAppendedFields() throws {
        let lines = (0..<6).map { i in
            #"203.0.113.\#(i + 1) - - [22/Sep/2025:08:10:0\#(i) +0000] "GET /reports/{id} HTTP/1.1" 200 2176 a07423bb-fb30-4cb9-9e27-d9d670ca62a\#(i) EN68k4tUNpfZ46= 776"#
        }
        #expect(ImporterRegistry.standard.detect(lines, fileName: "apigw/access-2025-09-22.log").importer?.id == "apigateway-access")
        let sink = try parse(try Self.importer("apigateway-access"), lines)
        #expect(sink.rejected.isEmpty && sink.events.count == 6)
        let e = sink.events[0]
        #expect(e.status == 200 && e.bytes == 2176 && e.requestID == "a07423bb-fb30-4cb9-9e27-d9d670ca62a0")
        #expect(e.extra["extended_request_id"] == "EN68k4tUNpfZ46=")
        #expect(e.extra["clf_appended_fields"] == "776")
        // nginx's own unquoted trailing fields are no request id: still nginx's.
        let nginx = lines.map { $0.replacingOccurrences(of: #"a07423bb-fb30-4cb9-9e27-d9d670ca62a"#, with: "rt=0.00") }
        #expect(ImporterRegistry.standard.detect(nginx, fileName: "nginx/access.log").importer?.id == "nginx-access")
    }

    @Test(.enabled(if: Corpus.available)) func apiGatewayCorpus() throws {
        for (file, count) in [("elastic-integrations/test-apigateway-rest.log", 5), ("elastic-integrations/test-apigateway.log", 2)] {
            let lines = try String(contentsOfFile: Corpus.path(file), encoding: .utf8).split(separator: "\n").map(String.init)
            #expect(ImporterRegistry.standard.detect(lines, fileName: (file as NSString).lastPathComponent).importer?.id == "apigateway-access")
            let sink = try parse(try Self.importer("apigateway-access"), lines)
            #expect(sink.rejected.isEmpty)
            #expect(sink.events.count == count)
            #expect(sink.events.allSatisfy { $0.status == 200 && $0.time != nil && $0.clientIP == "1.128.0.0" })
        }
    }

    // MARK: - API Gateway execution

    @Test func executionLinesAreGroupedPerRequest() throws {
        let importer = try Self.importer("apigateway-execution")
        let sink = try parse(importer, importer.samples[0].lines)
        #expect(sink.rejected.isEmpty)
        #expect(sink.events.count == 2)
        let timeout = try #require(sink.events.first { $0.requestID == "286364ab-3a83-11e9-8dc8-db3cf4c83204" })
        #expect(timeout.status == 502)
        #expect(timeout.duration == 11_029_000)
        #expect(timeout.method == "GET" && timeout.path == "/echo")
        #expect(timeout.extra["lambda_request_id"] == "71952965-d5cc-4974-ae08-6e2138b2275c")
        #expect(timeout.extra["extended_request_id"] == "Vwc2MGFUrPEFV_g=")
        #expect(timeout.traceID == "1-5c7674f4-a3491d0a9c8012c191821b83")
        #expect(timeout.error?.hasPrefix("Lambda execution failed") == true)
        #expect(timeout.forwardedFor == "62.254.81.74, 52.46.38.85" && timeout.clientIP == "62.254.81.74")
        #expect(timeout.line == 1 && timeout.lineEnd == 12)
        #expect(String(decoding: timeout.raw, as: UTF8.self).split(separator: "\n").count == 10)
        let throttle = try #require(sink.events.first { $0.requestID == "4f3e3b0f-39db-11e9-9c2e-5bd7c2de5998" })
        #expect(throttle.status == 429 && throttle.error?.contains("throttle") == true)
    }

    @Test func executionStrayLineIsRejected() throws {
        let sink = try parse(try Self.importer("apigateway-execution"), ["no prefix here", "(fbcaf9e5-d535-40a1-891c-7b70118cf7e8) Execution failed due to a timeout error", "(fbcaf9e5-d535-40a1-891c-7b70118cf7e8) Method completed with status: 504"])
        #expect(sink.rejected.map(\.line) == [1])
        #expect(sink.events.first?.status == 504 && sink.events.first?.error == "Execution failed due to a timeout error")
    }

    // MARK: - Lambda

    @Test func lambdaPlatformAndRuntimeLines() throws {
        let importer = try Self.importer("lambda")
        let sink = try parse(importer, importer.samples[0].lines)
        #expect(sink.rejected.isEmpty)
        #expect(sink.events.count == 6)
        let start = sink.events[0]
        #expect(start.requestID == "8f507cfc-xmpl-4697-b07a-ac58fc914c95" && start.extra["version"] == "$LATEST" && start.time == nil)
        #expect(sink.events[1].level == "INFO" && sink.events[1].message == "## ENVIRONMENT VARIABLES" && sink.events[1].time != nil)
        let traceback = sink.events[2]
        #expect(traceback.level == "ERROR" && traceback.lineEnd == 4 && traceback.message?.contains("lambda_function.py") == true)
        let report = sink.events[4]
        #expect(report.duration == 15_740 && report.extra["billed_duration_ms"] == "16" && report.extra["init_duration_ms"] == "130.49")
        #expect(report.extra["max_memory_used_mb"] == "56" && report.traceID == "1-5e34a614-10bdxmplf1fb44f07bc535a1")
        #expect(report.lineEnd == 7)
        let timeout = sink.events[5]
        #expect(timeout.error == "Task timed out after 10.00 seconds" && timeout.requestID == "71952965-d5cc-4974-ae08-6e2138b2275c")
    }

    @Test func lambdaJSONFormat() throws {
        let importer = try Self.importer("lambda")
        let sink = try parse(importer, importer.samples[1].lines + [
            #"{"time":"2024-05-20T16:29:48.022Z","type":"platform.report","record":{"requestId":"x","status":"timeout","metrics":{"durationMs":"3000.1"}}}"#,
            #"{"time":"2024-05-20T16:29:48.022Z","type":"platform.report","record":"#,
            "INIT_REPORT Init Duration: 10002.22 ms\tPhase: init\tStatus: timeout",
        ])
        #expect(sink.events.last?.error == "init status: timeout" && sink.events.last?.extra["init_duration_ms"] == "10002.22")
        #expect(sink.rejected.map(\.line) == [5])
        #expect(sink.events[1].duration == 11_642 && sink.events[1].extra["max_memory_used_mb"] == "67")
        #expect(sink.events[2].message == "Inside the handler function" && sink.events[2].requestID == "79b4f56e-95b1-4643-9700-2807f4e68189")
        #expect(sink.events[2].extra["logger"] == "\"root\"" || sink.events[2].extra["logger"] == "root")
        #expect(sink.events[3].error?.contains("timeout") == true && sink.events[3].duration == 3_000_100)
    }
}
