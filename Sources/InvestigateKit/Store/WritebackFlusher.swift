import Foundation

/// Starts writing a bulk load's pages to disk while the load goes on, so the commit's sync finds
/// little left to wait for.
///
/// A commit syncs the database file (durability). After a large load nearly every page is still
/// dirty in the page cache (the kernel starts its own writeback only past a share of RAM), and that
/// sync waited about 0.5 s per 1.5 GB with both cores idle. A helper thread syncs through its own
/// read-only descriptor twice a second instead: the I/O overlaps the parsing and inserting. It is
/// safe whatever SQLite is doing: the kernel may write any dirty page at any time, and SQLite's
/// journal is built for exactly that. In WAL mode the load's pages go to the `-wal` file first and
/// the commit's checkpoint syncs both, so both are synced here.
final class WritebackFlusher {
    private let fd: Int32
    private let walPath: String
    private let condition = NSCondition()
    private var stopped = false
    private let finished = DispatchSemaphore(value: 0)

    /// nil when the file cannot be opened (an in-memory store): its commit then syncs as before.
    init?(path: String, interval: TimeInterval = 0.5) {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        self.fd = fd
        walPath = path + "-wal"
        let thread = Thread { [self] in
            var wal: Int32 = -1
            while waitForNextRound(interval) {
                // The log file appears with the first write of a connection in WAL mode.
                if wal < 0 { wal = open(walPath, O_RDONLY | O_CLOEXEC) }
                if wal >= 0 { _ = fdatasync(wal) }
                _ = fdatasync(fd)
            }
            if wal >= 0 { close(wal) }
            finished.signal()
        }
        thread.start()
    }

    /// Sleeps one interval; false once `stop()` was called.
    private func waitForNextRound(_ interval: TimeInterval) -> Bool {
        condition.lock()
        defer { condition.unlock() }
        if !stopped { _ = condition.wait(until: Date(timeIntervalSinceNow: interval)) }
        return !stopped
    }

    /// Ends the helper (after at most one sync in flight) and closes the descriptor. Call once.
    func stop() {
        condition.lock()
        stopped = true
        condition.signal()
        condition.unlock()
        finished.wait()
        close(fd)
    }
}
