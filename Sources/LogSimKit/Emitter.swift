import Foundation

/// A binary min-heap.
struct Heap<Element> {
    private var items: [Element] = []
    let less: (Element, Element) -> Bool

    init(less: @escaping (Element, Element) -> Bool) { self.less = less }

    var isEmpty: Bool { items.isEmpty }
    var count: Int { items.count }
    var first: Element? { items.first }

    mutating func push(_ item: Element) {
        items.append(item)
        var i = items.count - 1
        while i > 0 {
            let parent = (i - 1) / 2
            guard less(items[i], items[parent]) else { break }
            items.swapAt(i, parent)
            i = parent
        }
    }

    mutating func pop() -> Element? {
        guard !items.isEmpty else { return nil }
        items.swapAt(0, items.count - 1)
        let top = items.removeLast()
        var i = 0
        while true {
            let l = 2 * i + 1, r = l + 1
            var smallest = i
            if l < items.count, less(items[l], items[smallest]) { smallest = l }
            if r < items.count, less(items[r], items[smallest]) { smallest = r }
            if smallest == i { break }
            items.swapAt(i, smallest)
            i = smallest
        }
        return top
    }
}

/// What the ground truth says about one request.
public struct TruthEntry {
    public var id: String
    public var time: Int64
    public var clientIP: String
    public var method: String
    public var path: String
    public var status: Int?
    public var responder: String
    public var cause: String?
    public var reason: String
    /// Identifiers the layers log for it (trace_id, request_id, lambda_request_id, worker_pid, …).
    public var ids: [(String, String)] = []
}

/// Writes the lines of all layers in the order each layer writes them, and truth.jsonl.
///
/// The model produces a request's lines as soon as it arrives, but layers write at completion, so
/// lines wait in a priority queue keyed by write time until no later-arriving request can write
/// before them (a bounded reorder buffer: its size is the lines of requests still in flight).
/// Truth entries are held until all of a request's lines are written, then emitted in id order.
final class Emitter {
    struct PendingLine {
        var time: Int64
        var sequence: UInt64
        var stream: Int
        var layer: String
        var text: String
        var request: Int
    }

    final class PendingTruth {
        var entry: TruthEntry
        var records: [(layer: String, file: Int, line: Int)] = []
        var outstanding = 0
        var sealed = false
        init(_ entry: TruthEntry) { self.entry = entry }
        var complete: Bool { sealed && outstanding == 0 }
    }

    let tree: OutputTree
    private var streams: [LogStream] = []
    private var queue = Heap<PendingLine> { a, b in a.time != b.time ? a.time < b.time : a.sequence < b.sequence }
    private var sequence: UInt64 = 0
    private var truths: [Int: PendingTruth] = [:]
    private var nextTruthToWrite = 0
    private var nextRequest = 0
    private let truthWriter: FileWriter
    private let truthTemporary: String
    public private(set) var linesWritten = 0
    public private(set) var peakQueued = 0

    init(tree: OutputTree) throws {
        self.tree = tree
        truthTemporary = tree.path("truth.jsonl.partial")
        truthWriter = try FileWriter(path: truthTemporary, gzip: false)
    }

    func register(_ stream: LogStream) -> Int {
        streams.append(stream)
        return streams.count - 1
    }

    /// Starts a request's truth; returns the handle its lines refer to.
    func begin(_ entry: TruthEntry) -> Int {
        let index = nextRequest
        nextRequest += 1
        truths[index] = PendingTruth(entry)
        return index
    }

    func update(_ request: Int, _ change: (inout TruthEntry) -> Void) {
        guard let pending = truths[request] else { return }
        change(&pending.entry)
    }

    /// Queues a line; `stream` nil means that layer's log is left out of this run.
    func emit(_ time: Int64, _ stream: Int?, _ layer: String, _ text: String, request: Int = -1) {
        guard let stream else { return }
        sequence += 1
        queue.push(PendingLine(time: time, sequence: sequence, stream: stream, layer: layer, text: text, request: request))
        if request >= 0, let pending = truths[request] { pending.outstanding += 1 }
        if queue.count > peakQueued { peakQueued = queue.count }
    }

    /// The request's lines are all queued.
    func seal(_ request: Int) {
        guard let pending = truths[request] else { return }
        pending.sealed = true
        flushTruths()
    }

