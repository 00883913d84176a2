import Foundation

/// Names and addresses of the modelled edge stack.
enum EdgeTopology {
    static let account = "111122223333"
    static let region = "ap-northeast-1"
    static let webACL = "web-acl-prod"
    static let webACLID = "4f7d2c1a-8b3e-4d6f-9a21-5c0e7b3d9f12"
    static let lbName = "web-prod"
    static let lbID = "5f2c1a8e9b3d4c71"
    /// The ALB nodes' private addresses: what nginx sees as `$remote_addr`.
    static let albNodes = ["10.1.1.210", "10.1.1.211"]
    static let nginxHost = "10.1.1.40"
    static let appHost = "10.1.1.50"
    static let appHostName = "ip-10-1-1-50"
    static let host = "example.com"
    static let jst = 9 * 3600
    /// Host clocks are a little off: nginx's runs ahead, the app host's behind.
    static let nginxSkew: Int64 = 300_000
    static let appSkew: Int64 = -200_000
    static let gunicornTimeout: Int64 = 30_000_000
    static let albIdleTimeout: Int64 = 60_000_000
    static let maxBody = 1 << 20
    static var targetGroup: String { "arn:aws:elasticloadbalancing:\(region):\(account):targetgroup/web-nginx/8c2d4e6f1a3b5c7d" }
    static var certificate: String { "arn:aws:acm:\(region):\(account):certificate/0b6d1f3e-2c4a-4e8b-9d7f-1a3c5e7f9b2d" }
    static var webACLArn: String { "arn:aws:wafv2:\(region):\(account):regional/webacl/\(webACL)/\(webACLID)" }
}

/// Plays requests through client → AWS WAF → ALB → nginx → gunicorn/Flask and writes each
/// layer's lines as that layer writes them.
final class EdgeModel {
    private let config: SimulationConfig
    private let out: Emitter
    private var rng: SimRandom
    private let waf: Int?, albNodes: [Int?], nginx: Int?, nginxError: Int?, syslog: Int?, app: Int?
    private let firstMasterPID = 2_156_944
    private let restartedMasterPID = 2_201_377
    private var restarted = false
    private var workers = [2_156_951, 2_156_952, 2_156_953, 2_156_954]
    private var nextPID = 2_157_020
    private var connection = 48_211
    private var hangTimes: [Int64]
    private let downWindow: (Int64, Int64)?
    private var floodBlockedFrom: [String: Int64] = [:]
    /// Routine syslog traffic from other programs on the app host (sysstat every 10 minutes,
    /// cron.hourly at :17), so syslog is not only the app's lines.
    private var nextSysstat: Int64
    private var nextCron: Int64
    private var cronPID = 2_230_114
    private var count = 0

