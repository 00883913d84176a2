import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// A failure talking to ClickHouse. `transient` failures (the server unreachable, a dropped
/// connection, a timeout, "too many parts") may succeed when tried again; the others (a syntax
/// error, a wrong password, a missing table) will not. The message never holds the password.
public struct ClickHouseError: Error, CustomStringConvertible {
    public var message: String
    public var transient: Bool
    /// Whether the request may have reached the server (so a retried INSERT must first check
    /// whether the first one landed).
    public var maybeApplied: Bool
    public var description: String { message }
}

/// The HTTP interface of one ClickHouse server (POST, the statement in the `query` parameter or in
/// the body, data in the body). Synchronous: the ingest writer and the window fetcher run on their
/// own threads. Credentials go in an `Authorization: Basic` header, never in the URL.
public final class ClickHouseClient: @unchecked Sendable {
    public let url: ClickHouseURL
    private let timeout: TimeInterval
    private let session: URLSession
    private let authorization: String?

    public init(_ url: ClickHouseURL, timeout: TimeInterval = 120) {
        self.url = url
        self.timeout = timeout
        let config = URLSessionConfiguration.ephemeral
        config.timeoutIntervalForRequest = timeout
        config.timeoutIntervalForResource = timeout * 10
        config.httpMaximumConnectionsPerHost = 4
        config.urlCache = nil
        config.httpCookieStorage = nil
        config.urlCredentialStorage = nil
        // A 401 carries `WWW-Authenticate`, and Foundation on Linux then waits for an answer to the
        // challenge that never comes without a delegate: a wrong password hung the command. The
        // delegate refuses every challenge (the credentials are already in the header).
        session = URLSession(configuration: config, delegate: RefuseChallenges(), delegateQueue: nil)
        if let user = url.user ?? (url.password != nil ? "default" : nil) {
            authorization = "Basic " + Data("\(user):\(url.password ?? "")".utf8).base64EncodedString()
        } else {
            authorization = nil
        }
    }

    deinit { session.finishTasksAndInvalidate() }

    /// Runs `sql` (a SELECT, DDL or any statement without data) and returns its output bytes.
    @discardableResult
    public func query(_ sql: String, database: Bool = true) throws -> [UInt8] {
        try send(parameters: database ? [("database", url.database)] : [], body: Data(sql.utf8))
    }

    /// Runs the SELECT `sql` and hands its output to `consume` piece by piece as it arrives, each
    /// piece only once the previous one has been consumed: memory stays one buffer whatever the
    /// size of the answer (`HTTPStream`). An error thrown by `consume` ends the request.
    public func stream(_ sql: String, _ consume: (UnsafeRawBufferPointer) throws -> Void) throws {
        let http = HTTPStream(host: url.host, port: url.port, timeout: timeout)
        var headers = [("Content-Type", "application/octet-stream")]
        if let authorization { headers.append(("Authorization", authorization)) }
        let outcome: HTTPStream.Outcome
        do {
            // The database name is an identifier (`ClickHouseURL.isIdentifier`): nothing to encode.
            outcome = try http.post("/?database=\(url.database)", headers: headers, body: Array(sql.utf8)) { piece in
                do { try consume(piece) } catch let malformed as TabSeparated.Malformed {
                    // A server error after the answer began is written into the body (the status was
                    // already sent): name it rather than the broken row it makes.
                    let text = String(decoding: piece.suffix(4000), as: UTF8.self)
                    guard let code = text.range(of: "Code: ") else { throw malformed }
                    let message = String(text[code.lowerBound...]).trimmingCharacters(in: .whitespacesAndNewlines)
                    throw ClickHouseError(message: redact("ClickHouse at \(url.redacted) failed mid-answer: \(Escape.terminal(message, limit: 600))"),
                                          transient: Self.isTransientServerError(message), maybeApplied: true)
                }
            }
        } catch let failure as HTTPStream.Failure {
            throw ClickHouseError(message: redact("ClickHouse at \(url.redacted) unreachable: \(failure.detail)"),
                                  transient: failure.kind != .protocolError, maybeApplied: failure.sent)
        }
        try check(status: outcome.status, body: outcome.errorBody)
    }

    /// Runs `INSERT INTO table (columns) FORMAT TabSeparated` with `rows` as its data.
    public func insert(_ table: String, columns: [String], rows: [UInt8]) throws {
        precondition(ClickHouseURL.isIdentifier(table) && columns.allSatisfy(ClickHouseURL.isIdentifier))
        let statement = "INSERT INTO \(url.database).\(table) (\(columns.joined(separator: ", "))) FORMAT TabSeparated"
        try send(parameters: [("query", statement)], body: Data(rows))
    }

