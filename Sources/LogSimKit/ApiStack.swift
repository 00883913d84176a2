import Foundation

/// Names of the modelled REST API.
enum ApiTopology {
    static let account = "111122223333"
    static let region = "us-east-1"
    static let apiID = "k7q2x9m4ab"
    static let stage = "prod"
    static let function = "items-api"
    /// CloudWatch Logs export tasks, one per log group.
    static let accessTask = "3f9c2a71-5be4-4d0e-9a6c-81d2f4b7e013"
    static let executionTask = "b41e7d08-2c9a-4f63-8e15-6a0d93c2f7b4"
    static let lambdaTask = "e8a05c3d-7f21-4b96-a3d8-2c6f1e9b5a47"
    /// API Gateway's log streams, one per execution environment (hex names).
    static let gatewayStreams = ["4b5c1d8e7f3a2b6c9d0e1f2a3b4c5d6e", "9f8e7d6c5b4a39281706f5e4d3c2b1a0"]
    static var host: String { "\(apiID).execute-api.\(region).amazonaws.com" }
    static var functionArn: String { "arn:aws:lambda:\(region):\(account):function:\(function)" }
    static let throttleBurst = 20
    static let throttleRate = 10.0

    /// The API's resources: method + resource path template.
    static func route(_ method: String, _ path: String) -> (resource: String, resourceID: String)? {
        switch (method, path) {
        case ("GET", "/items"): return ("/items", "a1b2c3")
        case ("GET", "/health"): return ("/health", "h7i8j9")
        case ("POST", "/orders"): return ("/orders", "k0w8mc")
        case ("GET", _) where path.hasPrefix("/items/") && path.dropFirst(7).allSatisfy(\.isNumber) && path.count > 7:
            return ("/items/{id}", "d4e5f6")
        default: return nil
        }
    }
}

/// Plays requests through client → API Gateway (REST, Lambda proxy) → Lambda and writes the
/// access log, the execution log and the function's log as CloudWatch Logs exports.
final class ApiModel {
    private let out: Emitter
    private var rng: SimRandom
    private let access: [Int?], execution: [Int?]
    private let lambdaEnabled: Bool
    private var environments: [(stream: Int?, busyUntil: Int64)] = []
    private var tokens = Double(ApiTopology.throttleBurst)
    private var tokensAt: Int64 = 0
    private var count = 0
    private let seed: UInt64
    private let metricsEnabled: Bool
    /// What API Gateway's metrics count per minute of arrival: every request, its 4xx and 5xx.
    /// Metrics count every response, whether or not a log was written.
    private var perMinute: [Int64: (count: Int, c4: Int, c5: Int)] = [:]

    init(config: SimulationConfig, out: Emitter) {
        self.out = out
        seed = config.seed
        rng = SimRandom(seed: SplitMix64.hash(config.seed, 2))
        let t = ApiTopology.self
        access = t.gatewayStreams.map { stream in
            config.writes(.apigatewayAccess) ? out.register(SingleFileStream("exportedlogs/\(t.accessTask)/\(stream)/000000.gz", gzip: true)) : nil
        }
        execution = t.gatewayStreams.map { stream in
            config.writes(.apigatewayExecution) ? out.register(SingleFileStream("exportedlogs/\(t.executionTask)/\(stream)/000000.gz", gzip: true)) : nil
        }
        lambdaEnabled = config.writes(.lambda)
        metricsEnabled = config.writes(.apigatewayMetrics)
        tokensAt = config.start
    }