    init(config: SimulationConfig, out: Emitter) {
        self.config = config
        self.out = out
        rng = SimRandom(seed: SplitMix64.hash(config.seed, 2))
        let seed = config.seed
        let t = EdgeTopology.self
        waf = config.writes(.waf) ? out.register(WindowedObjectStream(window: 300_000_000) { start in
            let hash = String(SplitMix64.hash(seed, UInt64(start / 1_000_000)) & 0xFFFF_FFFF, radix: 16)
            let name = "\(t.account)_waflogs_\(t.region)_\(t.webACL)_\(SimClock.compact(start))_\(String(repeating: "0", count: 8 - hash.count) + hash).log.gz"
            return "AWSLogs/\(t.account)/WAFLogs/\(t.region)/\(t.webACL)/\(SimClock.slashed(start, withHourMinute: true))/\(name)"
        }) : nil
        albNodes = t.albNodes.enumerated().map { node, ip in
            config.writes(.alb) ? out.register(WindowedObjectStream(window: 300_000_000) { start in
                var r = SimRandom(seed: SplitMix64.hash(seed, UInt64(start / 1_000_000) &* 31 &+ UInt64(node)))
                let end = start + 300_000_000
                let name = "\(t.account)_elasticloadbalancing_\(t.region)_app.\(t.lbName).\(t.lbID)_\(SimClock.compact(end))_\(ip)_\(r.lowerAlnum(8)).log.gz"
                return "AWSLogs/\(t.account)/elasticloadbalancing/\(t.region)/\(SimClock.slashed(start, withHourMinute: false))/\(name)"
            }) : nil
        }
        nginx = config.writes(.nginx)
            ? out.register(RotatingStream(base: "var/log/nginx/access.log", rotation: config.rotation, offset: t.jst)) : nil
        nginxError = config.writes(.nginxError)
            ? out.register(RotatingStream(base: "var/log/nginx/error.log", rotation: config.rotation == .none ? .none : .daily, offset: t.jst)) : nil
        syslog = config.writes(.syslog)
            ? out.register(RotatingStream(base: "var/log/syslog", rotation: config.rotation == .none ? .none : .daily, offset: 0)) : nil
        app = config.writes(.app) ? out.register(DailyFileStream(directory: "app/logs", offset: t.jst)) : nil

        let tenMinutes: Int64 = 600_000_000, hour: Int64 = 3_600_000_000
        nextSysstat = (config.start / tenMinutes + 1) * tenMinutes + 1_000_000
        nextCron = (config.start / hour) * hour + 17 * 60_000_000 + 1_000_000
        if nextCron < config.start { nextCron += hour }

        // Failure moments, in the first 60% of the run: a flood (at 50%) may use up the request
        // budget before the background traffic's planned end.
        var plan = SimRandom(seed: SplitMix64.hash(seed, 3))
        let span = max(config.duration, 60_000_000)
        hangTimes = []
        if config.failures.contains(.workerTimeout) {
            let n = max(1, Int(span / 3_600_000_000))
            hangTimes = (0..<n).map { _ in config.start + Int64(plan.unit() * Double(span) * 0.6) }.sorted()
        }
        if config.failures.contains(.gunicornDown) {
            let at = config.start + Int64(Double(span) * (0.25 + 0.1 * plan.unit()))
            downWindow = (at, at + 120_000_000)
        } else {
            downWindow = nil
        }
    }

    /// Extra scheduled requests the failure flags need (uploads, exports).
    static func scheduledRequests(_ config: SimulationConfig) -> [ClientRequest] {
        var plan = SimRandom(seed: SplitMix64.hash(config.seed, 4))
        let span = max(config.duration, 60_000_000)
        var requests: [ClientRequest] = []
        let hours = max(1, Int(span / 3_600_000_000))
        let (prefix, _) = Population.userPrefixes[0]
        if config.failures.contains(.bodyTooLarge) {
            for _ in 0..<(2 * hours) {
                var r = ClientRequest(arrival: config.start + Int64(plan.unit() * Double(span) * 0.6),
                                      clientIP: Population.address(prefix, &plan), country: "JP",
                                      userAgent: Population.browsers[0], method: "POST", path: "/api/upload",
                                      kind: .user(admin: false))
                r.bodyBytes = plan.int(2_000_000...9_000_000)
                r.referer = "https://example.com/app/dashboard"
                requests.append(r)
            }
        }
        if config.failures.contains(.albIdleTimeout) {
            for _ in 0..<hours {
                var r = ClientRequest(arrival: config.start + Int64(plan.unit() * Double(span) * 0.6),
                                      clientIP: Population.address("153.", &plan), country: "JP",
                                      userAgent: Population.browsers[1], method: "GET", path: "/app/reports/export",
                                      kind: .user(admin: true))
                r.query = "from=2024-01-01&to=2025-01-31&format=csv"
                r.referer = "https://example.com/app/reports"
                r.forced = .slowExport
                requests.append(r)
            }
        }
        if case .wafBlockedAdmin(let at, let ip)? = config.incident {
            requests += wafIncident(at: at, ip: ip, seed: config.seed)
        }
        return requests
    }

