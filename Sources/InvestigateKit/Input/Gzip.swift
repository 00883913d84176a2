import CZlib
import Foundation

/// Streaming gzip decoder over zlib. Reads every member of a multi-member stream (what `cat a.gz b.gz`
/// and some log shippers produce), and on a truncated or corrupt stream keeps what decoded and says
/// where it stopped instead of failing the whole file.
public final class GzipInflater {
    public enum State: Equatable {
        case running
        /// The last member ended cleanly.
        case finished
        /// The input ended inside a member.
        case truncated
        /// zlib refused the data (`message` from zlib).
        case corrupt(String)
    }

    private var stream = z_stream()
    private var initialised = false
    public private(set) var state: State = .running
    public private(set) var members = 0
    /// Bytes after the last member that are not another gzip member.
    public private(set) var trailingGarbage = 0
    private var atMemberStart = true
    private var pendingHeaderBytes: [UInt8] = []
    private let outBuffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 256 * 1024, alignment: 16)

    public init() {
        initialised = inflateInit2_(&stream, 16 + MAX_WBITS, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size)) == Z_OK
        if !initialised { state = .corrupt("zlib could not initialise") }
    }

    deinit {
        if initialised { inflateEnd(&stream) }
        outBuffer.deallocate()
    }

    /// True when the bytes start with the gzip magic number.
    public static func isGzip(_ prefix: UnsafeRawBufferPointer) -> Bool {
        prefix.count >= 2 && prefix[0] == 0x1f && prefix[1] == 0x8b
    }

    public static func isGzip(_ prefix: [UInt8]) -> Bool {
        prefix.count >= 2 && prefix[0] == 0x1f && prefix[1] == 0x8b
    }

    /// Feeds compressed bytes; calls `output` with each decompressed piece (valid during the call).
    public func feed(_ input: UnsafeRawBufferPointer, output: (UnsafeRawBufferPointer) -> Void) {
        guard state == .running, input.count > 0 else {
            if case .finished = state { trailingGarbage += input.count }
            return
        }
        var offset = 0
        while offset < input.count, state == .running {
            if atMemberStart && members > 0 {
                // Between members: the next bytes must be another gzip header, else it is trailing junk.
                let remaining = input.count - offset
                if pendingHeaderBytes.count + remaining < 2 {
                    pendingHeaderBytes.append(input[offset])
                    return
                }
                var probe = pendingHeaderBytes
                probe.append(contentsOf: UnsafeRawBufferPointer(rebasing: input[offset..<min(input.count, offset + 2)]))
                if !(probe[0] == 0x1f && probe[1] == 0x8b) {
                    trailingGarbage += pendingHeaderBytes.count + remaining
                    pendingHeaderBytes = []
                    state = .finished
                    return
                }
                if !pendingHeaderBytes.isEmpty {
                    // Re-feed the held-back byte through zlib first.
                    let held = pendingHeaderBytes
                    pendingHeaderBytes = []
                    atMemberStart = false
                    _ = held.withUnsafeBytes { feedRaw($0, output) }
                }
            }
            atMemberStart = false
            let chunk = UnsafeRawBufferPointer(rebasing: input[offset...])
            let consumed = feedRaw(chunk, output)
            offset += consumed
            if consumed == 0 && state == .running { break }
        }
    }

    /// Returns how many input bytes zlib consumed.
    @discardableResult
    private func feedRaw(_ input: UnsafeRawBufferPointer, _ output: (UnsafeRawBufferPointer) -> Void) -> Int {
        stream.next_in = UnsafeMutablePointer(mutating: input.baseAddress!.assumingMemoryBound(to: Bytef.self))
        stream.avail_in = uInt(input.count)
        while true {
            stream.next_out = outBuffer.baseAddress!.assumingMemoryBound(to: Bytef.self)
            stream.avail_out = uInt(outBuffer.count)
            let rc = inflate(&stream, Z_NO_FLUSH)
            let produced = outBuffer.count - Int(stream.avail_out)
            if produced > 0 { output(UnsafeRawBufferPointer(rebasing: outBuffer[0..<produced])) }
            switch rc {
            case Z_STREAM_END:
                members += 1
                inflateReset(&stream)
                atMemberStart = true
                return input.count - Int(stream.avail_in)
            case Z_OK:
                if stream.avail_in == 0 && stream.avail_out != 0 { return input.count }
            case Z_BUF_ERROR:
                return input.count - Int(stream.avail_in)
            default:
                let message = stream.msg.map { String(cString: $0) } ?? "error \(rc)"
                state = .corrupt(message)
                return input.count
            }
        }
    }

    /// The input has ended: settles the final state.
    public func finish() {
        guard state == .running else { return }
        if atMemberStart && members > 0 {
            trailingGarbage += pendingHeaderBytes.count
            state = .finished
        } else {
            state = .truncated
        }
    }

    /// Decompresses a whole in-memory gzip buffer (CloudWatch subscription payloads, tests).
    public static func gunzip(_ data: [UInt8]) throws -> [UInt8] {
        let inflater = GzipInflater()
        var result: [UInt8] = []
        data.withUnsafeBytes { raw in inflater.feed(raw) { result.append(contentsOf: $0) } }
        inflater.finish()
        switch inflater.state {
        case .finished: return result
        case .truncated: throw ImporterError("gzip data is truncated")
        case .corrupt(let m): throw ImporterError("gzip data is corrupt: \(m)")
        case .running: return result
        }
    }

    /// Compresses bytes as one gzip member (used by tests and the simulator's S3-style objects).
    public static func gzip(_ data: [UInt8], level: Int32 = 6) -> [UInt8] {
        var stream = z_stream()
        guard deflateInit2_(&stream, level, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY, ZLIB_VERSION,
                            Int32(MemoryLayout<z_stream>.size)) == Z_OK else { return [] }
        defer { deflateEnd(&stream) }
        var out = [UInt8](repeating: 0, count: Int(deflateBound(&stream, uLong(data.count))) + 64)
        var input = data
        let produced: Int = input.withUnsafeMutableBytes { inBuf in
            out.withUnsafeMutableBytes { outBuf in
                stream.next_in = inBuf.baseAddress?.assumingMemoryBound(to: Bytef.self)
                stream.avail_in = uInt(inBuf.count)
                stream.next_out = outBuf.baseAddress!.assumingMemoryBound(to: Bytef.self)
                stream.avail_out = uInt(outBuf.count)
                _ = deflate(&stream, Z_FINISH)
                return outBuf.count - Int(stream.avail_out)
            }
        }
        return Array(out[0..<produced])
    }
}