    /// Writes `metrics/metric-data-queries.json` (the queries, as given to `--metric-data-queries`)
    /// and `metrics/get-metric-data.json` (the CLI's output: newest datapoint first, one per
    /// minute that had requests).
    func writeMetrics(into root: URL) throws {
        guard metricsEnabled, !perMinute.isEmpty else { return }
        let dir = root.appendingPathComponent("metrics")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let metrics = [("m1", "4XXError"), ("m2", "5XXError"), ("m3", "Count")]
        let queries = metrics.map { id, name in
            """
                {
                    "Id": "\(id)",
                    "MetricStat": {
                        "Metric": {
                            "Namespace": "AWS/ApiGateway",
                            "MetricName": "\(name)",
                            "Dimensions": [
                                {
                                    "Name": "ApiName",
                                    "Value": "\(ApiTopology.function)"
                                },
                                {
                                    "Name": "Stage",
                                    "Value": "\(ApiTopology.stage)"
                                }
                            ]
                        },
                        "Period": 60,
                        "Stat": "Sum"
                    }
                }
            """
        }
        try Data(("[\n" + queries.joined(separator: ",\n") + "\n]\n").utf8).write(to: dir.appendingPathComponent("metric-data-queries.json"))
        let minutes = perMinute.keys.sorted(by: >)
        func stamp(_ t: Int64) -> String { String(SimClock.isoMillis(t).prefix(19)) + "+00:00" }
        let results = metrics.map { id, name -> String in
            let values = minutes.map { m -> Int in
                let v = perMinute[m]!
                return name == "4XXError" ? v.c4 : name == "5XXError" ? v.c5 : v.count
            }
            return """
                    {
                        "Id": "\(id)",
                        "Label": "\(name)",
                        "Timestamps": [
            \(minutes.map { "                \"\(stamp($0))\"" }.joined(separator: ",\n"))
                        ],
                        "Values": [
            \(values.map { "                \($0).0" }.joined(separator: ",\n"))
                        ],
                        "StatusCode": "Complete"
                    }
            """
        }
        let output = "{\n    \"MetricDataResults\": [\n" + results.joined(separator: ",\n") + "\n    ],\n    \"Messages\": []\n}\n"
        try Data(output.utf8).write(to: dir.appendingPathComponent("get-metric-data.json"))
    }

    static func scheduledRequests(_ config: SimulationConfig) -> [ClientRequest] {
        guard case .apiBotScan(let at, let ip, let n)? = config.incident else { return [] }
        var r = SimRandom(seed: SplitMix64.hash(config.seed, 21))
        var clock = at
        var requests: [ClientRequest] = []
        for i in 0..<n {
            clock += Int64(r.exponential(mean: 350_000)) + 30_000
            let path = i < 3 ? "/aa.php" : (r.chance(0.3) ? "/aa.php" : r.pick(Population.botScriptPaths))
            requests.append(ClientRequest(arrival: clock, clientIP: ip, country: "-",
                                          userAgent: "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
                                          method: r.chance(0.85) ? "GET" : "POST", path: path, kind: .scanner(hosting: true)))
        }
        return requests
    }

    private func newEnvironment(at time: Int64) -> Int {
        var stream: Int?
        if lambdaEnabled {
            let name = "\(SimClock.slashed(time, withHourMinute: false))/[$LATEST]\(rng.hex(32))"
            stream = out.register(SingleFileStream("exportedlogs/\(ApiTopology.lambdaTask)/\(name)/000000.gz", gzip: true))
        }
        environments.append((stream, time))
        return environments.count - 1
    }

