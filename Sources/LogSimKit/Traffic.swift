import Foundation

/// One request as the client sends it, before any layer has seen it.
struct ClientRequest {
    enum Kind: Equatable {
        case user(admin: Bool)
        /// An ALB health check from node `node` (edge only; ALB does not log them, nginx does).
        case health(node: Int)
        case scanner(hosting: Bool)
        case flood
        /// The scripted story's own requests.
        case incident
    }

    /// What the model must make happen to this request.
    enum Forced: Equatable { case none, hang, slowExport }

    var arrival: Int64
    var clientIP: String
    var country: String
    var userAgent: String
    var method: String
    var path: String
    /// Query string without `?`, or "".
    var query: String = ""
    var referer: String = "-"
    var bodyBytes: Int = 0
    var kind: Kind
    var forced: Forced = .none
    var target: String { query.isEmpty ? path : path + "?" + query }
}

/// A generator of requests in arrival order, with its own random stream so adding one source
/// never changes another's traffic.
class TrafficSource {
    var rng: SimRandom
    init(seed: UInt64, index: UInt64) { rng = SimRandom(seed: SplitMix64.hash(seed, 1000 + index)) }
    /// The next request, or nil when the source is exhausted.
    func next() -> ClientRequest? { nil }
}

enum Population {
    static let browsers = [
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/132.0.0.0 Safari/537.36",
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.2 Safari/605.1.15",
        "Mozilla/5.0 (iPhone; CPU iPhone OS 18_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.2 Mobile/15E148 Safari/604.1",
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:134.0) Gecko/20100101 Firefox/134.0",
        "Mozilla/5.0 (Linux; Android 14; SO-51D) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/132.0.0.0 Mobile Safari/537.36",
    ]
    static let scannerAgents = [
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/81.0.4044.129 Safari/537.36",
        "python-requests/2.31.0", "Go-http-client/1.1", "curl/7.88.1", "Mozilla/5.0 zgrab/0.x",
    ]
    static let apiAgents = ["okhttp/4.12.0", "python-requests/2.32.3", "axios/1.7.9", "Dart/3.5 (dart:io)"]
    static let scannerPaths = [
        "/.env", "/wp-login.php", "/xmlrpc.php", "/phpmyadmin/index.php", "/.git/config", "/admin.php",
        "/wp-admin/setup-config.php", "/vendor/phpunit/phpunit/src/Util/PHP/eval-stdin.php", "/config.json",
        "/.aws/credentials", "/server-status", "/actuator/env", "/shell.php", "/cgi-bin/luci/;stok=/locale",
        "/owa/auth/logon.aspx", "/.DS_Store", "/backup.zip", "/info.php",
    ]
    static let botScriptPaths = [
        "/aa.php", "/bb.php", "/cc.php", "/wp-login.php", "/xmlrpc.php", "/admin.php", "/shell.php", "/info.php",
        "/wp-content/plugins/hellopress/wp_filemanager.php", "/alfa.php", "/wso.php", "/about.php", "/1.php",
        "/.env", "/.git/config", "/vendor/phpunit/phpunit/src/Util/PHP/eval-stdin.php", "/index.php", "/xl.php",
        "/wp-includes/css/index.php", "/cgi-bin/test.cgi",
    ]

    /// Japanese consumer ranges for the site's users (the story is in JST).
    static let userPrefixes: [(String, String)] = [
        ("126.", "JP"), ("153.", "JP"), ("60.", "JP"), ("114.", "JP"), ("219.", "JP"), ("203.0.113.", "JP"),
        ("198.51.100.", "JP"),
    ]
    /// Hosting-provider ranges scanners run from.
    static let hostingPrefixes: [(String, String)] = [
        ("45.", "US"), ("185.", "NL"), ("193.", "DE"), ("167.94.", "US"), ("64.227.", "IN"),
    ]
    static let residentialScannerPrefixes: [(String, String)] = [("91.", "RU"), ("222.", "CN"), ("177.", "BR")]

    static func address(_ prefix: String, _ rng: inout SimRandom) -> String {
        let octets = 4 - prefix.split(separator: ".").count
        var parts: [String] = []
        for i in 0..<octets { parts.append(String(i == octets - 1 ? rng.int(2...254) : rng.int(0...255))) }
        return prefix + parts.joined(separator: ".")
    }
}

