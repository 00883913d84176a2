import Foundation

/// The SHA-256 of a stream of content bytes fed in order, possibly twice (a pre-pass, then the
/// parsing pass from an earlier offset): bytes already hashed are skipped, so the digest covers
/// each byte once. It also keeps the digest as it stood just after the last newline (the content
/// of a plain file without its unterminated last line) and the first `ContentHead.length` bytes.
struct StreamDigest {
    private(set) var hasher = SHA256()
    /// Bytes hashed so far: `[0, covered)`.
    private(set) var covered: Int64 = 0
    /// The digest state just after the last `\n` hashed, and that offset (0: no newline yet).
    private(set) var atLastNewline = SHA256()
    private(set) var lastNewlineEnd: Int64 = 0
    /// The first bytes of the content (for `ContentHead`).
    private(set) var head: [UInt8] = []
    let keepsHead: Bool

    init(keepsHead: Bool = true) { self.keepsHead = keepsHead }

    /// Feeds `bytes`, which start at content offset `offset` (≤ `covered`: the stream has no gaps).
    mutating func feed(_ bytes: UnsafeRawBufferPointer, at offset: Int64) {
        let end = offset + Int64(bytes.count)
        guard end > covered, offset <= covered else { return }
        let part = UnsafeRawBufferPointer(rebasing: bytes[Int(covered - offset)...])
        if keepsHead, head.count < ContentHead.length {
            head.append(contentsOf: part.prefix(ContentHead.length - head.count))
        }
        if let upTo = Self.afterLastNewline(part) {
            hasher.update(UnsafeRawBufferPointer(rebasing: part[..<upTo]))
            atLastNewline = hasher
            lastNewlineEnd = covered + Int64(upTo)
            hasher.update(UnsafeRawBufferPointer(rebasing: part[upTo...]))
        } else {
            hasher.update(part)
        }
        covered = end
    }

    /// The index just after the last `\n` in `bytes` (scanned from the end: log lines are short).
    private static func afterLastNewline(_ bytes: UnsafeRawBufferPointer) -> Int? {
        var i = bytes.count
        while i > 0 {
            i -= 1
            if bytes[i] == 0x0A { return i + 1 }
        }
        return nil
    }
}

/// The key by which a stored source is found as the possible start of a new file's content,
/// without reading anything but the new file's first 4 KB: the SHA-256 of the content's first
/// 4,096 bytes, or, for content shorter than that, of its first line (through its `\n`). A
/// source that is a prefix of a file has the same key as the file's first 4 KB (when the source
/// has at least 4 KB) or as the file's first line (when it has less: a stored plain file always
/// ends with a newline, so its first line is whole). The key only proposes candidates; the
/// digest of the whole stored content decides.
enum ContentHead {
    static let length = 4096

    /// The keys a file's first bytes can match: its first 4 KB (nil when shorter) and its first line.
    struct Keys: Sendable, Equatable {
        var first4K: String?
        var firstLine: String
    }

    static func keys(_ head: [UInt8]) -> Keys {
        let prefix = Array(head.prefix(length))
        return Keys(first4K: prefix.count >= length ? SHA256.hex(prefix) : nil, firstLine: SHA256.hex(firstLine(prefix)))
    }

    /// The key stored for content whose first bytes are `head` and whose length is `size`.
    static func storedKey(_ head: [UInt8], size: Int64) -> String? {
        guard size > 0 else { return nil }
        if size >= Int64(length) { return SHA256.hex(Array(head.prefix(length))) }
        return SHA256.hex(firstLine(Array(head.prefix(Int(size)))))
    }

    private static func firstLine(_ bytes: [UInt8]) -> [UInt8] {
        if let newline = bytes.firstIndex(of: 0x0A) { return Array(bytes[...newline]) }
        return bytes
    }
}

/// A stored source whose whole content a new file may start with.
struct PrefixCandidate: Sendable, Equatable {
    let id: Int64
    let path: String
    let contentSize: Int64
    let contentSHA256: String
    /// Lines in its content (`start_line + lines`).
    let totalLines: Int
    /// A version stored only around a question's window (`covered_from`): its content is this
    /// file's start, but not all its records are stored, so reading never resumes after it; the
    /// lines it stored are left out instead (`PrefixMatcher.partialMatches`).
    var partial: Bool = false
}

/// Where a file's new lines start after the content of a stored source it begins with.
struct ContentResume: Sendable, Equatable {
    let source: PrefixCandidate
    /// Content offset where reading starts, and the lines before it.
    let offset: Int64
    let line: Int

    /// The stored content ended inside a line (a gzip file's unterminated last line, or a file
    /// stored before unterminated lines were held back): reading restarts at that line's start.
    var restartsLine: Bool { offset < source.contentSize }
}

/// Finds, in one pass over a file's content, the longest stored source the content starts with:
/// the content is hashed as it streams by, and the digest is compared at each candidate's size.
struct PrefixMatcher {
    private let sizes: [Int64]
    private let bySize: [Int64: [String: PrefixCandidate]]
    private let partialBySize: [Int64: [String: [PrefixCandidate]]]
    private var next = 0
    private(set) var best: ContentResume?
    /// Every partly stored version (`PrefixCandidate.partial`) this content starts with.
    private(set) var partialMatches: [PrefixCandidate] = []

    init(_ candidates: [PrefixCandidate]) {
        var bySize: [Int64: [String: PrefixCandidate]] = [:]
        var partialBySize: [Int64: [String: [PrefixCandidate]]] = [:]
        // Several rows may hold the same content (a duplicate row points at its original): the
        // oldest is the one cited.
        for c in candidates.sorted(by: { $0.id < $1.id }) where c.contentSize > 0 {
            if c.partial {
                partialBySize[c.contentSize, default: [:]][c.contentSHA256, default: []].append(c)
            } else if bySize[c.contentSize]?[c.contentSHA256] == nil {
                bySize[c.contentSize, default: [:]][c.contentSHA256] = c
            }
        }
        self.bySize = bySize
        self.partialBySize = partialBySize
        sizes = Set(bySize.keys).union(partialBySize.keys).sorted()
    }

    /// The largest candidate size: reading beyond it cannot change the answer.
    var limit: Int64 { sizes.last ?? 0 }

    /// Feeds content bytes starting at `offset` through `digest`, checking each candidate size crossed.
    mutating func consume(_ bytes: UnsafeRawBufferPointer, at offset: Int64, into digest: inout StreamDigest) {
        var position = 0
        while next < sizes.count {
            let boundary = sizes[next]
            let cut = boundary - offset
            if cut > Int64(bytes.count) { break }
            if cut > Int64(position) {
                digest.feed(UnsafeRawBufferPointer(rebasing: bytes[position..<Int(cut)]), at: offset + Int64(position))
                position = Int(cut)
            }
            if digest.covered == boundary, let partial = partialBySize[boundary]?[digest.hasher.hexDigest()] {
                partialMatches += partial
            }
            if digest.covered == boundary, let match = bySize[boundary]?[digest.hasher.hexDigest()] {
                if digest.lastNewlineEnd == boundary {
                    best = ContentResume(source: match, offset: boundary, line: match.totalLines)
                } else {
                    best = ContentResume(source: match, offset: digest.lastNewlineEnd, line: max(0, match.totalLines - 1))
                }
            }
            next += 1
        }
        if position < bytes.count {
            digest.feed(UnsafeRawBufferPointer(rebasing: bytes[position...]), at: offset + Int64(position))
        }
    }
}
