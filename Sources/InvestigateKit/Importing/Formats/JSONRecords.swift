import Foundation

/// Finds the record objects of an AWS API's JSON output (pretty-printed CLI output, pages pasted
/// back to back, a bare array, or one record per line) and accounts for every line around them,
/// for the importers of signals beside the logs (CloudWatch metrics, GuardDuty, Inspector).
///
/// A top-level value is a record itself (NDJSON, an EventBridge event) when `isRecord` says so;
/// otherwise its records are the elements of its arrays (`{"Findings": […]}`), or its own elements
/// when it is an array. A truncated document keeps every complete record before the cut and
/// rejects the rest with a reason; text outside any value is rejected as debris; lines between
/// records are framing when they are brackets or page metadata, else rejected. Nothing is skipped
/// in silence.
enum JSONRecords {
    enum Outcome {
        /// The object was read (emitted or rejected by the handler); these byte ranges of it hold
        /// its records (lines outside them but inside the object count as framing or debris).
        case taken([Range<Int>])
        /// Page metadata (`"Messages": [{…}]`), not a record: its lines are framing.
        case metadata
    }

    /// - Parameters:
    ///   - noun: what a record is, for reasons ("GuardDuty finding").
    ///   - isPage: whether a complete top-level object with no records is an empty page (`{"findings": []}`).
    ///   - isRecord: whether a complete top-level object is itself one record.
    ///   - handle: reads one candidate object (its byte range in `doc`, the parsed object, and the
    ///     top-level object around it when the document is complete: get-metric-statistics' `Label`).
    static func read(_ doc: JSONDocumentBuffer, noun: String, into sink: inout RecordSink,
                     isPage: (Any) -> Bool, isRecord: ([String: Any]) -> Bool,
                     handle: (Range<Int>, [String: Any], [String: Any]?, inout RecordSink) -> Outcome) {
        doc.bytes.withUnsafeBufferPointer { b in
            let split = AWSJSON.splitConcatenated(b)
            for value in split.values {
                readValue(value, b, doc, complete: true, noun: noun, into: &sink, isPage: isPage, isRecord: isRecord, handle: handle)
            }
            if let t = split.truncated {
                readValue(t, b, doc, complete: false, noun: noun, into: &sink, isPage: isPage, isRecord: isRecord, handle: handle)
            }
            for g in split.garbage {
                doc.reject(g, "text outside any JSON value (not a \(noun) export)", into: &sink)
            }
        }
    }

    private static func readValue(_ range: Range<Int>, _ b: UnsafeBufferPointer<UInt8>, _ doc: JSONDocumentBuffer, complete: Bool,
                                  noun: String, into sink: inout RecordSink,
                                  isPage: (Any) -> Bool, isRecord: ([String: Any]) -> Bool,
                                  handle: (Range<Int>, [String: Any], [String: Any]?, inout RecordSink) -> Outcome) {
        var parsed: Any?
        if complete, case .success(let v) = AWSJSON.parse(doc.slice(range)) { parsed = v }
        let top = parsed as? [String: Any]
        var candidates: [Range<Int>]
        if let top, isRecord(top) {
            candidates = [range]
        } else if b[range.lowerBound] == 0x5B {
            candidates = AWSJSON.nestedContainers(b, in: range, depth: 1).filter(\.isObject).map(\.range)
        } else {
            candidates = AWSJSON.nestedContainers(b, in: range, depth: 2).filter(\.isObject).map(\.range)
        }
        var covered: [Range<Int>] = []
        var found = 0, lastEnd = range.lowerBound
        for c in candidates {
            switch AWSJSON.parseObject(doc.slice(c)) {
            case .failure(let why):
                doc.reject(c, "\(noun) is not valid JSON (\(why.description))", into: &sink)
                covered.append(c); found += 1
            case .success(let o):
                switch handle(c, o, top, &sink) {
                case .taken(let parts):
                    covered += parts.isEmpty ? [c] : parts
                    found += 1
                case .metadata:
                    continue
                }
            }
            lastEnd = c.upperBound
        }
        if !complete {
            let rest = lastEnd..<range.upperBound
            if !rest.isEmpty {
                doc.reject(rest, "truncated JSON document: \(found) complete \(noun)(s) before the cut were kept", into: &sink)
                covered.append(rest)
            }
            doc.accountOutside(covered, in: range.lowerBound..<max(range.lowerBound, lastEnd), into: &sink)
            return
        }
        if found == 0 {
            if let parsed, isPage(parsed) {
                sink.note("an export page held no \(noun)s")
            } else {
                doc.reject(range, "JSON value holds no \(noun) (not the shape this importer reads)", into: &sink)
                return
            }
        }
        doc.accountOutside(covered, in: range, into: &sink)
    }