// MARK: - Edge sources

/// Logged-in and anonymous users browsing the site in sessions (the bulk of the traffic).
final class BrowsingUsers: TrafficSource {
    struct Session {
        var ip: String, country: String, agent: String, admin: Bool, left: Int, last: String
    }
    private var clock: Int64
    private let meanGap: Double
    private var sessions: [Session] = []

    init(seed: UInt64, start: Int64, rate: Double) {
        clock = start
        meanGap = 1e6 / max(rate, 0.001)
        super.init(seed: seed, index: 1)
    }

    override func next() -> ClientRequest? {
        clock += Int64(rng.exponential(mean: meanGap)) + 1
        if sessions.count < 3 || (sessions.count < 60 && rng.chance(0.12)) {
            let (prefix, country) = rng.pick(Population.userPrefixes)
            sessions.append(Session(ip: Population.address(prefix, &rng), country: country,
                                    agent: rng.pick(Population.browsers), admin: rng.chance(0.08),
                                    left: rng.int(3...25), last: "/"))
        }
        let index = rng.int(0..<sessions.count)
        var session = sessions[index]
        var request = ClientRequest(arrival: clock, clientIP: session.ip, country: session.country,
                                    userAgent: session.agent, method: "GET", path: "/", kind: .user(admin: session.admin))
        request.referer = "https://example.com" + session.last
        let page = rng.weighted([
            ("/", 4.0), ("/app/login", 3), ("/app/dashboard", 12), ("/api/items", 14), ("/api/items/id", 8),
            ("/api/orders", 4), ("/static/app.js", 8), ("/static/app.css", 6), ("/favicon.ico", 2),
            ("/app/settings", 3), ("/app/admin", 1.2), ("/api/ping", 3), ("/app/reports", 2),
            ("/app/reports/export", 0.3), ("/api/upload", 0.6), ("/app/missing", 0.5),
        ])
        switch page {
        case "/app/login":
            request.path = page
            if rng.chance(0.5) { request.method = "POST"; request.bodyBytes = rng.int(40...90) }
        case "/api/items":
            request.path = page
            request.query = "page=\(rng.int(1...12))&per_page=20"
        case "/api/items/id":
            request.path = "/api/items/\(rng.int(1...4000))"
        case "/api/orders":
            request.path = page
            request.method = rng.chance(0.6) ? "POST" : "GET"
            if request.method == "POST" { request.bodyBytes = rng.int(120...900) }
        case "/api/upload":
            request.path = page
            request.method = "POST"
            request.bodyBytes = rng.int(20_000...900_000)
        default:
            request.path = page
        }
        session.last = request.path
        session.left -= 1
        if session.left <= 0 { sessions.remove(at: index) } else { sessions[index] = session }
        return request
    }
}

/// ALB health checks: every 30 s from each node; nginx and the app log them, ALB does not.
final class HealthChecks: TrafficSource {
    private var times: [Int64]
    static let interval: Int64 = 30_000_000

    init(seed: UInt64, start: Int64, nodes: Int) {
        times = (0..<nodes).map { start + Int64($0) * 13_000_000 + 7_000_000 }
        super.init(seed: seed, index: 2)
    }

    override func next() -> ClientRequest? {
        guard let node = times.indices.min(by: { times[$0] < times[$1] }) else { return nil }
        let t = times[node]
        times[node] += Self.interval
        return ClientRequest(arrival: t, clientIP: EdgeTopology.albNodes[node], country: "-",
                             userAgent: "ELB-HealthChecker/2.0", method: "GET", path: "/health", kind: .health(node: node))
    }
}

/// Vulnerability scanners probing script and config paths, in campaigns.
final class Scanners: TrafficSource {
    private var clock: Int64
    private let end: Int64
    private var campaign: (ip: String, country: String, agent: String, hosting: Bool, left: Int)?
    private var paths: [String]

    init(seed: UInt64, start: Int64, end: Int64, paths: [String] = Population.scannerPaths) {
        clock = start
        self.end = end
        self.paths = paths
        super.init(seed: seed, index: 3)
        clock += Int64(rng.exponential(mean: 240e6))
    }

