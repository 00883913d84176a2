/// Events in columns: the form records travel in from the parsing thread to the SQLite writer.
///
/// Every text value and original line lives in one byte arena; numbers sit in fixed-width slots.
/// Appending an event copies its bytes once, and the writer binds straight from the arena, so
/// neither thread allocates per event on the ingest hot path (per-event `String`s, arrays and
/// dictionaries cost more than the insert itself). Parsers that read bytes (the nginx access
/// parser) fill rows directly with `beginRow`/`setText`/`setNumber`; every other parser emits
/// `Event` values, which `append(_:)` converts.
public struct EventBatch: Sendable {
    /// Text columns, in `event` table order. `extra` holds the JSON object of layer-specific fields;
    /// `raw` holds the original bytes (a BLOB, not necessarily UTF-8).
    public enum Text: Int, CaseIterable, Sendable {
        case clientIP, peerIP, forwardedFor, method, path, query, requestID, traceID, userAgent, host, level, message
        case hostname, program, wafAction, wafRule, error, extra, raw
    }

    /// Integer columns, in `event` table order.
    public enum Number: Int, CaseIterable, Sendable {
        case line, lineEnd, time, altTime, status, bytes, duration, pid, elbStatus, targetStatus
    }

    /// The slot value of a NULL number. No column uses it as a value (times are microseconds since
    /// 1970, the rest are small counts).
    public static let nullNumber = Int64.min

    /// Where a text value sits in `arena`; a negative `count` is NULL.
    public struct Span: Sendable, Equatable {
        public var start: Int
        public var count: Int
        public static let null = Span(start: 0, count: -1)
        public var isNull: Bool { count < 0 }
    }

    static let textColumns = Text.allCases.count
    static let numberColumns = Number.allCases.count

    public private(set) var count = 0
    public private(set) var arena: [UInt8] = []
    public private(set) var spans: [Span] = []
    public private(set) var numbers: [Int64] = []
    public private(set) var layers: [Layer] = []
    public private(set) var kinds: [EventKind] = []
    /// Columns some row of the batch has set to a value, one bit per `Text`/`Number` raw value: a
    /// superset (a dropped row's bits stay), so a column outside it is NULL in every row. The writer
    /// names only these columns in its INSERT.
    public private(set) var filledTexts: UInt32 = 0
    public private(set) var filledNumbers: UInt32 = 0
    /// The rows' original bytes cut into compressed blocks by `packRaw()` (on the parsing thread,
    /// so that compression does not add to the writer's work); nil once a row is added or dropped.
    public private(set) var packedRaw: PackedRaw?

    /// `SharedText.hash` of the text values in the columns `hashTexts` was given, indexed as
    /// `spans` (0 elsewhere): computed on the parsing thread, which waits for the writer, so that
    /// the writer only looks them up. Valid while `hasTextHashes`.
    public private(set) var textHashes: [Int] = []
    private var hashedCount = -1
    public var hasTextHashes: Bool { hashedCount == count && count > 0 }

    public init() {}

    /// Fills `textHashes` for the text columns in `columns` (one bit per `Text` raw value).
    public mutating func hashTexts(columns: UInt32) {
        textHashes.removeAll(keepingCapacity: true)
        textHashes.append(contentsOf: repeatElement(0, count: spans.count))
        arena.withUnsafeBytes { arena in
            for i in 0..<spans.count where columns & (1 << UInt32(i % Self.textColumns)) != 0 {
                let span = spans[i]
                guard !span.isNull, span.count >= SharedText.minLength else { continue }
                textHashes[i] = SharedText.hash(UnsafeRawBufferPointer(rebasing: arena[span.start..<(span.start + span.count)]))
            }
        }
        hashedCount = count
    }

    /// Compresses every row's original bytes into blocks (`RawBlocks`) for the writer to store.
    public mutating func packRaw() {
        let spans = spans
        packedRaw = arena.withUnsafeBytes { arena in
            RawBlocks.packAll(count: count) { row, body in
                let raw = spans[row * Self.textColumns + Text.raw.rawValue]
                body(UnsafeRawBufferPointer(rebasing: arena[raw.start..<(raw.start + raw.count)]))
            }
        }
    }

    public var isEmpty: Bool { count == 0 }

    public mutating func reserve(rows: Int, bytes: Int) {
        spans.reserveCapacity(rows * Self.textColumns)
        numbers.reserveCapacity(rows * Self.numberColumns)
        layers.reserveCapacity(rows)
        kinds.reserveCapacity(rows)
        arena.reserveCapacity(bytes)
    }

    public mutating func removeAll(keepingCapacity: Bool = true) {
        count = 0
        arena.removeAll(keepingCapacity: keepingCapacity)
        spans.removeAll(keepingCapacity: keepingCapacity)
        numbers.removeAll(keepingCapacity: keepingCapacity)
        layers.removeAll(keepingCapacity: keepingCapacity)
        kinds.removeAll(keepingCapacity: keepingCapacity)
        filledTexts = 0
        filledNumbers = 0
        packedRaw = nil
        hashedCount = -1
        textHashes.removeAll(keepingCapacity: keepingCapacity)
    }

