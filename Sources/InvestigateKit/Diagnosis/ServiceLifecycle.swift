/// What host logs say of a service's life: the kernel's OOM kills, systemd's exits, stops and
/// starts. A service killed minutes before a request is still down when it comes unless a start
/// follows, so the rules look back `lookback`, not only at the seconds around the request.
enum ServiceLifecycle {
    /// Looked for in messages (SQL LIKE, case-sensitive words as the kernel and systemd write them).
    static let phrases = ["Killed process", "Out of memory", "Main process exited", "Failed with result", "Stopped ", "Stopping ",
                          "Started ", "Starting ", "Shutting down", "Failed to start", "failed to boot", "failed to load",
                          "Start request repeated", "ModuleNotFoundError", "ImportError", "SyntaxError", "Exception in worker process", "Connection in use"]
    static let lookback: Int64 = 15 * 60_000_000

    static func isStart(_ m: String) -> Bool { m.hasPrefix("Started ") || m.hasPrefix("Starting ") }

    static func isDeath(_ m: String) -> Bool {
        m.contains("Killed process") || m.contains("Out of memory") || m.contains("Main process exited") || m.contains("Failed with result")
            || m.hasPrefix("Stopped ") || m.hasPrefix("Stopping ") || m.contains("Failed to start") || m.contains("Start request repeated")
    }

    /// Why a service would not start, in the look-back before `t`: Python's import and syntax
    /// errors, gunicorn's "Worker failed to boot" / "App failed to load", systemd's "Failed to
    /// start". The cause first (an import error), then the consequence.
    static func bootFailures(before t: Int64, in events: [StoredEvent]) -> [StoredEvent] {
        var seen = Set<Int64>()
        let found = events.filter { e in
            guard let time = e.event.time, time <= t + 2_000_000, time >= t - lookback, seen.insert(e.id).inserted else { return false }
            let m = e.messageText
            return m.contains("ModuleNotFoundError") || m.contains("ImportError") || m.contains("SyntaxError") || m.contains("Worker failed to boot")
                || m.contains("Exception in worker process") || m.contains("Connection in use")
                || m.contains("App failed to load") || m.contains("Failed to start") || m.contains("Start request repeated")
        }
        func rank(_ m: String) -> Int {
            m.contains("Error") && !m.contains("Failed to start") || m.contains("Exception in worker process") ? 0 : m.contains("failed to boot") || m.contains("failed to load") ? 1 : 2
        }
        return found.sorted { (rank($0.messageText), $0.event.time ?? 0, $0.id) < (rank($1.messageText), $1.event.time ?? 0, $1.id) }
    }

    /// The lines of the service's last death before `t` (up to 2 s after it, the order logs are
    /// flushed in), when no start followed: earliest first. Empty when it was up, or nothing says.
    static func downAt(_ t: Int64, service: String, in events: [StoredEvent]) -> [StoredEvent] {
        var seen = Set<Int64>()
        let about = events.filter { e in
            guard let time = e.event.time, time <= t + 2_000_000, seen.insert(e.id).inserted else { return false }
            let m = e.messageText
            return m.contains(service) && (isStart(m) || isDeath(m))
        }.sorted { ($0.event.time ?? 0, $0.id) < ($1.event.time ?? 0, $1.id) }
        guard let lastStart = about.lastIndex(where: { isStart($0.messageText) }) else { return about.filter { isDeath($0.messageText) } }
        return about[(lastStart + 1)...].filter { isDeath($0.messageText) }
    }
}
