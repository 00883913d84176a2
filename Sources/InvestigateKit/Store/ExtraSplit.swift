/// `extra` objects split into the fields whose values repeat and the rest, so that the repeating
/// part is stored once (`SharedText`) while the varying part stays with the row.
///
/// An ALB record's `extra` holds about twenty fields, and most of its 800 bytes are the same for
/// every record of a load balancer: its name, certificate and target group ARNs, the TLS cipher,
/// the actions. Two or three fields vary per request (the client port, the connection trace id,
/// the request's creation time), so the whole object never repeats and `SharedText` alone could
/// not share any of it: `extra` was over half of the edge corpus's database.
///
/// Which fields repeat is learnt per layer from the data, not listed per format: a key is
/// *common* once `sightingsToDecide` of its values held at most `mostDistinct` different ones
/// (an ALB's `ssl_cipher`, a WAF's `webacl_id`), and *varying* as soon as they held more. Until
/// then it is varying. The decisions depend only on the order records are written in, so the
/// same input gives the same database.
///
/// Both parts are flat objects of strings in the order `JSONText.object` writes them (keys
/// sorted), their fields copied byte for byte, so `merged(common:varying:)` gives back the very
/// text the importer wrote. The `event` view joins them with `json_patch` (the same fields,
/// common ones first); an object this scanner does not fully understand is not split at all.
final class ExtraSplitter {
    static let sightingsToDecide = 256
    static let mostDistinct = 16
    /// Keys learnt at most; beyond, a new key is varying (keys come from importers, but some copy
    /// a JSON log's own field names, which an attacker chooses).
    static let mostKeys = 4096

    private enum State { case learning, common, varying }

    private struct Key {
        let layer: Int
        let bytes: [UInt8]
        var state = State.learning
        var sightings = 0
        var distinct: [Int] = []
    }

    private var keys: [Key] = []
    /// Key indices by a hash of (layer, key bytes).
    private var byHash: [Int: [Int]] = [:]
    /// Per layer, the key indices of the last object split, in order: the next object of a layer
    /// usually has the same keys, found by comparing bytes instead of hashing.
    private var lastKeys: [Int: [Int]] = [:]
    /// Fields of the object being split: where each `"key":"value"` starts and ends, and its key.
    private var fields: [(start: Int, keyEnd: Int, end: Int, key: Int)] = []

    /// The parts of the last `split` that returned true.
    private(set) var common: [UInt8] = []
    private(set) var varying: [UInt8] = []

    /// Splits `value`, the `extra` of a record of layer `layer` (any stable number per layer).
    /// True when it has at least one common field: then `common` holds those and `varying` the
    /// rest (`{}` when none). False when it has none, or is not an object `JSONText` writes.
    func split(_ value: UnsafeRawBufferPointer, layer: Int) -> Bool {
        guard scan(value) else { return false }
        var previous = lastKeys[layer] ?? []
        var anyCommon = false
        for n in fields.indices {
            let field = fields[n]
            // The key's bytes sit after the opening quote, up to the quote before `:`.
            let key = UnsafeRawBufferPointer(rebasing: value[(field.start + 1)..<field.keyEnd])
            let index = n < previous.count && matches(previous[n], key) ? previous[n] : find(key, layer: layer)
            fields[n].key = index
            if index >= 0, keys[index].state == .learning {
                learn(index, value: UnsafeRawBufferPointer(rebasing: value[(field.keyEnd + 3)..<(field.end - 1)]))
            }
            if index >= 0, keys[index].state == .common { anyCommon = true }
        }
        if previous.count != fields.count { previous = [Int](repeating: -1, count: fields.count) }
        for n in fields.indices { previous[n] = fields[n].key }
        lastKeys[layer] = previous
        guard anyCommon else { return false }
        common.removeAll(keepingCapacity: true)
        varying.removeAll(keepingCapacity: true)
        common.append(0x7B)
        varying.append(0x7B)
        for field in fields {
            let isCommon = field.key >= 0 && keys[field.key].state == .common
            if isCommon {
                if common.count > 1 { common.append(0x2C) }
                common.append(contentsOf: value[field.start..<field.end])
            } else {
                if varying.count > 1 { varying.append(0x2C) }
                varying.append(contentsOf: value[field.start..<field.end])
            }
        }
        common.append(0x7D)
        varying.append(0x7D)
        return true
    }

    /// The object the importer wrote, from its two parts as `split` made them: their fields
    /// merged in key order. Parts written otherwise (plain SQL) are merged as objects.
    static func merged(common: String, varying: String?) -> String {
        guard let varying, varying != "{}" else { return common }
        if let text = mergedFields(common: common, varying: varying) { return text }
        var fields = JSONText.parseFlatObject(varying) ?? [:]
        fields.merge(JSONText.parseFlatObject(common) ?? [:]) { kept, _ in kept }
        return JSONText.object(fields)
    }

