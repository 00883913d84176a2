import CZlib
import Foundation

/// Errors writing the simulated corpus.
public struct SimulationError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// A buffered byte writer to one file, plain or gzip. Gzip uses zlib's gzip wrapper at a fixed level
/// with no file name and MTIME 0, so the same lines always give the same bytes.
final class FileWriter {
    private let handle: UnsafeMutablePointer<FILE>
    private var buffer: [UInt8] = []
    private var deflater: UnsafeMutablePointer<z_stream>?
    private var outBuffer: [UInt8] = []
    private(set) var closed = false
    static let bufferSize = 64 * 1024
    static let gzipLevel: Int32 = 6

    init(path: String, gzip: Bool) throws {
        let directory = (path as NSString).deletingLastPathComponent
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        guard let handle = fopen(path, "wb") else { throw SimulationError("cannot create \(path)") }
        self.handle = handle
        buffer.reserveCapacity(Self.bufferSize + 4096)
        if gzip {
            let stream = UnsafeMutablePointer<z_stream>.allocate(capacity: 1)
            stream.initialize(to: z_stream())
            // windowBits 16+15: zlib writes the gzip header itself (no name, MTIME 0, OS byte fixed).
            guard deflateInit2_(stream, Self.gzipLevel, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY,
                                ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
                stream.deallocate()
                fclose(handle)
                throw SimulationError("zlib could not initialise for \(path)")
            }
            deflater = stream
            outBuffer = [UInt8](repeating: 0, count: Self.bufferSize)
        }
    }

    deinit { if !closed { try? close() } }

    func writeLine(_ text: String) {
        buffer.append(contentsOf: text.utf8)
        buffer.append(0x0A)
        if buffer.count >= Self.bufferSize { flush(final: false) }
    }

    func write(bytes: UnsafeRawBufferPointer) {
        buffer.append(contentsOf: bytes)
        if buffer.count >= Self.bufferSize { flush(final: false) }
    }

    private func flush(final: Bool) {
        guard let stream = deflater else {
            if !buffer.isEmpty { _ = buffer.withUnsafeBytes { fwrite($0.baseAddress, 1, $0.count, handle) } }
            buffer.removeAll(keepingCapacity: true)
            return
        }
        buffer.withUnsafeMutableBytes { input in
            stream.pointee.next_in = input.baseAddress?.assumingMemoryBound(to: Bytef.self)
            stream.pointee.avail_in = uInt(input.count)
            outBuffer.withUnsafeMutableBytes { output in
                guard let base = output.baseAddress?.assumingMemoryBound(to: Bytef.self) else { return }
                while true {
                    stream.pointee.next_out = base
                    stream.pointee.avail_out = uInt(output.count)
                    let status = deflate(stream, final ? Z_FINISH : Z_NO_FLUSH)
                    let produced = output.count - Int(stream.pointee.avail_out)
                    if produced > 0 { fwrite(base, 1, produced, handle) }
                    if final ? (status == Z_STREAM_END || status < 0) : (stream.pointee.avail_out != 0) { break }
                }
            }
        }
        buffer.removeAll(keepingCapacity: true)
    }

    func close() throws {
        guard !closed else { return }
        closed = true
        flush(final: true)
        if let stream = deflater {
            deflateEnd(stream)
            stream.deallocate()
            deflater = nil
        }
        guard fclose(handle) == 0 else { throw SimulationError("cannot finish writing a log file") }
    }
}

/// One output file: its path relative to the output directory (final once the run ends), its
/// line count, and while open its writer.
final class LogFile {
    let id: Int
    var relativePath: String
    var lines = 0
    var bytes = 0
    var writer: FileWriter?

    init(id: Int, relativePath: String, writer: FileWriter) {
        self.id = id
        self.relativePath = relativePath
        self.writer = writer
    }

    func write(_ text: String) {
        lines += 1
        bytes += text.utf8.count + 1
        writer?.writeLine(text)
    }

    func close() throws {
        try writer?.close()
        writer = nil
    }
}

/// The output directory: creates files and keeps the id → final path table truth.jsonl refers to.
final class OutputTree {
    let root: URL
    private(set) var files: [LogFile] = []

    init(root: URL) throws {
        self.root = root
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
    }

    func path(_ relative: String) -> String { root.appendingPathComponent(relative).path }

    func create(_ relative: String, gzip: Bool) throws -> LogFile {
        let file = LogFile(id: files.count, relativePath: relative, writer: try FileWriter(path: path(relative), gzip: gzip))
        files.append(file)
        return file
    }

    /// Gzips a finished plain file to a new name and removes the plain one (logrotate's `compress`).
    func compress(_ file: LogFile, to relative: String) throws {
        let source = path(file.relativePath)
        guard let input = fopen(source, "rb") else { throw SimulationError("cannot reopen \(source)") }
        defer { fclose(input) }
        let writer = try FileWriter(path: path(relative), gzip: true)
        var chunk = [UInt8](repeating: 0, count: 256 * 1024)
        while true {
            let n = chunk.withUnsafeMutableBytes { fread($0.baseAddress, 1, $0.count, input) }
            if n <= 0 { break }
            chunk.withUnsafeBytes { writer.write(bytes: UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
        }
        try writer.close()
        try FileManager.default.removeItem(atPath: source)
        file.relativePath = relative
    }

    func rename(_ file: LogFile, to relative: String) throws {
        guard relative != file.relativePath else { return }
        let target = path(relative)
        if FileManager.default.fileExists(atPath: target) { try FileManager.default.removeItem(atPath: target) }
        try FileManager.default.moveItem(atPath: path(file.relativePath), toPath: target)
        file.relativePath = relative
    }
}
