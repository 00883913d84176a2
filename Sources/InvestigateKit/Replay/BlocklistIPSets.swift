import Foundation

/// The blocklist a replay simulated, as AWS WAF IP sets: the request bodies of
/// `aws wafv2 update-ip-set --cli-input-json file://…` (`Name`, `Scope`, `Id`, `Addresses`,
/// `LockToken`), one set per address family since an IP set holds IPv4 or IPv6 addresses, never
/// both, and the add/remove schedule the TTL implies. `update-ip-set` replaces the set's whole
/// address list (and its description, which is left out here), and needs the `LockToken` that
/// `get-ip-set` returns just before: the files carry a placeholder the user must replace.
public struct BlocklistIPSets: Sendable {
    public enum Scope: String, Sendable, CaseIterable { case regional = "REGIONAL", cloudfront = "CLOUDFRONT" }

    public struct Options: Sendable {
        public var ipv4Name: String
        public var ipv6Name: String
        public var ipv4ID: String?
        public var ipv6ID: String?
        public var scope: Scope

        public init(ipv4Name: String = "investigate-blocklist-ipv4", ipv6Name: String = "investigate-blocklist-ipv6",
                    ipv4ID: String? = nil, ipv6ID: String? = nil, scope: Scope = .regional) {
            self.ipv4Name = ipv4Name
            self.ipv6Name = ipv6Name
            self.ipv4ID = ipv4ID
            self.ipv6ID = ipv6ID
            self.scope = scope
        }
    }

    /// What the files hold in place of values only AWS knows.
    public static let lockTokenPlaceholder = "REPLACE-WITH-LockToken-FROM-aws-wafv2-get-ip-set"
    public static func idPlaceholder(_ family: String) -> String { "REPLACE-WITH-\(family)-IP-SET-Id" }
    /// AWS WAF's limit on the addresses of one IP set.
    public static let maxAddresses = 10_000

    /// AWS WAF's constraints on an IP set's `Name` (1–128 of `[A-Za-z0-9_-]`) and `Id` (1–36 of `[0-9a-f-]`).
    public static func isValidName(_ s: String) -> Bool {
        (1...128).contains(s.utf8.count) && s.unicodeScalars.allSatisfy { $0.isASCII && (CharacterSet.alphanumerics.contains($0) || $0 == "_" || $0 == "-") }
    }
    public static func isValidID(_ s: String) -> Bool {
        (1...36).contains(s.utf8.count) && s.unicodeScalars.allSatisfy { "0123456789abcdef-".unicodeScalars.contains($0) }
    }

    public var ipv4: [String]
    public var ipv6: [String]
    /// Blocked keys that are not an IP address (a log's client field can hold anything): they
    /// cannot go into an IP set and are named, not dropped in silence.
    public var notAddresses: [String]
    public var schedule: [ScheduleEntry]

    public struct ScheduleEntry: Sendable, Equatable {
        public var time: Int64
        public var action: String  // "add" | "remove"
        public var address: String // the CIDR as it stands in the IP set
        public var reason: String
    }

    /// Every address blocked at some moment of the replay, as `/32` or `/128`, in address order;
    /// the schedule in time order (at the same instant a removal before an addition, so an address
    /// blocked again at the moment its block lapsed ends up blocked).
    public init(periods: [BlockPeriod]) {
        var v4: [[UInt8]: String] = [:], v6: [[UInt8]: String] = [:]
        var bad = Set<String>()
        var entries: [ScheduleEntry] = []
        for p in periods {
            guard let bytes = IPRange.parse(p.address), let text = IPText.canonical(bytes) else { bad.insert(p.address); continue }
            let cidr = text + (bytes.count == 4 ? "/32" : "/128")
            if bytes.count == 4 { v4[bytes] = cidr } else { v6[bytes] = cidr }
            let why = p.reasons.joined(separator: ", ")
            entries.append(ScheduleEntry(time: p.start, action: "add", address: cidr, reason: "alert: \(why)"))
            entries.append(ScheduleEntry(time: p.until, action: "remove", address: cidr,
                                         reason: "TTL lapsed (blocked since \(TimeFormat.isoUTC(p.start)); \(p.stopped) requests stopped)"))
        }
        ipv4 = v4.sorted { $0.key.lexicographicallyPrecedes($1.key) }.map(\.value)
        ipv6 = v6.sorted { $0.key.lexicographicallyPrecedes($1.key) }.map(\.value)
        notAddresses = bad.sorted()
        schedule = entries.sorted { ($0.time, $0.action == "add" ? 1 : 0, $0.address) < ($1.time, $1.action == "add" ? 1 : 0, $1.address) }
    }

    /// The `update-ip-set` input of one family.
    public func request(ipv6 family6: Bool, _ o: Options) -> JSONValue {
        .object([
            ("Name", .string(family6 ? o.ipv6Name : o.ipv4Name)),
            ("Scope", .string(o.scope.rawValue)),
            ("Id", .string((family6 ? o.ipv6ID : o.ipv4ID) ?? Self.idPlaceholder(family6 ? "IPv6" : "IPv4"))),
            ("Addresses", .array((family6 ? ipv6 : ipv4).map(JSONValue.string))),
            ("LockToken", .string(Self.lockTokenPlaceholder)),
        ])
    }

    /// `request` as the file's bytes: pretty-printed JSON, keys in the documented order.
    public func requestJSON(ipv6: Bool, _ o: Options) -> [UInt8] {
        var out: [UInt8] = []
        guard case .object(let fields) = request(ipv6: ipv6, o) else { return out }
        out.append(contentsOf: "{\n".utf8)
        for (i, (key, value)) in fields.enumerated() {
            out.append(contentsOf: "  ".utf8)
            JSONText.appendQuoted(key.utf8, to: &out)
            out.append(contentsOf: ": ".utf8)
            if case .array(let items) = value {
                if items.isEmpty { out.append(contentsOf: "[]".utf8) } else {
                    out.append(contentsOf: "[\n".utf8)
                    for (j, item) in items.enumerated() {
                        out.append(contentsOf: "    ".utf8)
                        JSONBytes.append(item, to: &out)
                        out.append(contentsOf: (j + 1 < items.count ? ",\n" : "\n").utf8)
                    }
                    out.append(contentsOf: "  ]".utf8)
                }
            } else {
                JSONBytes.append(value, to: &out)
            }
            out.append(contentsOf: (i + 1 < fields.count ? ",\n" : "\n").utf8)
        }
        out.append(contentsOf: "}\n".utf8)
        return out
    }

    /// The schedule as JSON Lines: `{"time","action","address","reason"}`.
    public func scheduleJSONL() -> [UInt8] {
        var out: [UInt8] = []
        for e in schedule {
            JSONBytes.append(.object([("time", .string(TimeFormat.isoUTC(e.time))), ("action", .string(e.action)),
                                      ("address", .string(e.address)), ("reason", .string(e.reason))]), to: &out)
            out.append(0x0A)
        }
        return out
    }
}