    private static func mergedFields(common: String, varying: String) -> String? {
        let a = Array(common.utf8), b = Array(varying.utf8)
        return a.withUnsafeBytes { ca in
            b.withUnsafeBytes { va -> String? in
                guard let x = fieldSpans(ca), let y = fieldSpans(va) else { return nil }
                var out: [UInt8] = [0x7B]
                var i = 0, j = 0
                func append(_ bytes: UnsafeRawBufferPointer, _ span: FieldSpan) {
                    if out.count > 1 { out.append(0x2C) }
                    out.append(contentsOf: bytes[span.start..<span.end])
                }
                while i < x.count || j < y.count {
                    if j == y.count || (i < x.count && key(ca, x[i]).lexicographicallyPrecedes(key(va, y[j]))) {
                        append(ca, x[i]); i += 1
                    } else {
                        append(va, y[j]); j += 1
                    }
                }
                out.append(0x7D)
                return String(decoding: out, as: UTF8.self)
            }
        }
    }

    // MARK: - Keys

    private func matches(_ index: Int, _ key: UnsafeRawBufferPointer) -> Bool {
        index >= 0 && keys[index].bytes.count == key.count && keys[index].bytes.withUnsafeBytes { $0.elementsEqual(key) }
    }

    private func find(_ key: UnsafeRawBufferPointer, layer: Int) -> Int {
        var hasher = Hasher()
        hasher.combine(layer)
        hasher.combine(bytes: key)
        let hash = hasher.finalize()
        if let candidates = byHash[hash] {
            for index in candidates where keys[index].layer == layer && matches(index, key) { return index }
        }
        guard keys.count < Self.mostKeys else { return -1 }
        keys.append(Key(layer: layer, bytes: Array(key)))
        byHash[hash, default: []].append(keys.count - 1)
        return keys.count - 1
    }

    private func learn(_ index: Int, value: UnsafeRawBufferPointer) {
        var hasher = Hasher()
        hasher.combine(bytes: value)
        let hash = hasher.finalize()
        keys[index].sightings += 1
        if !keys[index].distinct.contains(hash) {
            keys[index].distinct.append(hash)
            if keys[index].distinct.count > Self.mostDistinct {
                keys[index].state = .varying
                keys[index].distinct = []
                return
            }
        }
        if keys[index].sightings >= Self.sightingsToDecide {
            keys[index].state = .common
            keys[index].distinct = []
        }
    }

    // MARK: - Scanning

    /// Fills `fields` from a flat object of strings written as `JSONText` writes one: `{`, then
    /// `"key":"value"` fields separated by `,` (no space), then `}`, strings holding no control
    /// character and only the escapes SQLite's JSON functions read. False for anything else.
    /// Keys must also be in strictly ascending byte order (as `JSONText` writes keys without
    /// escapes): then merging the parts by key order gives back the original text.
    private func scan(_ v: UnsafeRawBufferPointer) -> Bool {
        fields.removeAll(keepingCapacity: true)
        guard let spans = Self.fieldSpans(v), !spans.isEmpty else { return false }
        for (n, span) in spans.enumerated() {
            if n > 0, !Self.key(v, spans[n - 1]).lexicographicallyPrecedes(Self.key(v, span)) { return false }
            fields.append((span.start, span.keyEnd, span.end, -1))
        }
        return true
    }

    private struct FieldSpan {
        /// The key's opening quote, its closing quote, and the end of the value (past its quote).
        var start: Int, keyEnd: Int, end: Int
    }

    /// The `"key":"value"` fields of an object as `scan` accepts it.
    private static func fieldSpans(_ v: UnsafeRawBufferPointer) -> [FieldSpan]? {
        let n = v.count
        guard n >= 2, v[0] == 0x7B, v[n - 1] == 0x7D else { return nil }
        var spans: [FieldSpan] = []
        if n == 2 { return spans }
        var i = 1
        while true {
            let start = i
            guard let keyEnd = stringEnd(v, from: i), keyEnd + 1 < n, v[keyEnd + 1] == 0x3A,
                  let valueEnd = stringEnd(v, from: keyEnd + 2) else { return nil }
            let end = valueEnd + 1
            spans.append(FieldSpan(start: start, keyEnd: keyEnd, end: end))
            guard end < n else { return nil }
            if v[end] == 0x2C { i = end + 1; continue }
            return v[end] == 0x7D && end == n - 1 ? spans : nil
        }
    }

    /// The index of the closing quote of the string opening at `i`, or nil.
    private static func stringEnd(_ v: UnsafeRawBufferPointer, from i: Int) -> Int? {
        guard i < v.count, v[i] == 0x22 else { return nil }
        var j = i + 1
        while j < v.count {
            let b = v[j]
            if b == 0x22 { return j }
            if b < 0x20 { return nil }
            if b == 0x5C {
                guard j + 1 < v.count else { return nil }
                switch v[j + 1] {
                case 0x22, 0x5C, 0x2F, 0x62, 0x66, 0x6E, 0x72, 0x74: j += 2
                case 0x75:
                    guard j + 5 < v.count, (2...5).allSatisfy({ isHex(v[j + $0]) }) else { return nil }
                    j += 6
                default: return nil
                }
                continue
            }
            j += 1
        }
        return nil
    }

    private static func isHex(_ b: UInt8) -> Bool {
        (b >= 0x30 && b <= 0x39) || (b >= 0x61 && b <= 0x66) || (b >= 0x41 && b <= 0x46)
    }

    /// A field's key bytes, between its quotes.
    private static func key(_ v: UnsafeRawBufferPointer, _ span: FieldSpan) -> UnsafeRawBufferPointer.SubSequence {
        v[(span.start + 1)..<span.keyEnd]
    }
}
