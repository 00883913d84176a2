import Foundation

/// nginx writes `$time_local` with its offset, which changes at a daylight-saving switch
/// (`+0100`, then `+0200`). A fixed offset learnt from the first line then reads every zone-less
/// stamp after the switch an hour off (an app log beside it). Two offsets and the moment between
/// them name the rules: the first of a few representative zones whose offsets were the same
/// before and after is used (every zone with those rules gives the same times).
struct DSTZoneInference {
    /// Representative zones of the common daylight-saving rule sets.
    static let candidates = ["Europe/London", "Europe/Berlin", "Europe/Helsinki", "America/New_York", "America/Chicago",
                             "America/Denver", "America/Los_Angeles", "America/Anchorage", "America/Halifax", "America/St_Johns",
                             "Australia/Sydney", "Australia/Adelaide", "Pacific/Auckland", "America/Santiago", "Asia/Jerusalem",
                             "Europe/Chisinau", "America/Havana", "Pacific/Chatham", "Australia/Lord_Howe"]

    private var first: (offset: Int, utc: Int64)?
    private var lastBefore: Int64 = 0
    private(set) var named: ZoneSpec?
    private var settled = false

    /// Takes each record's offset and UTC time; returns a named zone once an offset change names one.
    mutating func observe(offset: Int, utc: Int64) -> ZoneSpec? {
        guard !settled else { return nil }
        guard let f = first else { first = (offset, utc); lastBefore = utc; return nil }
        if offset == f.offset { lastBefore = max(lastBefore, utc); return nil }
        settled = true
        named = Self.zone(before: f.offset, at: lastBefore, after: offset, at: utc)
        return named
    }

    static func zone(before a: Int, at t0: Int64, after b: Int, at t1: Int64) -> ZoneSpec? {
        for id in candidates {
            let zone = ZoneSpec.named(id)
            if zone.offset(atUTC: t0) == a && zone.offset(atUTC: t1) == b { return zone }
        }
        return nil
    }
}
