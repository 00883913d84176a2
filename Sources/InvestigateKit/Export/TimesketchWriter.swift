import Foundation

/// Timesketch's JSONL importer: one JSON object per line with the three fields it requires,
/// `message`, `datetime` (ISO 8601 with the zone) and `timestamp_desc`, plus `timestamp` (µs) and
/// free-form attributes: the parsed fields, `extra_*`, the chain, and the evidence locator
/// (`source_file`, `source_line`, `source_sha256`). A record without a time cannot be imported
/// and is left out (counted by the caller).
public struct TimesketchWriter: ExportWriter {
    public init() {}

    public func header() -> [UInt8] { [] }

    public func write(_ r: ExportRecord, into out: inout [UInt8]) -> Bool {
        guard r.time != nil else { return false }
        var fields: [(String, JSONValue)] = ExportFields.flat(r).compactMap { key, value in value.map { (key, $0.json) } }
        fields.append(("data_type", .string("investigate:\(r.layer.rawValue):\(r.event?.kind.rawValue ?? "rejected")")))
        if let e = r.event {
            fields += ExportFields.flatExtra(e.extra, prefix: "extra_").map { ($0.0, .string($0.1)) }
        }
        if let text = r.extraText { fields.append(("extra_unparsed", .string(text))) }
        JSONBytes.append(.object(fields), to: &out)
        out.append(0x0A)
        return true
    }
}