    func play(_ r: ClientRequest) throws {
        count += 1
        let t0 = r.arrival
        let requestID = rng.uuid()
        let extended = rng.base64ID(15)
        let trace = "1-" + String(t0 / 1_000_000, radix: 16) + "-" + rng.hex(24)
        let entry = TruthEntry(id: String(format: "a%07d", count), time: t0, clientIP: r.clientIP, method: r.method,
                               path: r.path, status: nil, responder: "apigateway", cause: nil, reason: "ok",
                               ids: [("request_id", requestID), ("extended_request_id", extended)])
        let id = out.begin(entry)
        defer { out.seal(id) }
        let gateway = Int(SplitMix64.mix(requestID.hashValue8) % UInt64(ApiTopology.gatewayStreams.count))
        let accessStream = access[gateway], executionStream = execution[gateway]
        func prefixed(_ time: Int64, _ message: String) -> String { "\(SimClock.isoMillis(time)) \(message)" }
        func exec(_ time: Int64, _ message: String) {
            out.emit(time, executionStream, "apigateway-execution", prefixed(time, "(\(requestID)) \(message)"), request: id)
        }
        func accessLine(_ time: Int64, status: Int, length: Int, error: String, integration: String, resource: String) {
            let fields: [(String, String)] = [
                ("requestId", requestID), ("extendedRequestId", extended), ("ip", r.clientIP),
                ("requestTime", SimClock.clf(t0, offset: 0)), ("httpMethod", r.method), ("resourcePath", resource),
                ("path", "/\(ApiTopology.stage)\(r.path)"), ("status", String(status)), ("protocol", "HTTP/1.1"),
                ("responseLength", String(length)), ("error", error), ("integrationStatus", integration),
            ]
            let minute = t0 / 60_000_000 * 60_000_000
            var m = perMinute[minute] ?? (0, 0, 0)
            m.count += 1
            if status / 100 == 4 { m.c4 += 1 }
            if status / 100 == 5 { m.c5 += 1 }
            perMinute[minute] = m
            let json = "{ " + fields.map { "\"\($0.0)\":\(Emitter.jsonString($0.1))" }.joined(separator: ", ") + " }"
            out.emit(time, accessStream, "apigateway-access", prefixed(time, json), request: id)
        }

        // Unknown method/path: API Gateway's MISSING_AUTHENTICATION_TOKEN, not in the execution log.
        guard let route = ApiTopology.route(r.method, r.path) else {
            let end = t0 + Int64(rng.int(900...3500))
            accessLine(end, status: 403, length: 42, error: "Missing Authentication Token", integration: "-", resource: "-")
            out.update(id) { $0.status = 403; $0.cause = "client"; $0.reason = "missing-authentication-token" }
            return
        }

        // Stage throttling: a token bucket.
        tokens = min(Double(ApiTopology.throttleBurst), tokens + Double(t0 - tokensAt) / 1e6 * ApiTopology.throttleRate)
        tokensAt = t0
        if tokens < 1 {
            let end = t0 + Int64(rng.int(500...2000))
            exec(t0 + 300, "Extended Request Id: \(extended)")
            exec(end - 100, "Stage throttle limit exceeded for RestApi \(ApiTopology.apiID), Stage \(ApiTopology.stage), Resource \(route.resourceID), HttpMethod \(r.method). Limit: \(Int(ApiTopology.throttleRate)).00 Burst: \(ApiTopology.throttleBurst)")
            exec(end, "Method completed with status: 429")
            accessLine(end, status: 429, length: 31, error: "Too Many Requests", integration: "-", resource: route.resource)
            out.update(id) { $0.status = 429; $0.cause = "client"; $0.reason = "throttled" }
            return
        }
        tokens -= 1

        let lambdaID = rng.uuid()
        var t = t0 + Int64(rng.int(400...1200))
        exec(t, "Extended Request Id: \(extended)")
        exec(t, "Verifying Usage Plan for request: \(requestID). API Key: API Stage: \(ApiTopology.apiID)/\(ApiTopology.stage)")
        exec(t + 3, "API Key authorized because method '\(r.method) \(route.resource)' does not require API Key. Request will not contribute to throttle or quota limits")
        exec(t + 5, "Usage Plan check succeeded for API Key and API Stage \(ApiTopology.apiID)/\(ApiTopology.stage)")
        exec(t + 8, "Starting execution for request: \(requestID)")
        exec(t + 9, "HTTP Method: \(r.method), Resource Path: \(r.path)")
        let pathParams = route.resource == "/items/{id}" ? "{id=\(r.path.dropFirst(7))}" : "{}"
        let query = r.query.isEmpty ? "{}" : "{" + r.query.replacingOccurrences(of: "&", with: ", ") + "}"
        exec(t + 10, "Method request path: \(pathParams)")
        exec(t + 11, "Method request query string: \(query)")
        exec(t + 12, "Method request headers: {Accept=application/json, Host=\(ApiTopology.host), User-Agent=\(r.userAgent), X-Amzn-Trace-Id=Root=\(trace), X-Forwarded-For=\(r.clientIP), X-Forwarded-Port=443, X-Forwarded-Proto=https}")
        exec(t + 13, "Method request body before transformations: \(r.method == "POST" ? "{\"sku\":\"A-\(rng.int(100...999))\",\"qty\":\(rng.int(1...5))}" : "")")
        let uri = "https://lambda.\(ApiTopology.region).amazonaws.com/2015-03-31/functions/\(ApiTopology.functionArn)/invocations"
        exec(t + 20, "Endpoint request URI: \(uri)")
        t += Int64(rng.int(800...2500))
        exec(t, "Sending request to \(uri)")

        // Lambda: a free execution environment, or a cold start in a new one.
        let start = t + Int64(rng.int(2000...8000))
        var env = environments.firstIndex { $0.busyUntil <= start } ?? -1
        var initDuration: Int64 = 0
        if env < 0 {
            env = newEnvironment(at: start)
            initDuration = Int64(rng.logNormal(median: 230_000, sigma: 0.2))
        }
        let (status, length, median) = lambdaResult(r)
        let duration = Int64(rng.logNormal(median: median, sigma: 0.5)) + 800
        let begin = start + initDuration
        let end = begin + duration
        environments[env].busyUntil = end + 1000
        let lambdaStream = environments[env].stream
        func lambda(_ time: Int64, _ message: String) {
            out.emit(time, lambdaStream, "lambda", prefixed(time, message), request: id)
        }
        lambda(begin, "START RequestId: \(lambdaID) Version: $LATEST")
        let logAt = begin + duration / 2
        lambda(logAt, "[INFO]\t\(SimClock.isoMillis(logAt))\t\(lambdaID)\t\(r.method) \(r.path) -> \(status)")
        lambda(end, "END RequestId: \(lambdaID)")
        let billed = (duration + 999) / 1000
        var report = "REPORT RequestId: \(lambdaID)\tDuration: \(SimClock.millis2(duration)) ms\tBilled Duration: \(billed) ms\tMemory Size: 256 MB\tMax Memory Used: \(rng.int(71...96)) MB"
        if initDuration > 0 { report += "\tInit Duration: \(SimClock.millis2(initDuration)) ms" }
        lambda(end + 400, report)

        let received = end + Int64(rng.int(1500...4000))
        let latency = (received - t) / 1000
        exec(received, "Received response. Status: 200, Integration latency: \(latency) ms")
        exec(received + 40, "Endpoint response body before transformations: {\"statusCode\":\(status),\"body\":\"...\"}")
        exec(received + 80, "Successfully completed execution")
        let done = received + Int64(rng.int(200...900))
        exec(done, "Method completed with status: \(status)")
        exec(done, "AWS Integration Endpoint RequestId : \(lambdaID)")
        accessLine(done + 200, status: status, length: length, error: "-", integration: "200", resource: route.resource)
        out.update(id) { entry in
            entry.status = status
            entry.responder = "lambda"
            entry.ids.append(("lambda_request_id", lambdaID))
            entry.ids.append(("trace_id", trace))
            if status == 404 { entry.cause = "client"; entry.reason = "not-found" }
            if status == 400 { entry.cause = "client"; entry.reason = "lambda-validation" }
        }
    }

    private func lambdaResult(_ r: ClientRequest) -> (Int, Int, Double) {
        switch r.path {
        case "/items": return (200, rng.int(2_000...8_000), 35_000)
        case "/health": return (200, 15, 2_000)
        case "/orders": return rng.chance(0.05) ? (400, 58, 12_000) : (201, 212, 80_000)
        default: return rng.chance(0.06) ? (404, 31, 9_000) : (200, 640, 18_000)
        }
    }
}
