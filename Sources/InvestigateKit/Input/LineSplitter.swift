import Foundation

/// Cuts a byte stream into lines without copying the common case: a line wholly inside a chunk is
/// handed out as a pointer into that chunk. A line longer than `maxLineLength` is not buffered
/// whole (a 5 GB line must not take 5 GB of memory): its first `keptPrefix` bytes are handed to
/// `overlong` with its real length, and the rest is skipped.
public struct LineSplitter {
    public let maxLineLength: Int
    public let keptPrefix: Int
    private var carry: [UInt8] = []
    private var overflowing = false
    private var overflowLength = 0
    public private(set) var lineNumber: Int

    /// Default limit on a line we parse: larger records (a 5 MB WAF header list) are kept as rejected
    /// evidence instead.
    public static let defaultMaxLineLength = 4 * 1024 * 1024

    public init(maxLineLength: Int = LineSplitter.defaultMaxLineLength, keptPrefix: Int = 64 * 1024, firstLineNumber: Int = 1) {
        self.maxLineLength = maxLineLength
        self.keptPrefix = min(keptPrefix, maxLineLength)
        self.lineNumber = firstLineNumber - 1
    }

    /// Feeds a chunk. `line` receives each complete line (without `\n` or a trailing `\r`);
    /// `overlong` receives the kept prefix, the line number and the full length of an over-long line.
    public mutating func feed(_ chunk: UnsafeRawBufferPointer,
                              line: (Line) -> Void,
                              overlong: (Line, Int) -> Void) {
        guard let base = chunk.baseAddress?.assumingMemoryBound(to: UInt8.self) else { return }
        var start = 0
        let count = chunk.count
        while start < count {
            let remaining = count - start
            let found = memchr(base + start, 0x0A, remaining)
            if let found {
                let end = UnsafePointer<UInt8>(found.assumingMemoryBound(to: UInt8.self)) - base
                if overflowing {
                    overflowLength += end - start
                    finishOverflow(overlong)
                } else if carry.isEmpty {
                    if end - start > maxLineLength {
                        lineNumber += 1
                        emitOverlong(UnsafeBufferPointer(start: base + start, count: keptPrefix), length: end - start, overlong)
                    } else {
                        lineNumber += 1
                        line(Line(bytes: trimCR(UnsafeBufferPointer(start: base + start, count: end - start)), number: lineNumber))
                    }
                } else {
                    if carry.count + (end - start) > maxLineLength {
                        startOverflow(UnsafeBufferPointer(start: base + start, count: end - start))
                        finishOverflow(overlong)
                    } else {
                        carry.append(contentsOf: UnsafeBufferPointer(start: base + start, count: end - start))
                        lineNumber += 1
                        carry.withUnsafeBufferPointer { line(Line(bytes: trimCR($0), number: lineNumber)) }
                        carry.removeAll(keepingCapacity: carry.capacity <= 1 << 20)
                    }
                }
                start = end + 1
            } else {
                let piece = UnsafeBufferPointer(start: base + start, count: remaining)
                if overflowing {
                    overflowLength += remaining
                } else if carry.count + remaining > maxLineLength {
                    startOverflow(piece)
                } else {
                    carry.append(contentsOf: piece)
                }
                start = count
            }
        }
    }

    /// End of input: a last line without a newline is still a line.
    public mutating func finish(line: (Line) -> Void, overlong: (Line, Int) -> Void) {
        if overflowing {
            finishOverflow(overlong)
        } else if !carry.isEmpty {
            lineNumber += 1
            carry.withUnsafeBufferPointer { line(Line(bytes: trimCR($0), number: lineNumber)) }
            carry = []
        }
    }

    /// Whatever is held of an unfinished last line (used when a gzip stream is truncated).
    public var hasPartialLine: Bool { !carry.isEmpty || overflowing }

    /// The length in bytes of the unfinished last line held so far (0 when none).
    public var partialLength: Int { overflowing ? overflowLength : carry.count }

    /// The start of the unfinished line, for format detection when no line has ended yet (a
    /// Firehose object is one newline-free line).
    public func partialPrefix(_ count: Int) -> [UInt8] { Array(carry.prefix(count)) }

    private mutating func startOverflow(_ piece: UnsafeBufferPointer<UInt8>) {
        overflowing = true
        overflowLength = carry.count + piece.count
        if carry.count < keptPrefix {
            carry.append(contentsOf: piece.prefix(keptPrefix - carry.count))
        } else if carry.count > keptPrefix {
            carry.removeLast(carry.count - keptPrefix)
        }
    }

    private mutating func finishOverflow(_ overlong: (Line, Int) -> Void) {
        lineNumber += 1
        let n = lineNumber
        let length = overflowLength
        carry.withUnsafeBufferPointer { overlong(Line(bytes: $0, number: n), length) }
        carry = []
        overflowing = false
        overflowLength = 0
    }

    private mutating func emitOverlong(_ prefix: UnsafeBufferPointer<UInt8>, length: Int, _ overlong: (Line, Int) -> Void) {
        overlong(Line(bytes: prefix, number: lineNumber), length)
    }

    @inline(__always)
    private func trimCR(_ b: UnsafeBufferPointer<UInt8>) -> UnsafeBufferPointer<UInt8> {
        if let last = b.last, last == 0x0D { return UnsafeBufferPointer(rebasing: b.dropLast()) }
        return b
    }
}