    /// The admin's visit around the block: a normal session, three blocked attempts at the admin
    /// page from a link carrying `next=https://…`, then the admin page without the parameter.
    static func wafIncident(at: Int64, ip: String, seed: UInt64) -> [ClientRequest] {
        let agent = Population.browsers[0]
        func request(_ offset: Double, _ method: String, _ path: String, query: String = "", referer: String = "-",
                     body: Int = 0) -> ClientRequest {
            var r = ClientRequest(arrival: at + Int64(offset * 1e6), clientIP: ip, country: "JP", userAgent: agent,
                                  method: method, path: path, kind: .incident)
            r.query = query
            r.referer = referer
            r.bodyBytes = body
            return r
        }
        let next = "next=https%3A%2F%2Fexample.com%2Fapp%2Fadmin%2Fusers%3Frole%3Downer"
        let dash = "https://example.com/app/dashboard"
        // A second user, a member, is refused the admin page by the app itself a minute later.
        var member = ClientRequest(arrival: at + 61_400_000, clientIP: "198.51.100.23", country: "JP",
                                   userAgent: Population.browsers[3], method: "GET", path: "/app/admin",
                                   kind: .user(admin: false))
        member.referer = dash
        return [
            request(-185.2, "GET", "/app/login"),
            request(-171.9, "POST", "/app/login", referer: "https://example.com/app/login", body: 72),
            request(-171.4, "GET", "/app/dashboard", referer: "https://example.com/app/login"),
            request(-171.1, "GET", "/static/app.css", referer: dash),
            request(-171.0, "GET", "/static/app.js", referer: dash),
            request(-150.6, "GET", "/api/items", query: "page=1&per_page=20", referer: dash),
            request(-64.3, "GET", "/api/items/1207", referer: dash),
            request(0, "GET", "/app/admin", query: next, referer: dash),
            request(7.8, "GET", "/app/admin", query: next, referer: dash),
            request(24.9, "GET", "/app/admin", query: next, referer: dash),
            request(52.3, "GET", "/app/dashboard", referer: "-"),
            request(88.0, "GET", "/app/admin", referer: dash),
            request(95.5, "GET", "/app/admin/users", query: "role=owner", referer: "https://example.com/app/admin"),
            member,
        ]
    }

    // MARK: - One request

