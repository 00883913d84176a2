import Foundation

/// The application's own lines about one request that no key could link: apps log requests in
/// free text in many shapes (`GET /api/orders/7731 -> 403 (7 ms)`, `200 GET /account`,
/// `permission denied … for GET /admin/users`, a JSON record with a `path` field), so they are
/// found by what they name (the request's path, at a word boundary, near the request's moment,
/// and no other client), not by a format. A line that also names the status is the app's own
/// record of answering it; a warning or error naming the path says why.
struct AppMentions {
    /// Lines naming the path and the status the proxy passed on.
    var answers: [StoredEvent] = []
    /// Warnings and errors naming the path (the app's reason).
    var reasons: [StoredEvent] = []
    /// Warnings and errors logged in the request's very moment that name no other path and name
    /// a part of this one (`Product 1234 not found` for /products/1234, `Maintenance mode active
    /// for /admin/reports`): probably this request's reason.
    var related: [StoredEvent] = []
    /// Lines naming the path logged after the proxy had answered (any level): the app finishing
    /// the request with nobody listening (`GET /p 200 12520ms`).
    var later: [StoredEvent] = []

    var isEmpty: Bool { answers.isEmpty && reasons.isEmpty }

    /// - Parameters:
    ///   - record: the proxy's access record (nginx or gunicorn) whose request is looked for.
    ///   - after: how long after the proxy's answer a line may come (an app still working when
    ///     nginx gave up logs its failure later).
    init(_ c: RequestCase, for record: StoredEvent, status: Int?, after: Int64 = 2_000_000) {
        guard let path = record.event.path, let done = record.event.time else { return }
        let bare = path.split(separator: "?", maxSplits: 1).first.map(String.init) ?? path
        guard bare.count > 1 else { return }  // "/" is named by every line
        let start = done - max(0, record.event.duration ?? 0) - 2_000_000
        let clients = Set(c.records.flatMap { [$0.event.clientIP, $0.event.peerIP, $0.event.forwardedFor] }.compactMap { $0 })
        var seen = Set<Int64>()
        var unnamed: [StoredEvent] = []
        for e in c.logs(.app) + Array(c.nearby) where e.event.layer == .app && seen.insert(e.id).inserted {
            guard let t = e.event.time, t >= start, t <= done + after else { continue }
            // A line about another client's request is not this one's.
            if !clients.isEmpty, let ip = e.event.clientIP ?? Self.namedClient(e.messageText), !clients.contains(where: { $0.contains(ip) }) { continue }
            guard Self.names(e, bare) else {
                let level = (e.event.level ?? "").uppercased()
                // Asked about a proxy that gave up (no status), the app's words may come later.
                if t <= done + (status == nil ? after : 1_000_000), level.hasPrefix("WARN") || level.hasPrefix("ERR") || level.hasPrefix("CRIT"),
                   Self.namedPath(e).map({ bare.hasPrefix($0) }) ?? true {
                    unnamed.append(e)
                }
                continue
            }
            let level = (e.event.level ?? "").uppercased()
            if let status, e.event.status == status || Self.namesStatus(e.messageText, status) {
                answers.append(e)
            } else if level.hasPrefix("WARN") || level.hasPrefix("ERR") || level.hasPrefix("CRIT") || e.messageText.contains("Traceback") {
                reasons.append(e)
            } else if t > done {
                later.append(e)
            }
        }
        // Parts of the path worth naming: `1234` and `reports` in /admin/reports/1234, not `api`.
        // The query's values name it too (`acme-logistics` of ?customer=acme-logistics, in a slow
        // query the app logged).
        let query = path.split(separator: "?", maxSplits: 1).dropFirst().first.map(String.init) ?? record.event.query ?? ""
        let values = query.split(separator: "&").compactMap { $0.split(separator: "=", maxSplits: 1).dropFirst().first.map(String.init) }
            .filter { $0.count >= 5 && $0.allSatisfy { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" } }
        let parts = bare.split(separator: "/").map(String.init).filter { $0.count >= 3 && !["api", "v1", "v2", "v3", "www"].contains($0.lowercased()) }
            + values
        // The message, or the logger/module that wrote it (`ERROR in payments:` for /api/payments/…);
        // a word names a part in the singular too (`Payment` for `payments`).
        let naming = unnamed.filter { e in
            let texts = [e.messageText, e.extra("module"), e.extra("logger")].compactMap { $0 }
            return parts.contains { part in
                let singular = part.count > 4 && part.hasSuffix("s") ? String(part.dropLast()) : nil
                return texts.contains { text in Self.namesWord(text, part) || singular.map { Self.namesWord(text, $0) } == true }
            }
        }
        // Only lines naming a part of the path: a lone warning in the same second may be another
        // request's (a scanner's 404 beside a user's), and an unrelated error is the commonest decoy.
        related = naming
    }

    /// The path a line names, if any (its field, or a request line or path-like word in its text).
    static func namedPath(_ e: StoredEvent) -> String? {
        if let p = e.event.path { return p.split(separator: "?", maxSplits: 1).first.map(String.init) ?? p }
        guard let r = e.messageText.range(of: #"(?:^|[\s'"(])(/[A-Za-z0-9_.~%-]+(?:/[A-Za-z0-9_.~%-]*)*)"#, options: .regularExpression) else { return nil }
        let found = e.messageText[r].drop { $0 != "/" }
        return String(found)
    }

    /// Whether the text holds the word on its own (not inside a longer word or number).
    static func namesWord(_ text: String, _ word: String) -> Bool {
        var from = text.startIndex
        while let r = text.range(of: word, options: .caseInsensitive, range: from..<text.endIndex) {
            let before: Character = r.lowerBound == text.startIndex ? " " : text[text.index(before: r.lowerBound)]
            let after: Character = r.upperBound == text.endIndex ? " " : text[r.upperBound]
            if !(before.isLetter || before.isNumber) && !(after.isLetter || after.isNumber) { return true }
            from = r.upperBound
        }
        return false
    }

    /// The client address a free-text line names (`client=1.2.3.4`, `remote_addr: 1.2.3.4`, `ip=…`);
    /// other addresses in a message (a database's) say nothing of the client.
    static func namedClient(_ text: String) -> String? {
        guard let r = text.range(of: #"(?i)\b(?:client|client_ip|remote_addr|remote|ip|addr)["']?\s*[=:]\s*["']?([0-9]{1,3}(?:\.[0-9]{1,3}){3}|[0-9a-fA-F:]*:[0-9a-fA-F:]+)"#,
                                 options: .regularExpression) else { return nil }
        let value = String(text[r]).replacingOccurrences(of: #"^\w+["']?\s*[=:]\s*["']?"#, with: "", options: .regularExpression)
        return value.isEmpty ? nil : value
    }

    /// Whether a line names the path: its path field, or the path in its text followed by a
    /// character that ends a path (so `/api` is not named by `/api/items`).
    static func names(_ e: StoredEvent, _ bare: String) -> Bool {
        if let p = e.event.path {
            let q = p.split(separator: "?", maxSplits: 1).first.map(String.init) ?? p
            if q == bare { return true }
        }
        let text = e.messageText
        var from = text.startIndex
        while let r = text.range(of: bare, range: from..<text.endIndex) {
            let before: Character = r.lowerBound == text.startIndex ? " " : text[text.index(before: r.lowerBound)]
            let after: Character = r.upperBound == text.endIndex ? " " : text[r.upperBound]
            if !pathCharacter(before) && !pathCharacter(after) { return true }
            from = r.upperBound
        }
        return false
    }

    static func pathCharacter(_ ch: Character) -> Bool { ch.isLetter || ch.isNumber || "/_-.%~".contains(ch) }

    /// Whether the text names the status as a number of its own (`-> 403`, `403 GET`,
    /// `"status": 403`, `status=403`), not inside another number, a time or an id.
    static func namesStatus(_ text: String, _ status: Int) -> Bool {
        let needle = String(status)
        var from = text.startIndex
        while let r = text.range(of: needle, range: from..<text.endIndex) {
            defer { from = r.upperBound }
            let after: Character = r.upperBound == text.endIndex ? " " : text[r.upperBound]
            if after.isLetter || after.isNumber || "./-_".contains(after) { continue }
            if r.lowerBound == text.startIndex { return true }
            let i = text.index(before: r.lowerBound)
            let before = text[i]
            guard " \t([\"'=>".contains(before) || before == ":" else { continue }
            // `…:40,403` or `10:15:403`: part of a time, not a status.
            if before == ":", i > text.startIndex, text[text.index(before: i)].isNumber { continue }
            return true
        }
        return false
    }
}
