import Foundation

/// Who is at fault when a layer answers a client error on its own: the request itself (a missing
/// resource, a malformed or unauthenticated request, one too large or too fast), or the layer's own
/// policy (403: it decided to refuse this client).
///
/// The limits convention (docs/diagnosis.md): when a configured limit refused the client's own
/// traffic (nginx `limit_req` 503, API Gateway 429, a WAF rate-based rule, 413 at any layer), the
/// responder is the layer that enforced the limit and the cause is `client`: the client's traffic
/// exceeded it. A rule that judged the request's content (a managed rule, a deny list) is the
/// layer's own decision, so its cause is that layer.
enum StatusMeaning {
    static let clientFaults: Set<Int> = [400, 401, 404, 405, 406, 409, 410, 411, 412, 413, 414, 415, 416, 422, 429, 431, 460, 463]

    static func cause(of status: Int, answeredBy layer: Layer) -> Layer {
        clientFaults.contains(status) ? .client : layer
    }
}

/// The exception a traceback or runtime error record ends with: `ZeroDivisionError: division by
/// zero`, not "Exception on /path [GET]" or "Traceback (most recent call last):".
enum ExceptionText {
    /// A Python exception line: `pkg.mod.SomeError: message`, `KeyError: 'x'`, `SystemExit`.
    static let exceptionLine = #"^[A-Za-z_][A-Za-z0-9_.]*(?:Error|Exception|Exit|Interrupt|Timeout|Warning)\b(?::\s.*)?$"#
    static let syslogPrefix = #"^(?:[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d|\d{4}-\d\d-\d\dT\S+) \S+ [^\s:\[]+(?:\[\d+\])?: "#
    static func summary(_ text: String) -> String? {
        // A traceback read from syslog keeps each line's prefix (`Jan 14 16:02:01 web-1 gunicorn[40214]: `).
        let lines = text.split(whereSeparator: { $0 == "\n" || $0 == "\r" }).map { line in
            String(line).replacingOccurrences(of: syslogPrefix, with: "", options: .regularExpression)
        }
        let isFrame: (String) -> Bool = { l in
            l.first == " " || l.first == "\t" || l.hasPrefix("Traceback") || l.hasPrefix("During handling") || l.hasPrefix("The above exception")
        }
        if lines.count > 1, let last = lines.last(where: { !isFrame($0) && !$0.trimmingCharacters(in: .whitespaces).isEmpty }),
           lines.contains(where: { $0.hasPrefix("Traceback") }) {
            // The exception line, not what some libraries print after it (psycopg's `DETAIL:`,
            // SQLAlchemy's "(Background on this error at: …)").
            let afterTraceback = lines.drop { !$0.hasPrefix("Traceback") }
            if let named = afterTraceback.last(where: { !isFrame($0) && $0.range(of: exceptionLine, options: .regularExpression) != nil }) {
                return named.trimmingCharacters(in: .whitespaces)
            }
            return last.trimmingCharacters(in: .whitespaces)
        }
        // A JSON log record holding its traceback in a field (structlog's `exception`,
        // python-json-logger's `exc_info`): the field's text, its escaped newlines restored.
        if text.first == "{", lines.count == 1, text.contains("Traceback"),
           let object = (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any] {
            for key in ["exception", "exc_info", "stack_trace", "traceback"] {
                if let field = object[key] as? String, field.contains("\n"), let named = summary(field) { return named }
            }
        }
        // A one-line runtime error: `[ERROR] KeyError: 'id'`, or Node's `Invoke Error {"errorType":…}`.
        if let type = jsonField("errorType", in: text) {
            return jsonField("errorMessage", in: text).map { "\(type): \($0)" } ?? type
        }
        for l in lines {
            let t = l.trimmingCharacters(in: .whitespaces)
            if let r = t.range(of: #"^(?:\[ERROR\]\s*)?"# + exceptionLine.dropFirst(), options: .regularExpression) {
                return String(t[r]).replacingOccurrences(of: #"^\[ERROR\]\s*"#, with: "", options: .regularExpression)
            }
        }
        return nil
    }

    /// A string field of an embedded JSON object, unescaped only for quotes.
    static func jsonField(_ name: String, in text: String) -> String? {
        guard let r = text.range(of: "\"\(name)\":") else { return nil }
        let rest = text[r.upperBound...].drop { $0 == " " }
        guard rest.first == "\"" else { return nil }
        var out = ""
        var escaped = false
        for ch in rest.dropFirst() {
            if escaped { out.append(ch); escaped = false; continue }
            if ch == "\\" { escaped = true; continue }
            if ch == "\"" { return out }
            out.append(ch)
        }
        return nil
    }
}