    /// Writes every queued line whose write time is at or before `time`.
    func advance(to time: Int64) throws {
        while let top = queue.first, top.time <= time {
            _ = queue.pop()
            try write(top)
        }
        flushTruths()
    }

    private func write(_ line: PendingLine) throws {
        let file = try streams[line.stream].file(for: line.time, tree: tree)
        file.write(line.text)
        linesWritten += 1
        if line.request >= 0, let pending = truths[line.request] {
            pending.records.append((line.layer, file.id, file.lines))
            pending.outstanding -= 1
        }
    }

    private func flushTruths() {
        while let pending = truths[nextTruthToWrite], pending.complete {
            truthWriter.writeLine(Self.json(pending))
            truths[nextTruthToWrite] = nil
            nextTruthToWrite += 1
        }
    }

    /// Writes what is left, closes every file, gives rotated files their final names and writes
    /// truth.jsonl with those names.
    func finish() throws {
        try advance(to: Int64.max)
        for stream in streams { try stream.finish(tree: tree) }
        try truthWriter.close()
        try rewriteTruth()
    }

    // MARK: - truth.jsonl

    /// File references are written as `@@F<id>@@` while final names are unknown.
    private static func json(_ pending: PendingTruth) -> String {
        let e = pending.entry
        var s = "{\"id\":\(jsonString(e.id)),\"time\":\(jsonString(SimClock.isoMillis(e.time)))"
        s += ",\"client_ip\":\(jsonString(e.clientIP)),\"method\":\(jsonString(e.method)),\"path\":\(jsonString(e.path))"
        s += ",\"status\":" + (e.status.map(String.init) ?? "null")
        s += ",\"responder\":\(jsonString(e.responder)),\"cause\":" + (e.cause.map(jsonString) ?? "null")
        s += ",\"reason\":\(jsonString(e.reason))"
        if !e.ids.isEmpty {
            s += ",\"ids\":{" + e.ids.map { "\(jsonString($0.0)):\(jsonString($0.1))" }.joined(separator: ",") + "}"
        }
        s += ",\"records\":["
        s += pending.records.map { "{\"layer\":\(jsonString($0.layer)),\"file\":\"@@F\($0.file)@@\",\"line\":\($0.line)}" }
            .joined(separator: ",")
        return s + "]}"
    }

    private func rewriteTruth() throws {
        guard let input = fopen(truthTemporary, "rb") else { throw SimulationError("cannot reopen truth") }
        defer { fclose(input) }
        let output = try FileWriter(path: tree.path("truth.jsonl"), gzip: false)
        let names = tree.files.map { Self.jsonString($0.relativePath).dropFirst().dropLast() }
        var linePointer: UnsafeMutablePointer<CChar>?
        var capacity = 0
        defer { free(linePointer) }
        while true {
            let length = getline(&linePointer, &capacity, input)
            guard length > 0, let linePointer else { break }
            let raw = UnsafeRawBufferPointer(start: linePointer, count: length)
            var text = String(decoding: raw, as: UTF8.self)
            if text.hasSuffix("\n") { text.removeLast() }
            var result = ""
            result.reserveCapacity(text.utf8.count + 64)
            var rest = Substring(text)
            while let open = rest.range(of: "@@F") {
                result += rest[rest.startIndex..<open.lowerBound]
                let after = rest[open.upperBound...]
                guard let close = after.range(of: "@@"), let id = Int(after[after.startIndex..<close.lowerBound]),
                      id >= 0, id < names.count else {
                    throw SimulationError("truth refers to an unknown file")
                }
                result += names[id]
                rest = after[close.upperBound...]
            }
            result += rest
            output.writeLine(result)
        }
        try output.close()
        try FileManager.default.removeItem(atPath: truthTemporary)
    }

    static func jsonString(_ text: String) -> String {
        var s = "\""
        s.reserveCapacity(text.utf8.count + 2)
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": s += "\\\""
            case "\\": s += "\\\\"
            case "\n": s += "\\n"
            case "\r": s += "\\r"
            case "\t": s += "\\t"
            default:
                if scalar.value < 0x20 {
                    s += "\\u00" + String(scalar.value >> 4, radix: 16) + String(scalar.value & 0xF, radix: 16)
                } else {
                    s.unicodeScalars.append(scalar)
                }
            }
        }
        return s + "\""
    }
}
