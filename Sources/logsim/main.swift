import ArgumentParser
import Foundation
import LogSimKit

/// `logsim`: writes realistic multi-layer logs with ground truth. Argument parsing and I/O only;
/// the model lives in LogSimKit.
struct LogSimCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "logsim",
        abstract: "Simulate a web stack's traffic and write each layer's logs exactly as that layer does, with truth.jsonl.",
        subcommands: [Edge.self, Api.self, Fixtures.self]
    )
}

struct RunOptions: ParsableArguments {
    @Option(name: .long, help: "Output directory.")
    var out: String

    @Option(name: .long, help: "Random seed: the same seed and flags give the same bytes.")
    var seed: UInt64 = 1

    @Option(name: .long, help: "Number of requests.")
    var requests: Int = 1000

    @Option(name: .long, help: "Mean requests per second.")
    var rate: Double = 5

    @Option(name: .long, help: "First arrival, ISO 8601 with zone (e.g. 2025-02-06T05:00:00Z).")
    var start: String?

    @Option(name: .long, parsing: .upToNextOption,
            help: "Failure modes, comma-separated: \(Failure.allCases.map(\.rawValue).joined(separator: ", ")).")
    var fail: [String] = []

    @Option(name: .long, help: "Logs to leave out, comma-separated: \(LogKind.allCases.map(\.rawValue).joined(separator: ", ")).")
    var without: String = ""

    @Option(name: .long, help: "nginx access-log rotation: daily, none, or size:<bytes>[k|m].")
    var rotate: String = "daily"

    func config(_ stack: Stack) throws -> SimulationConfig {
        var config = SimulationConfig(stack: stack, seed: seed, requests: requests, rate: rate)
        if let start {
            guard let t = SimClock.parseISO(start) else { throw ValidationError("--start: not an ISO 8601 time with zone: \(start)") }
            config.start = t
        } else if stack == .api {
            config.start = SimClock.micros(year: 2026, month: 1, day: 22, hour: 3)
        }
        for name in fail.flatMap({ $0.split(separator: ",") }).map(String.init) {
            guard let failure = Failure(rawValue: name) else {
                throw ValidationError("--fail: unknown failure '\(name)'; known: \(Failure.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            guard Failure.forStack(stack).contains(failure) else { throw ValidationError("--fail \(name) does not apply to the \(stack) stack") }
            config.failures.insert(failure)
        }
        for name in without.split(separator: ",").map(String.init) where !name.isEmpty {
            guard let kind = LogKind(name: name) else { throw ValidationError("--without: unknown log '\(name)'") }
            config.without.insert(kind)
        }
        guard let rotation = Rotation(rotate) else { throw ValidationError("--rotate: expected daily, none or size:<n>") }
        config.rotation = rotation
        guard requests > 0, rate > 0 else { throw ValidationError("--requests and --rate must be positive") }
        return config
    }
}

func report(_ summary: SimulationSummary, _ out: String) {
    print("\(summary.requests) requests, \(summary.lines) lines in \(summary.files.count) files under \(out)")
    print("arrivals \(SimClock.isoMillis(summary.first)) … \(SimClock.isoMillis(summary.last)); peak reorder buffer \(summary.peakBufferedLines) lines")
}

extension LogSimCommand {
    struct Edge: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "client → AWS WAF → ALB → nginx → gunicorn/Flask (WAF/ALB S3 objects, nginx, syslog, app logs).")
        @OptionGroup var options: RunOptions
        func run() throws {
            let summary = try Simulator.run(try options.config(.edge), into: URL(fileURLWithPath: options.out)) { n in
                FileHandle.standardError.write(Data("\(n) requests\n".utf8))
            }
            report(summary, options.out)
        }
    }

    struct Api: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "client → API Gateway (REST) → Lambda (access, execution and Lambda logs as CloudWatch Logs exports).")
        @OptionGroup var options: RunOptions
        func run() throws {
            let summary = try Simulator.run(try options.config(.api), into: URL(fileURLWithPath: options.out))
            report(summary, options.out)
        }
    }

    struct Fixtures: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Regenerate the incident fixtures (Fixtures/incidents) from their seeds and flags.")
        @Option(name: .long, help: "Directory that receives one folder per fixture.")
        var out: String = "Fixtures/incidents"
        func run() throws {
            for fixture in IncidentFixture.all {
                let directory = URL(fileURLWithPath: out).appendingPathComponent(fixture.name)
                try? FileManager.default.removeItem(at: directory)
                let summary = try fixture.generate(into: directory)
                report(summary, directory.path)
            }
        }
    }
}

LogSimCommand.main()
