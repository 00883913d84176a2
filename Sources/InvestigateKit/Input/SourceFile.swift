import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Identity of an input file on disk, taken before reading it.
public struct FileStat: Sendable, Equatable {
    public var size: Int64
    /// Modification time, µs UTC.
    public var mtime: Int64
    public var inode: UInt64
    public var device: UInt64
    public var isDirectory: Bool
    public var isRegular: Bool

    public static func of(_ path: String, followLinks: Bool = true) throws -> FileStat {
        var st = stat()
        let rc = PathBytes.withCString(path) { followLinks ? stat($0, &st) : lstat($0, &st) }
        guard rc == 0 else { throw InputError.unreadable(path, String(cString: strerror(errno))) }
        #if canImport(Glibc)
        let mtime = Int64(st.st_mtim.tv_sec) * 1_000_000 + Int64(st.st_mtim.tv_nsec) / 1000
        #else
        let mtime = Int64(st.st_mtimespec.tv_sec) * 1_000_000 + Int64(st.st_mtimespec.tv_nsec) / 1000
        #endif
        let type = st.st_mode & S_IFMT
        return FileStat(size: Int64(st.st_size), mtime: mtime, inode: UInt64(st.st_ino), device: UInt64(st.st_dev),
                        isDirectory: type == S_IFDIR, isRegular: type == S_IFREG)
    }
}

public enum InputError: Error, CustomStringConvertible, Equatable {
    case unreadable(String, String)

    public var description: String {
        switch self {
        case .unreadable(let path, let why): return "\(path): \(why)"
        }
    }
}

/// A source log opened strictly read-only (`O_RDONLY`; evidence is never written to).
public final class ReadOnlyFile {
    public let path: String
    private let fd: Int32
    public static let chunkSize = 1 << 20

    public init(_ path: String) throws {
        self.path = path
        fd = PathBytes.withCString(path) { open($0, O_RDONLY | O_CLOEXEC) }
        guard fd >= 0 else { throw InputError.unreadable(path, String(cString: strerror(errno))) }
    }

    deinit { close(fd) }

    public func seek(to offset: Int64) throws {
        guard lseek(fd, off_t(offset), SEEK_SET) >= 0 else {
            throw InputError.unreadable(path, String(cString: strerror(errno)))
        }
    }

    /// Reads the file in chunks until its end (or `limit` bytes), calling `body` with each.
    public func forEachChunk(limit: Int64? = nil, _ body: (UnsafeRawBufferPointer) throws -> Void) throws {
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: Self.chunkSize, alignment: 16)
        defer { buffer.deallocate() }
        var total: Int64 = 0
        while true {
            var want = Self.chunkSize
            if let limit { want = Int(min(Int64(want), limit - total)) }
            if want <= 0 { break }
            let n = read(fd, buffer.baseAddress, want)
            if n < 0 {
                if errno == EINTR { continue }
                throw InputError.unreadable(path, String(cString: strerror(errno)))
            }
            if n == 0 { break }
            total += Int64(n)
            try body(UnsafeRawBufferPointer(rebasing: buffer[0..<n]))
        }
    }

    /// Up to `count` bytes from the start.
    public func prefix(_ count: Int) throws -> [UInt8] {
        var out = [UInt8](repeating: 0, count: count)
        let n = out.withUnsafeMutableBytes { pread(fd, $0.baseAddress, count, 0) }
        guard n >= 0 else { throw InputError.unreadable(path, String(cString: strerror(errno))) }
        return Array(out[0..<n])
    }
}

/// The digest pass over a file: SHA-256 of its bytes and, when asked, of a prefix (to recognise a
/// file that only grew since it was last ingested).
public struct FileDigest: Sendable, Equatable {
    public var sha256: String
    public var size: Int64
    public var prefixSHA256: String?
    /// gzip header MTIME of the first member, µs UTC, when the file is gzip and the field is set.
    public var gzipMTime: Int64?
    public var isGzip: Bool

    public static func compute(_ file: ReadOnlyFile, prefixLength: Int64? = nil) throws -> FileDigest {
        var hasher = SHA256()
        var prefixDigest: String?
        var size: Int64 = 0
        try file.seek(to: 0)
        try file.forEachChunk { chunk in
            if let prefixLength, prefixDigest == nil, size + Int64(chunk.count) >= prefixLength {
                let head = Int(prefixLength - size)
                hasher.update(UnsafeRawBufferPointer(rebasing: chunk[0..<head]))
                prefixDigest = hasher.hexDigest()
                hasher.update(UnsafeRawBufferPointer(rebasing: chunk[head...]))
            } else {
                hasher.update(chunk)
            }
            size += Int64(chunk.count)
        }
        if let prefixLength, prefixDigest == nil, size == prefixLength { prefixDigest = hasher.hexDigest() }
        let head = try file.prefix(10)
        let gz = GzipInflater.isGzip(head)
        var gzMTime: Int64?
        if gz, head.count >= 8 {
            let t = UInt32(head[4]) | UInt32(head[5]) << 8 | UInt32(head[6]) << 16 | UInt32(head[7]) << 24
            if t != 0 { gzMTime = Int64(t) * 1_000_000 }
        }
        return FileDigest(sha256: hasher.hexDigest(), size: size, prefixSHA256: prefixDigest, gzipMTime: gzMTime, isGzip: gz)
    }
}

/// Expands the user's paths into files: directories are walked recursively in byte order of their
/// names, symlinked directories are followed once (a loop is reported, not followed forever).
public struct InputWalker {
    public struct Problem: Sendable, Equatable {
        public var path: String
        public var reason: String
    }

    public private(set) var files: [String] = []
    public private(set) var problems: [Problem] = []
    private var visitedDirectories: Set<String> = []
    private var seenFiles: Set<String> = []

    public init() {}

    public static func expand(_ paths: [String]) -> InputWalker {
        var walker = InputWalker()
        for path in paths { walker.visit(path, depth: 0) }
        return walker
    }

    private mutating func visit(_ path: String, depth: Int) {
        guard depth < 64 else {
            problems.append(Problem(path: path, reason: "directory nesting deeper than 64 levels; not followed"))
            return
        }
        let st: FileStat
        do { st = try FileStat.of(path) } catch {
            problems.append(Problem(path: path, reason: (try? FileStat.of(path, followLinks: false)) != nil
                                    ? "broken symbolic link" : "cannot read: \(error)"))
            return
        }
        let key = "\(st.device):\(st.inode)"
        if st.isDirectory {
            guard visitedDirectories.insert(key).inserted else {
                problems.append(Problem(path: path, reason: "directory already visited (symbolic-link loop); not followed again"))
                return
            }
            let entries: [String]
            // Names as bytes: a name that is not UTF-8 is still a file to read (`PathBytes`).
            do { entries = try PathBytes.directoryEntries(path) } catch {
                problems.append(Problem(path: path, reason: "cannot list directory: \(error)"))
                return
            }
            // Each name turned into bytes once, not per comparison (that was a fifth of a question
            // re-asked over 7,875 files).
            let byBytes = entries.map { (name: $0, key: PathBytes.bytes(of: $0)) }.sorted { $0.key.lexicographicallyPrecedes($1.key) }
            for name in byBytes.map(\.name) {
                visit(path.hasSuffix("/") ? path + name : path + "/" + name, depth: depth + 1)
            }
        } else if st.isRegular {
            if seenFiles.insert(key).inserted { files.append(path) }
        } else {
            problems.append(Problem(path: path, reason: "not a regular file"))
        }
    }
}