    func play(_ r: ClientRequest) throws {
        housekeeping(before: r.arrival + 60_000_000)
        count += 1
        let t0 = r.arrival
        var entry = TruthEntry(id: String(format: "e%07d", count), time: t0, clientIP: r.clientIP, method: r.method,
                               path: r.path, status: nil, responder: "app", cause: nil, reason: "ok")
        let traceID = "1-" + hex8(t0 / 1_000_000) + "-" + rng.hex(24)
        if case .health = r.kind {} else { entry.ids.append(("trace_id", traceID)) }
        let id = out.begin(entry)
        defer { out.seal(id) }

        var node = 0
        if case .health(let n) = r.kind { node = n } else { node = Int(SplitMix64.mix(r.clientIP.hashValue8) % 2) }
        let albIP = EdgeTopology.albNodes[node]
        let clientPort = rng.int(1025...65535)

        // AWS WAF (not for health checks: they come from the ALB itself).
        var wafLatency: Int64 = 0
        if case .health = r.kind {} else {
            wafLatency = Int64(rng.int(700...3500))
            let verdict = wafVerdict(r)
            out.emit(t0, waf, "waf", wafLine(r, traceID: traceID, verdict: verdict), request: id)
            if let rule = verdict {
                let time = t0 + wafLatency + Int64(rng.int(100...600))
                out.emit(time, albNodes[node], "alb", albLine(r, time: time, created: t0, port: clientPort, target: nil,
                                                            times: (-1, -1, -1), elb: 403, targetStatus: nil,
                                                            received: requestSize(r), sent: 270, actions: "waf", traceID: traceID),
                         request: id)
                // A rate-based rule refused the client's own traffic: the cause is the client
                // (docs/diagnosis.md, the limits convention); a rule judging content is the WAF's.
                let cause = rule.type == "RATE_BASED" ? "client" : "waf"
                out.update(id) { $0.status = 403; $0.responder = "waf"; $0.cause = cause; $0.reason = "waf-rule \(rule.reason)" }
                return
            }
        }

        // nginx
        let nginxStart = t0 + wafLatency + Int64(rng.int(300...900))
        if rng.chance(0.3) { connection += 1 }
        let nginxPID = rng.chance(0.5) ? 812 : 813
        var nginxEnd: Int64
        var status: Int
        var bytes: Int
        var upstreamTime: String = "-"
        var albStatus: Int? = nil
        var albEnd: Int64? = nil

        if r.path.hasPrefix("/static/") || r.path == "/favicon.ico" {
            nginxEnd = nginxStart + Int64(rng.int(150...2500))
            status = r.path == "/favicon.ico" ? 404 : (rng.chance(0.3) ? 304 : 200)
            bytes = status == 304 ? 0 : (status == 404 ? 153 : (r.path.hasSuffix(".js") ? 184_213 : 22_871))
            out.update(id) { $0.responder = "nginx"; $0.cause = status == 404 ? "client" : nil; $0.reason = status == 404 ? "not-found" : "ok" }
        } else if r.bodyBytes > EdgeTopology.maxBody {
            nginxEnd = nginxStart + Int64(rng.int(200...1500))
            status = 413
            bytes = 183
            out.emit(nginxEnd, nginxError, "nginx-error", nginxErrorLine(nginxEnd, pid: nginxPID,
                     message: "client intended to send too large body: \(r.bodyBytes) bytes", r: r, node: albIP, upstream: false),
                     request: id)
            out.update(id) { $0.responder = "nginx"; $0.cause = "client"; $0.reason = "body-too-large" }
        } else if let down = downWindow, nginxStart >= down.0, nginxStart < down.1 {
            nginxEnd = nginxStart + Int64(rng.int(200...700))
            status = 502
            bytes = 157
            upstreamTime = "0.000"
            out.emit(nginxEnd, nginxError, "nginx-error", nginxErrorLine(nginxEnd, pid: nginxPID,
                     message: "connect() failed (111: Connection refused) while connecting to upstream", r: r, node: albIP,
                     upstream: true), request: id)
            out.update(id) { $0.responder = "nginx"; $0.cause = "gunicorn"; $0.reason = "gunicorn-down" }
        } else {
            let appStart = nginxStart + Int64(rng.int(300...800))
            if let (_, up) = downWindow, appStart >= up, !restarted {
                restarted = true
                workers = Self.restartedWorkers(restartedMasterPID)
                nextPID = restartedMasterPID + 40
            }
            let workerIndex = rng.int(0..<workers.count)
            let url = "http://\(EdgeTopology.host):443\(r.target)"
            emitApp(appStart, "Request: \(r.method) \(url)", id)
            var forced = r.forced
            if forced == .none, let next = hangTimes.first, appStart >= next, !isHealth(r) {
                hangTimes.removeFirst()
                forced = .hang
            }
            switch forced {
            case .hang:
                let killed = workers[workerIndex]
                let kill = appStart + EdgeTopology.gunicornTimeout + Int64(rng.int(0...999_000))
                emitGunicorn(kill, pid: masterPID(at: kill), level: "CRITICAL", "WORKER TIMEOUT (pid:\(killed))", id)
                emitGunicorn(kill + Int64(rng.int(2000...9000)), pid: masterPID(at: kill), level: "ERROR",
                             "Worker (pid:\(killed)) was sent SIGKILL! Perhaps out of memory?", id)
                let newPID = nextPID
                nextPID += rng.int(3...40)
                workers[workerIndex] = newPID
                emitGunicorn(kill + Int64(rng.int(30_000...90_000)), pid: newPID, level: "INFO", "Booting worker with pid: \(newPID)", -1)
                nginxEnd = kill + Int64(rng.int(300...1500))
                status = 502
                bytes = 157
                upstreamTime = SimClock.seconds(nginxEnd - appStart + 400)
                out.emit(nginxEnd, nginxError, "nginx-error", nginxErrorLine(nginxEnd, pid: nginxPID,
                         message: "upstream prematurely closed connection while reading response header from upstream",
                         r: r, node: albIP, upstream: true), request: id)
                out.update(id) { $0.responder = "nginx"; $0.cause = "gunicorn"; $0.reason = "worker-timeout"; $0.ids.append(("worker_pid", String(killed))) }
            case .slowExport:
                let appEnd = appStart + 75_000_000 + Int64(rng.int(0...9_000_000))
                emitApp(appEnd, "Response: 200 \(url)", id)
                let giveUp = t0 + wafLatency + EdgeTopology.albIdleTimeout
                albEnd = giveUp
                albStatus = 504
                nginxEnd = giveUp + Int64(rng.int(200...900))
                status = 499
                bytes = 0
                upstreamTime = SimClock.seconds(nginxEnd - appStart)
                out.update(id) { $0.responder = "alb"; $0.cause = "app"; $0.reason = "alb-idle-timeout" }
            case .none:
                let (appStatus, size, duration) = appResponse(r)
                let appEnd = appStart + duration
                emitApp(appEnd, "Response: \(appStatus) \(url)", id)
                nginxEnd = appEnd + Int64(rng.int(200...600))
                status = appStatus
                bytes = size
                upstreamTime = SimClock.seconds(appEnd - appStart + Int64(rng.int(100...500)))
                out.update(id) { entry in
                    entry.responder = "app"
                    switch appStatus {
                    case 403: entry.cause = "app"; entry.reason = "app-forbidden"
                    case 401: entry.cause = "client"; entry.reason = "app-unauthorized"
                    case 404: entry.cause = "client"; entry.reason = "not-found"
                    case 400, 422: entry.cause = "client"; entry.reason = "app-validation"
                    case 500...: entry.cause = "app"; entry.reason = "app-error"
                    default: break
                    }
                }
            }
        }

        let nginxStamp = nginxEnd + EdgeTopology.nginxSkew
        let xff = isHealth(r) ? "-" : r.clientIP
        let nginxLine = "\(albIP) - - [\(SimClock.clf(nginxStamp, offset: EdgeTopology.jst))] \"\(r.method) \(r.target) HTTP/1.1\" \(status) \(bytes) \"\(r.referer)\" \"\(r.userAgent)\" \"\(xff)\" rt=\(SimClock.seconds(nginxEnd - nginxStart)) urt=\"\(upstreamTime)\""
        out.emit(nginxEnd, nginx, "nginx", nginxLine, request: id)

        if isHealth(r) {
            out.update(id) { $0.status = status; if $0.reason == "ok" { $0.responder = "app" } }
            return
        }
        let finalStatus = albStatus ?? status
        let albTime = albEnd ?? (nginxEnd + Int64(rng.int(300...900)))
        let targetTimes = albStatus == nil
            ? (Int64(wafLatency + 400), nginxEnd - nginxStart, albTime - nginxEnd)
            : (Int64(wafLatency + 400), Int64(-1), Int64(-1))
        out.emit(albTime, albNodes[node], "alb", albLine(r, time: albTime, created: t0, port: clientPort,
                 target: "\(EdgeTopology.nginxHost):80", times: targetTimes, elb: finalStatus,
                 targetStatus: albStatus == nil ? status : nil, received: requestSize(r),
                 sent: albStatus == nil ? bytes + 260 : 303, actions: "waf,forward", traceID: traceID), request: id)
        out.update(id) { $0.status = finalStatus }
    }