    override func next() -> ClientRequest? {
        if campaign == nil {
            guard clock < end else { return nil }
            let hosting = rng.chance(0.6)
            let (prefix, country) = rng.pick(hosting ? Population.hostingPrefixes : Population.residentialScannerPrefixes)
            campaign = (Population.address(prefix, &rng), country, rng.pick(Population.scannerAgents), hosting, rng.int(8...40))
        }
        guard var current = campaign else { return nil }
        clock += Int64(rng.exponential(mean: 400_000)) + 20_000
        let request = ClientRequest(arrival: clock, clientIP: current.ip, country: current.country, userAgent: current.agent,
                                    method: rng.chance(0.9) ? "GET" : "POST", path: rng.pick(paths),
                                    kind: .scanner(hosting: current.hosting))
        current.left -= 1
        if current.left <= 0 {
            campaign = nil
            clock += Int64(rng.exponential(mean: 900e6))
        } else {
            campaign = current
        }
        return request
    }
}

/// Requests scheduled at fixed moments: failure injections and scripted stories.
final class Scheduled: TrafficSource {
    private var queue: [ClientRequest]

    init(seed: UInt64, index: UInt64, requests: [ClientRequest]) {
        queue = requests.sorted { $0.arrival < $1.arrival }.reversed()
        super.init(seed: seed, index: index)
    }

    override func next() -> ClientRequest? { queue.popLast() }
}

/// One IP hammering the login page for 90 seconds.
final class Flood: TrafficSource {
    private var clock: Int64
    private let end: Int64
    private let ip: String

    init(seed: UInt64, at: Int64) {
        clock = at
        end = at + 90_000_000
        var r = SimRandom(seed: SplitMix64.hash(seed, 77))
        ip = Population.address("185.", &r)
        super.init(seed: seed, index: 5)
    }

    override func next() -> ClientRequest? {
        clock += Int64(rng.exponential(mean: 66_000)) + 1
        guard clock < end else { return nil }
        return ClientRequest(arrival: clock, clientIP: ip, country: "NL", userAgent: "python-requests/2.31.0",
                             method: "POST", path: "/app/login", bodyBytes: 64, kind: .flood)
    }
}

// MARK: - API sources

/// Mobile clients calling the REST API.
final class ApiClients: TrafficSource {
    private var clock: Int64
    private let meanGap: Double
    private var clients: [(ip: String, agent: String)] = []

    init(seed: UInt64, start: Int64, rate: Double) {
        clock = start
        meanGap = 1e6 / max(rate, 0.001)
        super.init(seed: seed, index: 11)
        for _ in 0..<40 {
            clients.append((Population.address(rng.pick(["126.", "153.", "3.", "52.", "18."]), &rng), rng.pick(Population.apiAgents)))
        }
    }

    override func next() -> ClientRequest? {
        clock += Int64(rng.exponential(mean: meanGap)) + 1
        let client = rng.pick(clients)
        var request = ClientRequest(arrival: clock, clientIP: client.ip, country: "-", userAgent: client.agent,
                                    method: "GET", path: "/items", kind: .user(admin: false))
        switch rng.weighted([("list", 5.0), ("item", 4), ("order", 2), ("health", 1), ("typo", 0.15)]) {
        case "item": request.path = "/items/\(rng.int(1...5000))"
        case "order": request.method = "POST"; request.path = "/orders"; request.bodyBytes = rng.int(80...600)
        case "health": request.path = "/health"
        case "typo": request.path = "/item"
        default: request.query = "limit=\(rng.pick([10, 20, 50]))"
        }
        return request
    }
}

/// A client that bursts above the stage throttle limit.
final class Burst: TrafficSource {
    private var clock: Int64
    private let end: Int64
    private let ip: String

    init(seed: UInt64, at: Int64) {
        clock = at
        end = at + 20_000_000
        var r = SimRandom(seed: SplitMix64.hash(seed, 78))
        ip = Population.address("52.", &r)
        super.init(seed: seed, index: 12)
    }

    override func next() -> ClientRequest? {
        clock += Int64(rng.exponential(mean: 40_000)) + 1
        guard clock < end else { return nil }
        return ClientRequest(arrival: clock, clientIP: ip, country: "-", userAgent: "python-requests/2.32.3",
                             method: "GET", path: "/items", query: "limit=50", kind: .flood)
    }
}
