import Foundation
import Testing
@testable import InvestigateKit

/// A line that starts with `#` (fail2ban's `# failJSON: …` annotations, a W3C `#Version:` header,
/// a `#` comment someone added) is rejected as a comment by every importer, with a reason that
/// says so, whether it opens the file or follows a record; except where it is the format's own
/// frame (CloudFront's W3C `#Version:`/`#Fields:` header), counted as such.
@Suite struct CommentLineTests {
    static let comments = [
        #"# failJSON: { "time": "2015-01-20T19:53:28", "match": true , "host": "12.34.56.78" }"#,
        #"# filterOptions: [{"logtype": "journal"}]"#,
        "#Version: 1.0",
        "#",
    ]

    func importer(_ id: String) throws -> any Importer { try #require(ImporterRegistry.standard.importer(id: id)) }

    @Test(arguments: ImporterRegistry.standard.ids)
    func aCommentAloneIsRejectedAsOne(_ id: String) throws {
        let importer = try importer(id)
        let path = "/var/log/investigate-sample/\(importer.samples[0].fileName)"
        for comment in Self.comments {
            let sink = try parse(importer, [comment], path: path)
            #expect(sink.events.isEmpty, "\(id) made an event of \(comment)")
            if id == "cloudfront" && comment.hasPrefix("#Version:") {
                #expect(sink.rejected.isEmpty && sink.framingLines == 1)
                continue
            }
            #expect(sink.rejected.count == 1, "\(id): \(sink.rejected.map(\.reason))")
            #expect(sink.rejected.allSatisfy { $0.reason.hasPrefix("comment line (starts with #), not ") },
                    "\(id) rejects \(comment) with \(sink.rejected.map(\.reason))")
            #expect(sink.rejected.first?.raw == Array(comment.utf8))
        }
    }

    /// Between the importer's own sample records (a single-line record before it), the comment is
    /// still a comment, and the samples still read as before.
    @Test(arguments: ImporterRegistry.standard.ids)
    func aCommentBetweenRecords(_ id: String) throws {
        let importer = try importer(id)
        for sample in importer.samples {
            let path = "/var/log/investigate-sample/\(sample.fileName)"
            let clean = try parse(importer, sample.lines, path: path)
            // The comment goes first: a record before it may be one whose lines continue (a
            // traceback, an error-log record quoting text), where a `#` line is its text.
            let annotated = try parse(importer, [Self.comments[0]] + sample.lines, path: path)
            #expect(annotated.events.count == clean.events.count, "\(id) \(sample.fileName)")
            #expect(annotated.rejected.count == clean.rejected.count + 1, "\(id): \(annotated.rejected.map(\.reason))")
            #expect(annotated.rejected.first?.reason.hasPrefix("comment line (starts with #)") == true, "\(id): \(annotated.rejected.map(\.reason))")
        }
    }

    /// fail2ban's fixtures interleave comments with the records: each comment is rejected as one.
    @Test(.enabled(if: Corpus.available), arguments: ["fail2ban/nginx-botsearch", "fail2ban/nginx-bad-request", "fail2ban/nginx-http-auth", "fail2ban/sshd"])
    func fail2banAnnotations(_ file: String) throws {
        try #require(Corpus.exists(file))
        let store = try TimelineStore()
        _ = try Ingester(store: store).ingest(paths: [Corpus.path(file)])
        let reasons: [String] = try store.read { db in try String.fetchAll(db, sql: "SELECT reason FROM rejected") }
        let text = try String(contentsOfFile: Corpus.path(file), encoding: .utf8)
        let comments = text.split(separator: "\n").filter { $0.hasPrefix("#") }.count
        #expect(reasons.filter { $0.hasPrefix("comment line (starts with #)") }.count == comments)
    }
}
