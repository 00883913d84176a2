import Foundation

/// CloudWatch Logs "Export to S3" objects (`<prefix>/<task>/<stream>/000000.gz`): each line is
/// `<ISO-8601 UTC with ms and Z> <message>`; a multi-line message continues on lines without a
/// stamp; chunks are not sorted by time. The messages are read by the format they are in.
public struct CloudWatchExportImporter: Importer {
    public init() {}

    public let id = "cloudwatch-export"
    /// An export is written whole: an unterminated last line is read as it is.
    public var writtenLive: Bool { false }
    public let title = "CloudWatch Logs export to S3 (`<ISO time> <message>`), any inner format"
    public let layer = Layer.system
    public let documentation = "https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/S3Export.html"

    public let samples = [
        FormatSample(fileName: "000000", lines: [
            "2020-01-31T22:12:58.400Z START RequestId: 8f507cfc-xmpl-4697-b07a-ac58fc914c95 Version: $LATEST",
            "2020-01-31T22:12:58.534Z [ERROR]\t2020-01-31T22:12:58.534Z\t8f507cfc-xmpl-4697-b07a-ac58fc914c95\tTraceback (most recent call last):",
            "  File \"/var/task/lambda_function.py\", line 12, in handler",
            "2020-01-31T22:12:58.540Z END RequestId: 8f507cfc-xmpl-4697-b07a-ac58fc914c95",
            "2020-01-31T22:12:58.540Z REPORT RequestId: 8f507cfc-xmpl-4697-b07a-ac58fc914c95\tDuration: 15.74 ms\tBilled Duration: 16 ms\tMemory Size: 128 MB\tMax Memory Used: 56 MB\t",
        ]),
    ]

    public let fieldNotes = """
        The stamp → the inner event's `time` when the inner format has none (Lambda platform lines, API \
        Gateway execution lines), else `alt_time`; the message → the inner importer, detected from the first \
        messages (the log group, stream or S3 key breaks ties: `/aws/lambda/…`, `API-Gateway-Execution-Logs_…`, \
        `aws-waf-logs-…`). Lines without a stamp continue the message before them. `raw` keeps the export's \
        own lines; `extra.inner_format` names the inner importer. Messages of no known format become plain \
        `log` events (`extra.inner_format` = `unrecognised`) on the layer the names suggest, else `system`.
        """

    public func recognize(_ lines: [String], fileName: String) -> Double {
        guard let first = lines.first, CloudWatchExportParser.stampLength(first) != nil else { return 0 }
        var stamped = 0
        for line in lines where CloudWatchExportParser.stampLength(line) != nil { stamped += 1 }
        // Continuation lines belong to the stamped message before them.
        return (Double(stamped) + 0.8 * Double(lines.count - stamped)) / Double(lines.count)
    }

    public func makeParser(_ context: ParseContext) throws -> any RecordParser {
        CloudWatchExportParser(router: InnerFormatRouter(context: context, wrapperID: id), path: context.path)
    }
}

struct CloudWatchExportParser: RecordParser {
    var router: InnerFormatRouter
    let path: String
    /// A stamped message was read: a line without a stamp continues it.
    var sawMessage = false

    /// Length of a leading `YYYY-MM-DDTHH:MM:SS.mmmZ` stamp followed by a space or the end.
    static func stampLength(_ text: String) -> Int? {
        let u = Array(text.utf8.prefix(25))
        guard u.count >= 24, u[4] == 0x2D, u[7] == 0x2D, u[10] == 0x54, u[13] == 0x3A, u[16] == 0x3A, u[19] == 0x2E, u[23] == 0x5A else { return nil }
        for i in [0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18, 20, 21, 22] where !(u[i] >= 0x30 && u[i] <= 0x39) { return nil }
        if u.count == 25, u[24] != 0x20 { return nil }
        return 24
    }

    mutating func consume(_ line: Line, into sink: inout RecordSink) {
        if line.isEmpty { return }
        let bytes = line.bytes
        var time: Int64?
        var messageStart = 0
        if bytes.count >= 24, bytes[23] == 0x5A, bytes.count == 24 || bytes[24] == 0x20,
           let t = AWSTime.iso8601(UnsafeBufferPointer(rebasing: bytes[0..<24])) {
            time = t.micros
            messageStart = min(25, bytes.count)
            sawMessage = true
        } else if !sawMessage, line.isComment {
            return sink.rejectComment(line, notA: "a CloudWatch Logs export line")
        }
        let text = String(decoding: UnsafeBufferPointer(rebasing: bytes[messageStart...]), as: UTF8.self)
        let message = WrappedMessage(text: text, time: time, line: line.number, lineEnd: line.number, raw: line.copyBytes(),
                                     logGroup: nil, logStream: Self.streamName(path), continuation: time == nil)
        router.add(message, into: &sink)
    }

    mutating func finish(into sink: inout RecordSink) { router.finish(into: &sink) }

    /// The export object's key is `<prefix>/<task id>/<log stream>/000000.gz`: the stream is the folder.
    static func streamName(_ path: String) -> String? {
        let folder = ((path as NSString).deletingLastPathComponent as NSString).lastPathComponent
        return folder.isEmpty || folder == "." || folder == "/" ? nil : folder
    }
}
