import Foundation
import Testing
@testable import InvestigateKit

/// File names that are not UTF-8 are read, stored and shown (escaped), never lost.
@Suite struct PathBytesTests {
    @Test func everyByteSequenceRoundTrips() {
        var generator = SystemRandomNumberGenerator()
        let samples: [[UInt8]] = [
            Array("access.log".utf8), [0x61, 0xFF, 0x62], [0xC3, 0xA9], [0xC3], [0xED, 0xA0, 0x80],  // a lone surrogate's bytes
            Array("\u{F7FF}".utf8), Array("日本語.log".utf8), [0xF0, 0x9F, 0x98, 0x80], [0x80, 0x80, 0xFE],
        ] + (0..<2000).map { _ in (0..<Int.random(in: 0...12, using: &generator)).map { _ in UInt8.random(in: 1...255, using: &generator) } }
        for bytes in samples {
            let s = PathBytes.string(bytes)
            #expect(PathBytes.bytes(of: s) == bytes, "\(bytes)")
        }
        // Valid UTF-8 outside the escape range stays itself.
        #expect(PathBytes.string(Array("日本語.log".utf8)) == "日本語.log")
    }

    @Test func aFileWhoseNameIsNotUTF8IsIngestedAndShownEscaped() throws {
        let dir = try TemporaryDirectory()
        let name: [UInt8] = Array("acc".utf8) + [0xFF] + Array("ess.log".utf8)
        var path = Array(dir.path.utf8) + [0x2F] + name
        path.append(0)
        let line = "198.51.100.1 - - [06/Feb/2025:05:32:00 +0000] \"GET / HTTP/1.1\" 200 5 \"-\" \"curl/8.5.0\"\n"
        let fd = path.withUnsafeBufferPointer { b in b.withMemoryRebound(to: CChar.self) { open($0.baseAddress!, O_CREAT | O_WRONLY, 0o644) } }
        #expect(fd >= 0)
        _ = line.utf8CString.withUnsafeBufferPointer { write(fd, $0.baseAddress!, line.utf8.count) }
        close(fd)

        let store = try TimelineStore()
        let walked = try Ingester(store: store).ingest(paths: [dir.path])
        let file = try #require(walked.files.first)
        #expect(file.status == .ingested && file.events == 1)
        #expect(PathBytes.bytes(of: file.path).suffix(name.count) == name[...])
        #expect(Escape.terminal(file.path).hasSuffix("acc\\xffess.log"))
        // The same file named directly, as a shell passes it.
        let direct = try Ingester(store: try TimelineStore()).ingest(paths: [file.path])
        #expect(direct.files.first?.events == 1)
    }
}
