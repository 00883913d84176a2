/// Who is at fault when a layer answers a client error on its own: the request itself (a missing
/// resource, a malformed or unauthenticated request, one too large or too fast), or the layer's own
/// policy (403: it decided to refuse this client).
enum StatusMeaning {
    static let clientFaults: Set<Int> = [400, 401, 404, 405, 406, 409, 410, 411, 412, 413, 414, 415, 416, 422, 429, 431, 460, 463]

    static func cause(of status: Int, answeredBy layer: Layer) -> Layer {
        clientFaults.contains(status) ? .client : layer
    }
}