    private func isHealth(_ r: ClientRequest) -> Bool {
        if case .health = r.kind { return true }
        return false
    }

    /// gunicorn crashing and coming back, when the flag asks for it: systemd and gunicorn lines.
    func scheduleOutage() {
        guard let (down, up) = downWindow else { return }
        emitSystemd(down - 150_000, "gunicorn.service: Main process exited, code=killed, status=9/KILL")
        emitSystemd(down - 140_000, "gunicorn.service: Failed with result 'signal'.")
        emitSystemd(down - 139_000, "gunicorn.service: Consumed 2h 13min 41.512s CPU time.")
        emitSystemd(up - 1_200_000, "Started gunicorn.service - gunicorn daemon for example app.")
        let masterPID = restartedMasterPID
        emitGunicorn(up - 800_000, pid: masterPID, level: "INFO", "Starting gunicorn 23.0.0", -1)
        emitGunicorn(up - 790_000, pid: masterPID, level: "INFO", "Listening at: http://0.0.0.0:8000 (\(masterPID))", -1)
        emitGunicorn(up - 785_000, pid: masterPID, level: "INFO", "Using worker: gthread", -1)
        for (i, pid) in Self.restartedWorkers(masterPID).enumerated() {
            emitGunicorn(up - 700_000 + Int64(i) * 4_000, pid: pid, level: "INFO", "Booting worker with pid: \(pid)", -1)
        }
    }

    private static func restartedWorkers(_ master: Int) -> [Int] { (1...4).map { master + 6 + $0 } }

    /// The gunicorn master's pid at a moment (journald tags every line with it).
    private func masterPID(at time: Int64) -> Int {
        guard let (_, up) = downWindow, time >= up - 1_200_000 else { return firstMasterPID }
        return restartedMasterPID
    }

