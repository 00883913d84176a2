import Foundation
import Testing
@testable import InvestigateKit

@Suite struct WritebackFlusherTests {
    /// How many of this process's descriptors are open on `path` (tests run in parallel, so other
    /// descriptors come and go; the path is unique to the test).
    static func descriptors(on path: String) -> Int {
        let fds = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? []
        return fds.filter { (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/" + $0)) == path }.count
    }

    /// The helper syncs while the file is written and goes away cleanly: `stop()` returns without
    /// waiting out its interval, and its descriptor is closed (an ingest of thousands of files
    /// starts one per bulk load).
    @Test func stopsPromptlyAndClosesItsDescriptor() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("flusher-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        #expect(FileManager.default.createFile(atPath: path, contents: Data(count: 1 << 20)))
        let started = Date()
        for _ in 0..<20 {
            let flusher = try #require(WritebackFlusher(path: path, interval: 60))
            flusher.stop()
        }
        #expect(Date().timeIntervalSince(started) < 30, "stop() waited for the 60 s interval")
        let flusher = try #require(WritebackFlusher(path: path, interval: 0.001))
        #expect(Self.descriptors(on: path) == 1)
        let handle = try #require(FileHandle(forWritingAtPath: path))
        for _ in 0..<50 { handle.write(Data(count: 64 << 10)); Thread.sleep(forTimeInterval: 0.001) }
        try handle.close()
        flusher.stop()
        #expect(Self.descriptors(on: path) == 0)
    }

    @Test func aFileThatCannotBeOpenedGivesNoFlusher() {
        #expect(WritebackFlusher(path: "/nonexistent/investigate.db") == nil)
    }
}