    // MARK: - Filling rows from bytes

    /// Starts a row whose columns are NULL until set. `raw` is the record's original bytes.
    /// A parser filling rows directly (not through `RecordSink.emit`) must itself keep `time`
    /// inside `EventTime.accepted`, and hand a record outside it to `emit` to be rejected.
    public mutating func beginRow(layer: Layer, kind: EventKind, line: Int, lineEnd: Int, time: Int64?,
                                  raw: UnsafeBufferPointer<UInt8>) {
        packedRaw = nil
        count += 1
        layers.append(layer)
        kinds.append(kind)
        for _ in 0..<Self.textColumns { spans.append(.null) }
        for _ in 0..<Self.numberColumns { numbers.append(Self.nullNumber) }
        setNumber(.line, Int64(line))
        setNumber(.lineEnd, Int64(lineEnd))
        setNumber(.time, time)
        let start = arena.count
        arena.append(contentsOf: raw)
        spans[(count - 1) * Self.textColumns + Text.raw.rawValue] = Span(start: start, count: raw.count)
        filledTexts |= 1 << UInt32(Text.raw.rawValue)
    }

    /// Discards the row begun last (a parser that finds the line malformed after starting it).
    public mutating func dropLastRow() {
        guard count > 0 else { return }
        packedRaw = nil
        hashedCount = -1
        // The row's bytes start with its raw line (appended first by `beginRow`).
        arena.removeSubrange(span(count - 1, .raw).start...)
        spans.removeLast(Self.textColumns)
        numbers.removeLast(Self.numberColumns)
        layers.removeLast()
        kinds.removeLast()
        count -= 1
    }

    @inline(__always)
    public mutating func setNumber(_ column: Number, _ value: Int64?) {
        numbers[(count - 1) * Self.numberColumns + column.rawValue] = value ?? Self.nullNumber
        if value != nil { filledNumbers |= 1 << UInt32(column.rawValue) }
    }

    /// Sets a text column of the current row from bytes. Bytes that are not valid UTF-8 are
    /// repaired (U+FFFD), as `String(decoding:)` does: text columns always hold valid UTF-8, and
    /// the original bytes stay in `raw`.
    @inline(__always)
    public mutating func setText(_ column: Text, _ bytes: UnsafeBufferPointer<UInt8>) {
        let start = arena.count
        if Self.isASCII(bytes) {
            arena.append(contentsOf: bytes)
        } else {
            arena.append(contentsOf: String(decoding: bytes, as: UTF8.self).utf8)
        }
        spans[(count - 1) * Self.textColumns + column.rawValue] = Span(start: start, count: arena.count - start)
        filledTexts |= 1 << UInt32(column.rawValue)
    }

    /// Sets a text column of the current row; nil is NULL.
    public mutating func setText(_ column: Text, _ value: String?) {
        let index = (count - 1) * Self.textColumns + column.rawValue
        guard let value else { spans[index] = .null; return }
        let start = arena.count
        arena.append(contentsOf: value.utf8)
        spans[index] = Span(start: start, count: arena.count - start)
        filledTexts |= 1 << UInt32(column.rawValue)
    }

    /// Sets `extra` of the current row from key/value pairs (stored as a JSON object, keys sorted).
    public mutating func setExtra(_ pairs: [(key: String, value: String)]) {
        let index = (count - 1) * Self.textColumns + Text.extra.rawValue
        guard !pairs.isEmpty else { spans[index] = .null; return }
        var dict: [String: String] = [:]
        for (k, v) in pairs { dict[k] = v }
        setText(.extra, JSONText.object(dict))
    }

    // MARK: - `extra` written in place

    /// Starts the current row's `extra` object; add fields with `extraField` in ascending key order
    /// (the order `JSONText.object` writes, so both paths store identical text), then `endExtra`.
    public mutating func beginExtra() -> Int {
        let start = arena.count
        arena.append(0x7B)
        return start
    }

    public mutating func extraField(_ key: StaticString, _ value: UnsafeBufferPointer<UInt8>, start: Int) {
        if arena.count > start + 1 { arena.append(0x2C) }
        key.withUTF8Buffer { JSONText.appendQuoted($0, to: &arena) }
        arena.append(0x3A)
        if Self.isASCII(value) {
            JSONText.appendQuoted(value, to: &arena)
        } else {
            // Invalid UTF-8 is repaired first, as every text column is.
            JSONText.appendQuoted(String(decoding: value, as: UTF8.self).utf8, to: &arena)
        }
    }

    /// Ends `extra`: NULL when no field was added.
    public mutating func endExtra(start: Int) {
        let index = (count - 1) * Self.textColumns + Text.extra.rawValue
        if arena.count == start + 1 {
            arena.removeLast()
            spans[index] = .null
            return
        }
        arena.append(0x7D)
        spans[index] = Span(start: start, count: arena.count - start)
        filledTexts |= 1 << UInt32(Text.extra.rawValue)
    }