    /// Queues the routine lines due before `limit`. Called ahead of time: lines must be queued
    /// before the emitter has written past their time.
    private func housekeeping(before limit: Int64) {
        while nextSysstat <= limit {
            let t = nextSysstat + Int64(rng.int(1_000...40_000))
            emitSystemd(t, "Starting sysstat-collect.service - system activity accounting tool...")
            emitSystemd(t + Int64(rng.int(20_000...60_000)), "sysstat-collect.service: Deactivated successfully.")
            emitSystemd(t + Int64(rng.int(61_000...70_000)), "Finished sysstat-collect.service - system activity accounting tool.")
            nextSysstat += 600_000_000
        }
        while nextCron <= limit {
            cronPID += rng.int(200...4000)
            let t = nextCron + Int64(rng.int(1_000...9_000))
            out.emit(t, syslog, "syslog", "\(SimClock.syslog(t + EdgeTopology.appSkew, offset: 0)) \(EdgeTopology.appHostName) CRON[\(cronPID)]: (root) CMD (cd / && run-parts --report /etc/cron.hourly)")
            nextCron += 3_600_000_000
        }
    }

    // MARK: - Application

    private func appResponse(_ r: ClientRequest) -> (Int, Int, Int64) {
        var admin = false
        if case .user(let a) = r.kind { admin = a }
        if case .incident = r.kind { admin = true }
        func ms(_ median: Double, _ sigma: Double = 0.5) -> Int64 { Int64(rng.logNormal(median: median, sigma: sigma) * 1000) + 300 }
        switch r.path {
        case "/health": return (200, 2, ms(1.2, 0.3))
        case "/": return (200, 5_412, ms(18))
        case "/app/login": return r.method == "POST" ? (rng.chance(0.08) ? 401 : 302, 219, ms(140, 0.3)) : (200, 3_108, ms(12))
        case "/app/dashboard": return rng.chance(0.02) ? (302, 229, ms(4)) : (200, 14_926, ms(45))
        case "/app/settings": return admin || rng.chance(0.6) ? (200, 8_214, ms(30)) : (403, 1_312, ms(9))
        case "/app/admin", "/app/admin/users": return admin ? (200, 11_488, ms(60)) : (403, 1_312, ms(8))
        case "/app/reports": return (200, 9_770, ms(80))
        case "/app/reports/export": return (200, 1_845_220, ms(3_500, 0.4))
        case "/api/items": return (200, rng.int(3_000...9_000), ms(38))
        case "/api/ping": return (200, 15, ms(2))
        case "/api/orders": return r.method == "POST" ? (rng.chance(0.06) ? 422 : 201, 412, ms(95)) : (200, 6_021, ms(40))
        case "/api/upload": return (201, 96, ms(220))
        default:
            if r.path.hasPrefix("/api/items/") { return rng.chance(0.05) ? (404, 31, ms(12)) : (200, 811, ms(22)) }
            if r.path.hasPrefix("/api/") { return (401, 38, ms(3)) }
            return (404, 207, ms(6))
        }
    }

    private func emitApp(_ time: Int64, _ message: String, _ id: Int) {
        let stamp = time + EdgeTopology.appSkew
        let line = "INFO \(SimClock.python(stamp, offset: EdgeTopology.jst)) [app] \(message)"
        out.emit(time, app, "app", line, request: id)
        out.emit(time, syslog, "syslog", "\(SimClock.syslog(stamp, offset: 0)) \(EdgeTopology.appHostName) gunicorn[\(masterPID(at: time))]: \(line)", request: id)
    }

    private func emitGunicorn(_ time: Int64, pid: Int, level: String, _ message: String, _ id: Int) {
        let stamp = time + EdgeTopology.appSkew
        out.emit(time, syslog, "syslog", "\(SimClock.syslog(stamp, offset: 0)) \(EdgeTopology.appHostName) gunicorn[\(masterPID(at: time))]: \(SimClock.gunicorn(stamp, offset: EdgeTopology.jst)) [\(pid)] [\(level)] \(message)", request: id)
    }

    private func emitSystemd(_ time: Int64, _ message: String) {
        let stamp = time + EdgeTopology.appSkew
        out.emit(time, syslog, "syslog", "\(SimClock.syslog(stamp, offset: 0)) \(EdgeTopology.appHostName) systemd[1]: \(message)")
    }

    // MARK: - Line shapes

    struct Block { var ruleID: String, type: String, group: String?, subRule: String?, label: String, reason: String }

