import Foundation

/// Where a ClickHouse timeline lives: `clickhouse://[USER[:PASSWORD]@]HOST:PORT/DATABASE`, the
/// server's HTTP interface (port 8123 by default). The user and password come from the URL, else
/// from `CLICKHOUSE_USER` / `CLICKHOUSE_PASSWORD`. The password never appears in `description`,
/// in errors or in anything printed: `redacted` is the only form shown.
public struct ClickHouseURL: Sendable, CustomStringConvertible {
    public var host: String
    public var port: Int
    public var database: String
    public var user: String?
    public var password: String?

    public struct Invalid: Error, CustomStringConvertible {
        public var description: String
    }

    public static func isClickHouse(_ text: String) -> Bool { text.lowercased().hasPrefix("clickhouse://") }

    public init(_ text: String, environment: [String: String] = ProcessInfo.processInfo.environment) throws {
        guard Self.isClickHouse(text) else { throw Invalid(description: "--store: expected clickhouse://HOST:PORT/DATABASE") }
        var rest = Substring(text.dropFirst("clickhouse://".count))
        var user: String?, password: String?
        if let at = rest.lastIndex(of: "@") {
            let credentials = rest[..<at]
            rest = rest[rest.index(after: at)...]
            if let colon = credentials.firstIndex(of: ":") {
                user = String(credentials[..<colon]).removingPercentEncoding
                password = String(credentials[credentials.index(after: colon)...]).removingPercentEncoding
            } else {
                user = String(credentials).removingPercentEncoding
            }
        }
        guard let slash = rest.firstIndex(of: "/") else {
            throw Invalid(description: "--store: expected clickhouse://HOST:PORT/DATABASE (no database named)")
        }
        let hostPort = rest[..<slash]
        let database = String(rest[rest.index(after: slash)...]).trimmingCharacters(in: CharacterSet(charactersIn: "/"))
        guard Self.isIdentifier(database) else {
            throw Invalid(description: "--store: the database name must be letters, digits and _ (not starting with a digit)")
        }
        var host = String(hostPort), port = 8123
        if hostPort.hasPrefix("[") , let close = hostPort.firstIndex(of: "]") {
            host = String(hostPort[hostPort.index(after: hostPort.startIndex)..<close])
            let after = hostPort[hostPort.index(after: close)...]
            if after.hasPrefix(":") {
                guard let p = Int(after.dropFirst()), (1...65535).contains(p) else { throw Invalid(description: "--store: bad port") }
                port = p
            }
        } else if let colon = hostPort.lastIndex(of: ":") {
            host = String(hostPort[..<colon])
            guard let p = Int(hostPort[hostPort.index(after: colon)...]), (1...65535).contains(p) else {
                throw Invalid(description: "--store: bad port")
            }
            port = p
        }
        guard !host.isEmpty, host.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "." || $0 == "-" || $0 == ":" }) else {
            throw Invalid(description: "--store: bad host name")
        }
        self.host = host
        self.port = port
        self.database = database
        self.user = user ?? environment["CLICKHOUSE_USER"].flatMap { $0.isEmpty ? nil : $0 }
        self.password = password ?? environment["CLICKHOUSE_PASSWORD"].flatMap { $0.isEmpty ? nil : $0 }
    }

    /// Letters, digits and `_`, not starting with a digit: a name that needs no quoting in SQL.
    public static func isIdentifier(_ s: String) -> Bool {
        guard let first = s.unicodeScalars.first, !s.isEmpty, s.utf8.count <= 128 else { return false }
        if ("0"..."9").contains(first) { return false }
        return s.unicodeScalars.allSatisfy { ($0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0))) || $0 == "_" }
    }

    /// The URL as it may be shown: never the password.
    public var redacted: String {
        let h = host.contains(":") ? "[\(host)]" : host
        return "clickhouse://\(user.map { "\($0)@" } ?? "")\(h):\(port)/\(database)"
    }

    public var description: String { redacted }

    var httpBase: URL {
        let h = host.contains(":") ? "[\(host)]" : host
        return URL(string: "http://\(h):\(port)/")!
    }
}
