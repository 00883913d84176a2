import Foundation

/// Which inputs a run could not read whole: what the CLI reports on stderr and counts for its exit
/// status 1 ("some input could not be read"). A file that failed, a file no importer recognised,
/// a file an importer recognised only to refuse it, and a compressed file read only in part
/// (truncated or corrupt gzip) are input problems. A file
/// known not to be a log (documentation, an S3 delivery marker, the simulator's ground truth) is
/// listed as skipped, but is not one.
public enum InputProblems {
    /// The words a file's note starts with when its gzip stream ended early or was refused.
    public static let truncatedGzip = "gzip stream is truncated"
    public static let corruptGzip = "gzip data is corrupt"
    /// The words a file's note starts with when its importer recognised the file only to refuse
    /// it, every line rejected with the reason (the CloudWatch console's CSV download, whose
    /// layout is not known): the file was not read.
    public static let refused = "not read: "

    /// The words a file's note starts with when it was stored earlier with its zone-less app
    /// stamps read in another zone than this run's `--app-tz`: stored content is not read again.
    public static let storedInAnotherZone = "stored earlier with its zone-less stamps read as "

    /// Files whose stored reading ignores an option of this run (`storedInAnotherZone`): a warning,
    /// not an input problem (every line was read), with what to do.
    public static func staleReadings(_ summary: IngestSummary) -> [(path: String, reason: String)] {
        summary.files.compactMap { f in f.notes.first { $0.hasPrefix(storedInAnotherZone) }.map { (f.path, $0) } }
    }

    /// Each problem file with its reason, in input order.
    public static func of(_ summary: IngestSummary) -> [(path: String, reason: String)] {
        summary.files.compactMap { f in
            switch f.status {
            case .failed:
                return (f.path, f.skipped ?? "could not be read")
            case .skipped:
                if f.skipped == "empty file" || f.skipped == Ingester.ownDatabase || NonLogFile.kind(path: f.path) != nil
                    || WindowPlan.isOutsideWindow(f) { return nil }
                return (f.path, "skipped: " + (f.skipped ?? "not recognised"))
            case .ingested, .grown, .unchanged:
                if let why = f.notes.first(where: { $0.hasPrefix(refused) }) { return (f.path, why) }
                return f.notes.first { $0.hasPrefix(truncatedGzip) || $0.hasPrefix(corruptGzip) }.map { (f.path, "read in part: " + $0) }
            }
        }
    }
}

/// Files that sit beside logs but are not logs.
public enum NonLogFile {
    /// What the file is, when it is known not to be a log.
    public static func kind(path: String) -> String? {
        let name = (path as NSString).lastPathComponent
        let lower = name.lowercased()
        // S3 writes this object when a CloudWatch Logs export task checks the bucket.
        if name == "aws-logs-write-test" { return "S3 delivery test object" }
        if lower.hasPrefix("readme") || lower.hasSuffix(".md") || lower == "provenance.md" { return "documentation" }
        if lower == "truth.jsonl", let head = try? ReadOnlyFile(path).prefix(4096),
           let text = String(bytes: head, encoding: .utf8), text.contains("\"responder\""), text.contains("\"records\"") {
            return "the simulator's ground truth (logsim)"
        }
        return nil
    }
}