    private func wafVerdict(_ r: ClientRequest) -> Block? {
        if config.failures.contains(.wafBlock) || r.kind == .incident,
           r.path.hasPrefix("/app/admin"), r.query.contains("https%3A%2F%2F") {
            return Block(ruleID: "AWS-AWSManagedRulesCommonRuleSet", type: "MANAGED_RULE_GROUP",
                         group: "AWS#AWSManagedRulesCommonRuleSet", subRule: "GenericRFI_QUERYARGUMENTS",
                         label: "awswaf:managed:aws:core-rule-set:GenericRFI_QueryArguments",
                         reason: "AWS-AWSManagedRulesCommonRuleSet/GenericRFI_QUERYARGUMENTS")
        }
        switch r.kind {
        case .scanner(let hosting):
            if hosting {
                return Block(ruleID: "AWS-AWSManagedRulesAnonymousIpList", type: "MANAGED_RULE_GROUP",
                             group: "AWS#AWSManagedRulesAnonymousIpList", subRule: "HostingProviderIPList",
                             label: "awswaf:managed:aws:anonymous-ip-list:HostingProviderIPList",
                             reason: "AWS-AWSManagedRulesAnonymousIpList/HostingProviderIPList")
            }
            if r.path.contains("/.git") || r.path.contains("phpunit") || r.path.contains("/.aws") {
                return Block(ruleID: "AWS-AWSManagedRulesKnownBadInputsRuleSet", type: "MANAGED_RULE_GROUP",
                             group: "AWS#AWSManagedRulesKnownBadInputsRuleSet", subRule: "ExploitablePaths_URIPATH",
                             label: "awswaf:managed:aws:known-bad-inputs:ExploitablePaths_URIPath",
                             reason: "AWS-AWSManagedRulesKnownBadInputsRuleSet/ExploitablePaths_URIPATH")
            }
        case .flood:
            let first = floodBlockedFrom[r.clientIP] ?? r.arrival + 20_000_000
            floodBlockedFrom[r.clientIP] = first
            if r.arrival >= first {
                return Block(ruleID: "RateLimitPerIP", type: "RATE_BASED", group: nil, subRule: nil,
                             label: "awswaf:\(EdgeTopology.account):webacl:\(EdgeTopology.webACL):rule:RateLimitPerIP",
                             reason: "RateLimitPerIP")
            }
        default: break
        }
        return nil
    }

    private func wafLine(_ r: ClientRequest, traceID: String, verdict: Block?) -> String {
        let groups = ["AWS#AWSManagedRulesCommonRuleSet", "AWS#AWSManagedRulesKnownBadInputsRuleSet", "AWS#AWSManagedRulesAnonymousIpList"]
        var groupList: [String] = []
        for g in groups {
            var terminating = "null"
            if let v = verdict, v.group == g, let sub = v.subRule {
                terminating = "{\"ruleId\":\"\(sub)\",\"action\":\"BLOCK\",\"ruleMatchDetails\":null}"
            }
            groupList.append("{\"ruleGroupId\":\"\(g)\",\"terminatingRule\":\(terminating),\"nonTerminatingMatchingRules\":[],\"excludedRules\":null,\"customerConfig\":null}")
            if let v = verdict, v.group == g { break }
        }
        var rate = "[]"
        if let v = verdict, v.type == "RATE_BASED" {
            rate = "[{\"rateBasedRuleId\":\"7e2f4a9c-1d3b-4c5e-8f6a-0b9d2c4e6f81\",\"rateBasedRuleName\":\"RateLimitPerIP\",\"limitKey\":\"IP\",\"maxRateAllowed\":1000,\"limitValue\":\"\(r.clientIP)\",\"evaluationWindowSec\":\"300\"}]"
        }
        var headers = [("Host", EdgeTopology.host), ("User-Agent", r.userAgent), ("Accept", r.path.hasPrefix("/api/") ? "application/json" : "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"),
                       ("Accept-Encoding", "gzip, deflate, br")]
        if r.referer != "-" { headers.append(("Referer", r.referer)) }
        if r.bodyBytes > 0 { headers.append(("Content-Length", String(r.bodyBytes))) }
        let headerJSON = headers.map { "{\"name\":\(Emitter.jsonString($0.0)),\"value\":\(Emitter.jsonString($0.1))}" }.joined(separator: ",")
        var s = "{\"timestamp\":\(r.arrival / 1000),\"formatVersion\":1,\"webaclId\":\"\(EdgeTopology.webACLArn)\""
        s += ",\"terminatingRuleId\":\"\(verdict?.ruleID ?? "Default_Action")\",\"terminatingRuleType\":\"\(verdict?.type ?? "REGULAR")\""
        s += ",\"action\":\"\(verdict == nil ? "ALLOW" : "BLOCK")\",\"terminatingRuleMatchDetails\":[],\"httpSourceName\":\"ALB\""
        s += ",\"httpSourceId\":\"\(EdgeTopology.account)-app/\(EdgeTopology.lbName)/\(EdgeTopology.lbID)\""
        s += ",\"ruleGroupList\":[\(groupList.joined(separator: ","))],\"rateBasedRuleList\":\(rate),\"nonTerminatingMatchingRules\":[]"
        s += ",\"requestHeadersInserted\":null,\"responseCodeSent\":null,\"httpRequest\":{\"clientIp\":\"\(r.clientIP)\",\"country\":\"\(r.country)\""
        s += ",\"headers\":[\(headerJSON)],\"uri\":\(Emitter.jsonString(r.path)),\"args\":\(Emitter.jsonString(r.query))"
        s += ",\"httpVersion\":\"HTTP/1.1\",\"httpMethod\":\"\(r.method)\",\"requestId\":\"\(traceID)\"}"
        if let v = verdict { s += ",\"labels\":[{\"name\":\"\(v.label)\"}]" }
        return s + "}"
    }

