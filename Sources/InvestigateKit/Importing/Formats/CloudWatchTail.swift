import Foundation

/// `aws logs tail` output: `--format detailed` (the default) prints
/// `<ISO time with µs and +00:00> <log stream> <message>`, `--format short` prints
/// `<YYYY-MM-DDTHH:MM:SS> <message>` (UTC, no zone). Lines without a stamp continue the message
/// before them (`--format json` pretty-prints JSON messages across lines).
public struct CloudWatchTailImporter: Importer {
    public init() {}

    public let id = "cloudwatch-tail"
    public let title = "`aws logs tail` output (detailed or short), any inner format"
    public let layer = Layer.system
    public let documentation = "https://docs.aws.amazon.com/cli/latest/reference/logs/tail.html"

    public let samples = [
        FormatSample(fileName: "tail.txt", lines: [
            "2019-02-27T11:30:59.425000+00:00 e369853df766fa44e1ed0ff613f563bd (286364ab-3a83-11e9-8dc8-db3cf4c83204) Extended Request Id: Vwc2MGFUrPEFV_g=",
            "2019-02-27T11:30:59.426000+00:00 e369853df766fa44e1ed0ff613f563bd (286364ab-3a83-11e9-8dc8-db3cf4c83204) HTTP Method: GET, Resource Path: /echo",
            "2019-02-27T11:31:11.457000+00:00 e369853df766fa44e1ed0ff613f563bd (286364ab-3a83-11e9-8dc8-db3cf4c83204) Method completed with status: 502",
        ]),
        FormatSample(fileName: "tail-short.txt", lines: [
            "2024-04-08T09:17:23 START RequestId: 4b142fc3-17b8-4cdb-a46b-a8dbe7918715 Version: $LATEST",
            "2024-04-08T09:17:23 END RequestId: 4b142fc3-17b8-4cdb-a46b-a8dbe7918715",
        ]),
    ]

    public let fieldNotes = """
        The stamp → the inner event's `time` when it has none of its own, else `alt_time` (short format: read \
        as UTC, as the CLI prints it); the log stream → `extra.log_stream`; the message → the inner importer \
        (detected as for `cloudwatch-export`). `raw` keeps the tail lines.
        """

    public func recognize(_ lines: [String], fileName: String) -> Double {
        guard let first = lines.first, CloudWatchTailParser.stamp(first) != nil else { return 0 }
        let stamped = lines.filter { CloudWatchTailParser.stamp($0) != nil }.count
        // rsyslog's ISO format has the same stamp; a host and a `prog[pid]:` tag after it is syslog.
        let syslogShaped = lines.filter { line in Line.with(line, number: 1) { SyslogPrefix.parse($0.bytes)?.program != nil } }.count
        let score = (Double(stamped) + 0.8 * Double(lines.count - stamped)) / Double(lines.count)
        return syslogShaped * 2 > lines.count ? score * 0.9 : score
    }

    public func makeParser(_ context: ParseContext) throws -> any RecordParser {
        CloudWatchTailParser(router: InnerFormatRouter(context: context, wrapperID: id))
    }
}

struct CloudWatchTailParser: RecordParser {
    var router: InnerFormatRouter
    /// A stamped message was read: a line without a stamp continues it.
    var sawMessage = false

    /// (time, detailed?, length of the stamp) for a line that starts with a tail stamp.
    static func stamp(_ text: String) -> (Int64, Bool, Int)? {
        guard let space = text.firstIndex(of: " ") else { return nil }
        let token = text[..<space]
        let length = token.utf8.count
        if length == 32, token.hasSuffix("+00:00"), let t = AWSTime.iso8601(String(token)) { return (t, true, length) }
        if length == 19, !token.contains("."), let t = AWSTime.iso8601(String(token)), token.dropFirst(10).first == "T" { return (t, false, length) }
        return nil
    }

    mutating func consume(_ line: Line, into sink: inout RecordSink) {
        if line.isEmpty { return }
        let text = line.text
        guard let (time, detailed, length) = Self.stamp(text) else {
            if !sawMessage, line.isComment { return sink.rejectComment(line, notA: "an `aws logs tail` line") }
            let m = WrappedMessage(text: text, time: nil, line: line.number, lineEnd: line.number, raw: line.copyBytes(), continuation: true)
            return router.add(m, into: &sink)
        }
        sawMessage = true
        var rest = text.utf8.dropFirst(length + 1)
        var stream: String?
        if detailed {
            let streamBytes = rest.prefix { $0 != 0x20 }
            stream = String(decoding: streamBytes, as: UTF8.self)
            rest = rest.dropFirst(streamBytes.count + 1)
        }
        let m = WrappedMessage(text: String(decoding: rest, as: UTF8.self), time: time, line: line.number, lineEnd: line.number,
                               raw: line.copyBytes(), logStream: stream)
        router.add(m, into: &sink)
    }

    mutating func finish(into sink: inout RecordSink) { router.finish(into: &sink) }
}
