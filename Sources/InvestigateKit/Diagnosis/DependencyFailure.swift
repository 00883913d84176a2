import Foundation

/// An application error that is its dependency failing, not its code: the database refusing
/// connections, a cache unreachable. The request's route is not at fault, and every route using
/// the dependency fails the same way at once; the answer names the dependency and how widely it
/// failed, so the fix is looked for in the right place.
public struct DependencyFailure: Sendable, Equatable {
    /// "database", "Redis", "memcached".
    public var dependency: String
    /// What the text says happened ("refused connections").
    public var what: String

    /// Phrases drivers and ORMs write when the server cannot be reached or will not take more
    /// connections, by dependency (psycopg2/psycopg, SQLAlchemy, PyMySQL/mysqlclient, Django,
    /// redis-py). Query errors (a syntax error, a missing column) are the app's own and not here.
    static let patterns: [(dependency: String, needles: [String], what: String)] = [
        ("database", ["could not connect to server", "connection to server at", "Can't connect to MySQL server", "Lost connection to MySQL server",
                      "server closed the connection unexpectedly", "the database system is starting up", "the database system is shutting down",
                      "too many clients already", "remaining connection slots are reserved", "Too many connections",
                      "QueuePool limit of size", "could not translate host name"], "could not be reached or took no more connections"),
        ("database", ["OperationalError"], "failed (an operational error, not a query bug)"),
        // Named for what it is: a Redis may be a cache, a session store or a queue.
        ("Redis", ["redis.exceptions.ConnectionError", "redis.exceptions.TimeoutError", "redis.exceptions.BusyLoadingError"], "could not be reached"),
        ("memcached", ["pymemcache.exceptions.MemcacheUnexpectedCloseError", "pymemcache.exceptions.MemcacheServerError"], "could not be reached"),
    ]

    public static func classify(_ text: String) -> DependencyFailure? {
        for p in patterns where p.needles.contains(where: { text.contains($0) }) {
            // An OperationalError naming a query problem (SQLite's "no such table") is the app's.
            if p.needles == ["OperationalError"], text.contains("no such table") || text.contains("no such column") || text.contains("syntax error") { continue }
            return DependencyFailure(dependency: p.dependency, what: p.what)
        }
        return nil
    }

    /// The app's error lines around the request that fail on the same dependency, and the paths
    /// they name: how widely it failed.
    static func spread(of failure: DependencyFailure, in c: RequestCase, excluding cited: Set<Int64>) -> (count: Int, paths: Set<String>) {
        var count = 0
        var paths = Set<String>()
        for e in c.nearby where (e.event.layer == .app || e.event.layer == .gunicorn) && !cited.contains(e.id) {
            // Errors only, tested cheaply before their text is searched: a dense outage's case
            // looks at thousands of lines.
            let level = (e.event.level ?? "").uppercased()
            guard level.hasPrefix("ERR") || level.hasPrefix("CRIT") || e.event.error != nil,
                  classify(e.text)?.dependency == failure.dependency else { continue }
            count += 1
            if let p = e.event.path { paths.insert(p) }
        }
        return (count, paths)
    }
}
