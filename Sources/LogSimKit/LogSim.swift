/// The multi-layer traffic simulator (see Sources/logsim). Being built in issue 5.
public enum LogSim {
    public static let name = "logsim"
}