    @inline(__always)
    static func isASCII(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        for b in bytes where b >= 0x80 { return false }
        return true
    }

    // MARK: - Events

    /// Appends an event (the path of every parser that builds `Event` values).
    public mutating func append(_ e: Event) {
        packedRaw = nil
        count += 1
        layers.append(e.layer)
        kinds.append(e.kind)
        numbers.append(Int64(e.line))
        numbers.append(Int64(e.lineEnd))
        numbers.append(e.time ?? Self.nullNumber)
        numbers.append(e.altTime ?? Self.nullNumber)
        numbers.append(e.status.map(Int64.init) ?? Self.nullNumber)
        numbers.append(e.bytes ?? Self.nullNumber)
        numbers.append(e.duration ?? Self.nullNumber)
        numbers.append(e.pid.map(Int64.init) ?? Self.nullNumber)
        numbers.append(e.elbStatus.map(Int64.init) ?? Self.nullNumber)
        numbers.append(e.targetStatus.map(Int64.init) ?? Self.nullNumber)
        appendText(e.clientIP)
        appendText(e.peerIP)
        appendText(e.forwardedFor)
        appendText(e.method)
        appendText(e.path)
        appendText(e.query)
        appendText(e.requestID)
        appendText(e.traceID)
        appendText(e.userAgent)
        appendText(e.host)
        appendText(e.level)
        appendText(e.message)
        appendText(e.hostname)
        appendText(e.program)
        appendText(e.wafAction)
        appendText(e.wafRule)
        appendText(e.error)
        if e.extra.isEmpty {
            spans.append(.null)
        } else {
            let start = arena.count
            JSONText.appendObject(e.extra, to: &arena)
            spans.append(Span(start: start, count: arena.count - start))
        }
        let start = arena.count
        arena.append(contentsOf: e.raw)
        spans.append(Span(start: start, count: e.raw.count))
        let row = count - 1
        for column in 0..<Self.textColumns where !spans[row * Self.textColumns + column].isNull {
            filledTexts |= 1 << UInt32(column)
        }
        for column in 0..<Self.numberColumns where numbers[row * Self.numberColumns + column] != Self.nullNumber {
            filledNumbers |= 1 << UInt32(column)
        }
    }

    @inline(__always)
    private mutating func appendText(_ value: String?) {
        guard let value else { spans.append(.null); return }
        let start = arena.count
        arena.append(contentsOf: value.utf8)
        spans.append(Span(start: start, count: arena.count - start))
    }

    public func span(_ row: Int, _ column: Text) -> Span {
        spans[row * Self.textColumns + column.rawValue]
    }

    public func number(_ row: Int, _ column: Number) -> Int64? {
        let v = numbers[row * Self.numberColumns + column.rawValue]
        return v == Self.nullNumber ? nil : v
    }

    public func text(_ row: Int, _ column: Text) -> String? {
        let s = span(row, column)
        if s.isNull { return nil }
        return arena.withUnsafeBufferPointer { String(decoding: UnsafeBufferPointer(rebasing: $0[s.start..<(s.start + s.count)]), as: UTF8.self) }
    }

    /// Row `row` as an `Event` (tests, and wrappers that re-map an inner parser's records).
    public func event(at row: Int) -> Event {
        let rawSpan = span(row, .raw)
        var e = Event(time: number(row, .time), layer: layers[row], kind: kinds[row], line: Int(number(row, .line) ?? 0),
                      lineEnd: number(row, .lineEnd).map { Int($0) }, raw: Array(arena[rawSpan.start..<(rawSpan.start + rawSpan.count)]))
        e.altTime = number(row, .altTime)
        e.status = number(row, .status).map { Int($0) }
        e.bytes = number(row, .bytes)
        e.duration = number(row, .duration)
        e.pid = number(row, .pid).map { Int($0) }
        e.elbStatus = number(row, .elbStatus).map { Int($0) }
        e.targetStatus = number(row, .targetStatus).map { Int($0) }
        e.clientIP = text(row, .clientIP)
        e.peerIP = text(row, .peerIP)
        e.forwardedFor = text(row, .forwardedFor)
        e.method = text(row, .method)
        e.path = text(row, .path)
        e.query = text(row, .query)
        e.requestID = text(row, .requestID)
        e.traceID = text(row, .traceID)
        e.userAgent = text(row, .userAgent)
        e.host = text(row, .host)
        e.level = text(row, .level)
        e.message = text(row, .message)
        e.hostname = text(row, .hostname)
        e.program = text(row, .program)
        e.wafAction = text(row, .wafAction)
        e.wafRule = text(row, .wafRule)
        e.error = text(row, .error)
        if let json = text(row, .extra) { e.extra = JSONText.parseFlatObject(json) ?? ["extra": json] }
        return e
    }

    public var events: [Event] { (0..<count).map(event(at:)) }
}