    /// Looks a key up case-insensitively: the API's CLI output says `Findings`/`Type`, the
    /// EventBridge and S3 exports `findings`/`type`.
    static func value(_ o: [String: Any], _ key: String) -> Any? {
        if let v = o[key] { return v }
        let lower = key.lowercased()
        return o.first { $0.key.lowercased() == lower }?.value
    }

    static func object(_ o: [String: Any]?, _ key: String) -> [String: Any]? {
        guard let o else { return nil }
        return value(o, key) as? [String: Any]
    }

    static func string(_ o: [String: Any]?, _ key: String) -> String? {
        guard let o else { return nil }
        return AWSJSON.meaningful(value(o, key))
    }

    /// An ISO-8601 stamp, or epoch seconds/milliseconds as a number or numeric string
    /// (Inspector's `1.663703546405E9`).
    static func time(_ value: Any?) -> Int64? {
        if let s = value as? String, let t = AWSTime.iso8601(AWSJSON.trimmedBlanks(s)) { return t }
        return AWSTime.epoch(value)
    }

    /// The byte ranges of the scalar elements of the array under `key` directly inside the object
    /// at `range` (the `Timestamps` and `Values` of a get-metric-data result), as written.
    static func arrayElements(_ b: UnsafeBufferPointer<UInt8>, object range: Range<Int>, key: String) -> [Range<Int>]? {
        let needle = Array("\"\(key)\"".utf8)
        var depth = 0, i = range.lowerBound
        while i < range.upperBound {
            let c = b[i]
            if c == 0x22 {
                if depth == 1, i + needle.count <= range.upperBound, Array(b[i..<(i + needle.count)]) == needle {
                    var j = i + needle.count
                    while j < range.upperBound, b[j] == 0x20 || b[j] == 0x09 || b[j] == 0x0A || b[j] == 0x0D { j += 1 }
                    if j < range.upperBound, b[j] == 0x3A {
                        j += 1
                        while j < range.upperBound, b[j] == 0x20 || b[j] == 0x09 || b[j] == 0x0A || b[j] == 0x0D { j += 1 }
                        guard j < range.upperBound, b[j] == 0x5B else { return nil }
                        return scalars(b, from: j + 1, to: range.upperBound)
                    }
                }
                i += 1
                while i < range.upperBound, b[i] != 0x22 { i += b[i] == 0x5C ? 2 : 1 }
                i += 1
                continue
            }
            if c == 0x7B || c == 0x5B { depth += 1 } else if c == 0x7D || c == 0x5D { depth -= 1 }
            i += 1
        }
        return nil
    }

    private static func scalars(_ b: UnsafeBufferPointer<UInt8>, from start: Int, to end: Int) -> [Range<Int>]? {
        var out: [Range<Int>] = []
        var i = start
        func blank(_ c: UInt8) -> Bool { c == 0x20 || c == 0x09 || c == 0x0A || c == 0x0D }
        while i < end {
            while i < end, blank(b[i]) || b[i] == 0x2C { i += 1 }
            guard i < end else { return nil }
            if b[i] == 0x5D { return out }
            let s = i
            if b[i] == 0x22 {
                i += 1
                while i < end, b[i] != 0x22 { i += b[i] == 0x5C ? 2 : 1 }
                guard i < end else { return nil }
                i += 1
            } else if b[i] == 0x7B || b[i] == 0x5B {
                return nil
            } else {
                while i < end, !blank(b[i]), b[i] != 0x2C, b[i] != 0x5D { i += 1 }
            }
            out.append(s..<i)
        }
        return nil
    }
}
