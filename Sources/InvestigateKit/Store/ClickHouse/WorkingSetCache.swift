import Foundation

/// Working sets kept between questions: asking about the same window again opens the working set
/// the last question fetched instead of fetching and correlating it anew, as long as ClickHouse
/// still holds exactly what it was fetched from.
///
/// **How a change is seen.** Every question first asks ClickHouse for the window's committed files
/// (`ClickHouseWindow.plan`, one small query): each file's SHA-256, committed attempt and whole
/// `source` row. An entry is named by a SHA-256 of that answer, byte for byte, together with the
/// server, database, user, the fetched span and the running binary. A file another machine stores
/// whose records meet the window commits a `source` row (always last, after its events), so the
/// answer, and with it the name, changes: the question fetches afresh. The same holds for a file
/// whose committed attempt changes (a race between two ingests) or whose rows are deleted with
/// their `source` row. Not seen: rows of `event` or `rejected` altered by hand in ClickHouse
/// (`ALTER TABLE … UPDATE/DELETE`) while the `source` row stays; `INVESTIGATE_CACHE_DIR=off`
/// turns the cache off.
///
/// Entries are written under a temporary name and linked into place once complete, so a question
/// never opens a half-written one, and are never replaced or changed after: a changed window gets a
/// new name.
/// The least recently used beyond `keep` entries or `maxBytes` are removed. The directory is made
/// readable by its owner only: it holds log records.
public struct WorkingSetCache: Sendable {
    public let directory: String
    public var keep = 8
    public var maxBytes: Int64 = 4 << 30

    public init(directory: String) { self.directory = directory }

    /// `INVESTIGATE_CACHE_DIR` (`off` or empty: no cache), else `$XDG_CACHE_HOME/investigate/working-sets`,
    /// else `~/.cache/investigate/working-sets`.
    public static func standard(environment: [String: String] = ProcessInfo.processInfo.environment) -> WorkingSetCache? {
        if let given = environment["INVESTIGATE_CACHE_DIR"] {
            return given.isEmpty || given == "off" ? nil : WorkingSetCache(directory: given)
        }
        if let xdg = environment["XDG_CACHE_HOME"], xdg.hasPrefix("/") {
            return WorkingSetCache(directory: xdg + "/investigate/working-sets")
        }
        guard let home = environment["HOME"], home.hasPrefix("/") else { return nil }
        return WorkingSetCache(directory: home + "/.cache/investigate/working-sets")
    }

    /// Creates the directory (owner only); false when it cannot be used.
    public func prepare() -> Bool {
        let fm = FileManager.default
        do {
            try fm.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        } catch { return false }
        var st = stat()
        // Only a directory of our own (not one another user made for us to write into).
        guard lstat(directory, &st) == 0, (st.st_mode & S_IFMT) == S_IFDIR, st.st_uid == geteuid() else { return false }
        if st.st_mode & 0o077 != 0 { chmod(directory, 0o700) }
        return access(directory, W_OK) == 0
    }

    /// The file an up-to-date working set for `plan` lives in.
    public func path(for plan: ClickHouseWindow.Plan, client: ClickHouseClient) -> String {
        var h = SHA256()
        let url = client.url
        let identity = [
            "v1", url.host, String(url.port), url.database, url.user ?? "", String(plan.lo), String(plan.hi),
            InvestigateKit.version, Self.binaryIdentity,
        ].joined(separator: "\n")
        h.update(Array(identity.utf8))
        h.update([0])
        h.update(plan.answer)
        return directory + "/" + h.hexDigest() + ".db"
    }

    /// A temporary name in the directory to fetch into before `publish`.
    public func temporaryPath() -> String {
        directory + "/.partial-\(getpid())-\(UUID().uuidString).db"
    }

    /// Moves a complete working set (closed) into place, unless another question published the
    /// same entry meanwhile (then that one stays: an entry open elsewhere is never replaced, and
    /// both hold the same). `link` then `unlink`: an atomic rename that does not overwrite.
    public func publish(_ temporary: String, as path: String) throws {
        defer { for suffix in ["", "-wal", "-shm", "-journal"] { unlink(temporary + suffix) } }
        guard link(temporary, path) == 0 || errno == EEXIST else {
            throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: path])
        }
    }

    /// Marks an entry used now (the least recently used are removed first).
    public func touch(_ path: String) {
        utimes(path, nil)
    }

    /// Removes entries beyond `keep` or `maxBytes` (least recently used first), and partial files
    /// a killed question left more than an hour ago.
    public func prune() {
        let fm = FileManager.default
        guard let names = try? fm.contentsOfDirectory(atPath: directory) else { return }
        var entries: [(path: String, used: Date, size: Int64)] = []
        for name in names {
            let path = directory + "/" + name
            guard let attributes = try? fm.attributesOfItem(atPath: path),
                  let modified = attributes[.modificationDate] as? Date else { continue }
            if name.hasPrefix(".partial-") {
                if Date().timeIntervalSince(modified) > 3600 { try? fm.removeItem(atPath: path) }
                continue
            }
            guard name.hasSuffix(".db"), name.count == 67 else { continue }
            entries.append((path, modified, (attributes[.size] as? NSNumber)?.int64Value ?? 0))
        }
        entries.sort { $0.used > $1.used }
        var total: Int64 = 0
        for (i, entry) in entries.enumerated() {
            total += entry.size
            if i >= keep || total > maxBytes {
                for suffix in ["", "-wal", "-shm", "-journal"] { unlink(entry.path + suffix) }
            }
        }
    }

    /// The running executable (path, size, modification time): a rebuilt binary, whose local schema
    /// or correlation may differ, does not open the working sets of another.
    static let binaryIdentity: String = {
        let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments.first ?? ""
        var st = stat()
        guard !exe.isEmpty, stat(exe, &st) == 0 else { return exe }
        return "\(exe) \(st.st_size) \(st.st_mtim.tv_sec).\(st.st_mtim.tv_nsec)"
    }()
}
