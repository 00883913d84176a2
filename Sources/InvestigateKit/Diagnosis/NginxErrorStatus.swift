import Foundation

/// The status nginx sends for a request its error log describes. Where nginx's access log is
/// missing (not given, rotated away, or a host that logs errors only), the error-log line is the
/// one record of the request, and nginx's code decides the status from the failure, not from
/// configuration, for most of them: an upstream timeout is always a 504 (`ngx_http_upstream.c`),
/// a refused connect a 502. Where a directive chooses the code (`limit_req_status`,
/// `limit_conn_status`, default 503) the default comes first and the usual alternative second.
/// An `error_page` can still remap any of them: the answer says the status is inferred.
public enum NginxErrorStatus {
    /// The statuses nginx sends for this error-log message, the default first; empty when the line
    /// names no request failure these rules know (a reload notice, an unknown message).
    public static func statuses(for message: String) -> [Int] {
        func has(_ s: String) -> Bool { message.contains(s) }
        // Upstream failures: ngx_http_upstream_next maps a timeout to 504, every other failure to 502.
        if has("upstream timed out") { return [504] }
        if has("connect() failed") || has("no live upstreams") || has("upstream prematurely closed")
            || (has("connect() to ") && has(" failed")) || has("upstream sent invalid") || has("upstream sent too big header")
            || has("upstream sent no valid") || ((has("reset by peer") || has("Broken pipe")) && (has("from upstream") || has("to upstream"))) {
            return [502]
        }
        if has("limiting requests") || has("limiting connections") { return [503, 429] }
        if has("client intended to send too large body") { return [413] }
        if has("client sent too long URI") { return [414] }
        if has("client sent invalid") || has("client sent too large request") || has("client sent plain HTTP request") { return [400] }
        if has("access forbidden by rule") || (has("directory index of") && has("is forbidden")) { return [403] }
        if has("open()") && has("(13: Permission denied)") { return [403] }
        if has("open()") && has("(2: No such file or directory)") { return [404] }
        if has("was not found in \"") || has("password mismatch") || has("no user/password was provided") { return [401] }
        if has("rewrite or internal redirection cycle") { return [500] }
        return []
    }

    /// The status this line stands for under a status filter: the first of its statuses the filter
    /// takes, else none (the line is another kind of failure).
    public static func status(for message: String, matching filter: StatusFilter?) -> Int? {
        let all = statuses(for: message)
        guard let filter else { return all.first }
        return all.first { filter.matches($0) }
    }
}