    private func albLine(_ r: ClientRequest, time: Int64, created: Int64, port: Int, target: String?,
                         times: (Int64, Int64, Int64), elb: Int, targetStatus: Int?, received: Int, sent: Int,
                         actions: String, traceID: String) -> String {
        func secs(_ v: Int64) -> String { v < 0 ? "-1" : SimClock.seconds(v) }
        let targetText = target ?? "-"
        let targetStatusText = targetStatus.map(String.init) ?? "-"
        let group = target == nil ? "-" : EdgeTopology.targetGroup
        return "https \(SimClock.isoMicros(time)) app/\(EdgeTopology.lbName)/\(EdgeTopology.lbID) \(r.clientIP):\(port) \(targetText) "
            + "\(secs(times.0)) \(secs(times.1)) \(secs(times.2)) \(elb) \(targetStatusText) \(received) \(sent) "
            + "\"\(r.method) https://\(EdgeTopology.host):443\(r.target) HTTP/1.1\" \"\(r.userAgent)\" ECDHE-RSA-AES128-GCM-SHA256 TLSv1.2 "
            + "\(group) \"Root=\(traceID)\" \"\(EdgeTopology.host)\" \"\(EdgeTopology.certificate)\" 0 \(SimClock.isoMicros(created)) "
            + "\"\(actions)\" \"-\" \"-\" \"\(targetText)\" \"\(targetStatusText)\" \"-\" \"-\" TID_\(rng.hex(32))"
    }

    private func nginxErrorLine(_ time: Int64, pid: Int, message: String, r: ClientRequest, node: String, upstream: Bool) -> String {
        var s = "\(SimClock.nginxError(time + EdgeTopology.nginxSkew, offset: EdgeTopology.jst)) [error] \(pid)#\(pid): *\(connection) \(message), client: \(node), server: \(EdgeTopology.host), request: \"\(r.method) \(r.target) HTTP/1.1\""
        if upstream { s += ", upstream: \"http://\(EdgeTopology.appHost):8000\(r.target)\"" }
        s += ", host: \"\(EdgeTopology.host)\""
        if r.referer != "-" { s += ", referrer: \"\(r.referer)\"" }
        return s
    }

    private func requestSize(_ r: ClientRequest) -> Int { 380 + r.userAgent.utf8.count + r.target.utf8.count + min(r.bodyBytes, 65_536) }

    private func hex8(_ seconds: Int64) -> String {
        let h = String(UInt64(max(0, seconds)), radix: 16)
        return String(repeating: "0", count: max(0, 8 - h.count)) + h
    }
}

extension String {
    /// A stable (process-independent) hash; Swift's `hashValue` is seeded per process.
    var hashValue8: UInt64 {
        var h: UInt64 = 0xCBF2_9CE4_8422_2325
        for b in utf8 { h = (h ^ UInt64(b)) &* 0x100_0000_01B3 }
        return h
    }
}
