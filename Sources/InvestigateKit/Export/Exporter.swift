import Foundation

/// `investigate export`: the records of a query, in order, through one format's writer, handed
/// to `sink` in chunks of about 64 KB (the CLI writes them to a file or standard output).
public enum Exporter {
    public static func run(_ store: TimelineStore, _ q: ExportQuery, writer: any ExportWriter,
                           progress: ((Int, Int) -> Void)? = nil, sink: ([UInt8]) throws -> Void) throws -> ExportSummary {
        var buffer = writer.header()
        buffer.reserveCapacity(1 << 17)
        var leftOut = 0
        var summary = try ExportReader.read(store, q, progress: progress) { record in
            if !writer.write(record, into: &buffer) { leftOut += 1 }
            if buffer.count >= 1 << 16 {
                try sink(buffer)
                buffer.removeAll(keepingCapacity: true)
            }
        }
        if !buffer.isEmpty { try sink(buffer) }
        summary.leftOut = leftOut
        return summary
    }
}
