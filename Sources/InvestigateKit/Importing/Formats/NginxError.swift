import Foundation

/// nginx error log. PLACEHOLDER: recognises nothing until the nginx work (issue 2) lands.
public struct NginxErrorImporter: Importer {
    public init() {}
    public let id = "nginx-error"
    public let title = "nginx error log"
    public let layer = Layer.nginx
    public let documentation = "https://nginx.org/en/docs/ngx_core_module.html#error_log"
    public let ingestOrder = 20
    public let samples: [FormatSample] = []

    public func recognize(_ lines: [String], fileName: String) -> Double { 0 }

    public func makeParser(_ context: ParseContext) throws -> any RecordParser {
        throw ImporterError("nginx-error is not available yet")
    }
}
