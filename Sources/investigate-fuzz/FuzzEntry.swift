import Foundation
import InvestigateKit

// The importers' fuzz target. Built with libFuzzer by scripts/fuzz.sh
// (`-sanitize=fuzzer,address -DFUZZING`); built plainly (as `swift build` does), it replays input
// files through the same checks, which is how a finding is reproduced.

/// The family under test: `FUZZ_IMPORTER=nginx-access`, or every importer after detection.
let importerUnderTest: String? = ProcessInfo.processInfo.environment["FUZZ_IMPORTER"].flatMap { $0.isEmpty ? nil : $0 }

#if FUZZING
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOne(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? []
    if let problem = FuzzHarness.check(bytes, importerID: importerUnderTest) {
        fatalError("invariant broken: \(problem)")
    }
    return 0
}

/// libFuzzer's driver, entered from the executable's own entry point: SwiftPM names an
/// executable's `main` after its module, so libFuzzer's `main` is never linked in.
@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(_ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
                         _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt) -> CInt

@_cdecl("investigate_fuzz_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    var count = argc
    var arguments = argv
    return LLVMFuzzerRunDriver(&count, &arguments, fuzzOne)
}
#else
@main
struct FuzzReplay {
    static func main() {
        let arguments = Array(CommandLine.arguments.dropFirst())
        // `--write-seeds DIR`: each importer's samples (and the extra seeds of `FuzzHarness.seeds`)
        // as DIR/<importer>/sample-N, libFuzzer's seeds.
        if arguments.first == "--write-seeds", arguments.count == 2 {
            do {
                for importer in ImporterRegistry.standard.importers {
                    let dir = URL(fileURLWithPath: arguments[1]).appendingPathComponent(importer.id)
                    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
                    for (n, lines) in FuzzHarness.seeds(for: importer).enumerated() {
                        try Data((lines.joined(separator: "\n") + "\n").utf8).write(to: dir.appendingPathComponent("sample-\(n)"))
                    }
                }
            } catch {
                FileHandle.standardError.write(Data("cannot write seeds: \(error)\n".utf8)); exit(1)
            }
            exit(0)
        }
        var failures = 0
        for path in arguments {
            guard let data = FileManager.default.contents(atPath: path) else {
                FileHandle.standardError.write(Data("cannot read \(path)\n".utf8)); failures += 1; continue
            }
            if let problem = FuzzHarness.check(Array(data), importerID: importerUnderTest) {
                print("\(path): \(problem)"); failures += 1
            }
        }
        exit(failures == 0 ? 0 : 1)
    }
}
#endif
