/// The tool's version, shown by `--version` and in every report's appendix.
public let version = "0.1.0"