    /// The server's version (`SELECT version()`), e.g. `18.16.1`.
    public func version() throws -> String {
        String(decoding: try query("SELECT version()", database: false), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    private func send(parameters: [(String, String)], body: Data) throws -> [UInt8] {
        var components = URLComponents(url: url.httpBase, resolvingAgainstBaseURL: false)!
        components.queryItems = parameters.map { URLQueryItem(name: $0.0, value: $0.1) }
        // URLComponents leaves '+' alone, which a server reads as a space: encode it.
        components.percentEncodedQuery = components.percentEncodedQuery?.replacingOccurrences(of: "+", with: "%2B")
        var request = URLRequest(url: components.url!)
        request.httpMethod = "POST"
        request.httpBody = body
        request.setValue("application/octet-stream", forHTTPHeaderField: "Content-Type")
        if let authorization { request.setValue(authorization, forHTTPHeaderField: "Authorization") }

        let done = DispatchSemaphore(value: 0)
        nonisolated(unsafe) var result: (Data?, URLResponse?, Error?)
        let task = session.dataTask(with: request) { data, response, error in
            result = (data, response, error)
            done.signal()
        }
        task.resume()
        done.wait()
        let (data, response, error) = result
        if let error {
            let code = (error as? URLError)?.code
            if code == .cancelled || code == .userAuthenticationRequired || code == .userCancelledAuthentication {
                throw ClickHouseError(message: redact("ClickHouse at \(url.redacted) refused the credentials (HTTP 401): set CLICKHOUSE_USER "
                                                      + "and CLICKHOUSE_PASSWORD, or the user and password in the URL"),
                                      transient: false, maybeApplied: false)
            }
            // Refused or unresolvable: the request never reached a server.
            let notSent = code == .cannotConnectToHost || code == .cannotFindHost || code == .dnsLookupFailed
            throw ClickHouseError(message: redact("ClickHouse at \(url.redacted) unreachable: \(error.localizedDescription)"),
                                  transient: true, maybeApplied: !notSent)
        }
        let status = (response as? HTTPURLResponse)?.statusCode ?? 0
        let bytes = data.map { [UInt8]($0) } ?? []
        try check(status: status, body: bytes)
        return bytes
    }

    private func check(status: Int, body: [UInt8]) throws {
        if status == 401 {
            throw ClickHouseError(message: redact("ClickHouse at \(url.redacted) refused the credentials (HTTP 401): set CLICKHOUSE_USER "
                                                  + "and CLICKHOUSE_PASSWORD, or the user and password in the URL"),
                                  transient: false, maybeApplied: false)
        }
        guard status == 200 else {
            let text = String(decoding: body.prefix(2000), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            let transient = status >= 500 && Self.isTransientServerError(text)
            throw ClickHouseError(message: redact("ClickHouse at \(url.redacted) answered HTTP \(status): \(Escape.terminal(text, limit: 600))"),
                                  transient: transient, maybeApplied: transient)
        }
    }

    /// Server errors worth another try: overload, a replica or ZooKeeper away, a network hiccup
    /// between servers, too many parts to merge, a server shutting down.
    static func isTransientServerError(_ text: String) -> Bool {
        let codes = ["Code: 202,", "Code: 209,", "Code: 210,", "Code: 225,", "Code: 242,", "Code: 252,", "Code: 319,",
                     "Code: 394,", "Code: 999,", "Code: 159,", "Code: 425,"]
        return codes.contains { text.hasPrefix($0) || text.contains(" \($0)") } || text.contains("Too many parts")
            || text.contains("Timeout") || text.contains("Connection reset")
    }

    /// Belt and braces: a server error that echoed the password (it does not) would not reach output.
    func redact(_ text: String) -> String {
        guard let password = url.password, !password.isEmpty else { return text }
        return text.replacingOccurrences(of: password, with: "***")
    }
}

/// Refuses authentication challenges, so that a 401 ends the request instead of waiting.
private final class RefuseChallenges: NSObject, URLSessionTaskDelegate, @unchecked Sendable {
    func urlSession(_ session: URLSession, task: URLSessionTask, didReceive challenge: URLAuthenticationChallenge,
                    completionHandler: @escaping (URLSession.AuthChallengeDisposition, URLCredential?) -> Void) {
        completionHandler(.cancelAuthenticationChallenge, nil)
    }
}
