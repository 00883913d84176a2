import Foundation
@testable import InvestigateKit

/// Where the repository and the shared real-log corpus are. Tests that read the corpus are
/// `.enabled(if: Corpus.available)` so they skip cleanly on a machine without `../shared`.
enum Corpus {
    static let repositoryRoot: URL = {
        var url = URL(fileURLWithPath: #filePath)
        // Tests/InvestigateKitTests/Support/TestSupport.swift → repository root
        for _ in 0..<4 { url.deleteLastPathComponent() }
        return url
    }()

    static let root = repositoryRoot.deletingLastPathComponent().appendingPathComponent("shared/corpus")

    static var available: Bool { FileManager.default.fileExists(atPath: root.path) }

    static func path(_ relative: String) -> String { root.appendingPathComponent(relative).path }

    static func exists(_ relative: String) -> Bool { FileManager.default.fileExists(atPath: path(relative)) }
}

/// Runs an importer's parser over lines given as strings, the way the ingest pipeline would.
func parse(_ importer: any Importer, _ lines: [String], path: String = "/var/log/test.log",
           options: ImportOptions = ImportOptions(), referenceTime: Int64? = nil,
           hints: IngestHints = IngestHints()) throws -> RecordSink {
    let context = ParseContext(path: path, options: options, referenceTime: referenceTime, hints: hints)
    var parser = try importer.makeParser(context)
    var sink = RecordSink()
    for (i, text) in lines.enumerated() {
        Line.with(text, number: i + 1) { parser.consume($0, into: &sink) }
    }
    parser.finish(into: &sink)
    return sink
}

/// A scratch directory removed when the value goes away.
final class TemporaryDirectory {
    let url: URL
    init() throws {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("investigate-test-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }
    deinit { try? FileManager.default.removeItem(at: url) }

    var path: String { url.path }

    @discardableResult
    func write(_ name: String, _ text: String) throws -> String {
        try write(name, bytes: Array(text.utf8))
    }

    @discardableResult
    func write(_ name: String, bytes: [UInt8]) throws -> String {
        let file = url.appendingPathComponent(name)
        try FileManager.default.createDirectory(at: file.deletingLastPathComponent(), withIntermediateDirectories: true)
        try Data(bytes).write(to: file)
        return file.path
    }
}

/// The `investigate` binary built with the tests: beside the test runner (so
/// `swift test --scratch-path DIR` runs the binary it just built), else `.build/debug`.
enum InvestigateBinary {
    static let path: String? = {
        var candidates: [URL] = []
        for runner in [Bundle.main.executableURL, URL(fileURLWithPath: CommandLine.arguments.first ?? "")].compactMap({ $0 }) {
            // The runner is `<scratch>/debug/investigatePackageTests.xctest` (a file on Linux, a
            // bundle holding Contents/MacOS/… on macOS): walk up to the directory beside it.
            var dir = runner.deletingLastPathComponent()
            for _ in 0..<4 {
                candidates.append(dir.appendingPathComponent("investigate"))
                dir.deleteLastPathComponent()
            }
        }
        candidates.append(Corpus.repositoryRoot.appendingPathComponent(".build/debug/investigate"))
        return candidates.first { url in
            var isDirectory: ObjCBool = false
            return FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory) && !isDirectory.boolValue
                && FileManager.default.isExecutableFile(atPath: url.path)
        }?.path
    }()
}

/// One run of the `investigate` binary: exit status, standard output and error.
struct CLIRun {
    var status: Int32
    var out: String
    var err: String
    var outBytes: Data

    /// Runs `investigate ARGUMENTS` (TZ unset unless `environment` sets it); nil without a binary.
    static func investigate(_ arguments: [String], environment: [String: String] = [:], cwd: String? = nil) throws -> CLIRun? {
        guard let binary = InvestigateBinary.path else {
            print("no investigate binary; run `swift build` first. Skipped.")
            return nil
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = arguments
        var env = ProcessInfo.processInfo.environment
        env.removeValue(forKey: "TZ")
        for (k, v) in environment { env[k] = v }
        process.environment = env
        if let cwd { process.currentDirectoryURL = URL(fileURLWithPath: cwd) }
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        // Read both pipes at once: a large output must not block the child on a full stderr pipe.
        final class Box: @unchecked Sendable { var data = Data() }
        let e = Box()
        let done = DispatchSemaphore(value: 0)
        DispatchQueue.global().async {
            e.data = err.fileHandleForReading.readDataToEndOfFile()
            done.signal()
        }
        let o = out.fileHandleForReading.readDataToEndOfFile()
        done.wait()
        process.waitUntilExit()
        return CLIRun(status: process.terminationStatus, out: String(decoding: o, as: UTF8.self), err: String(decoding: e.data, as: UTF8.self), outBytes: o)
    }
}
