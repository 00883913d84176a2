import Foundation

/// `--speed Nx`: paces alerts by event time, N event-seconds per wall second (`max`: no pacing).
public struct Pacer {
    public let speed: Double?
    private var origin: (event: Int64, wall: Double)?
    private let clock: () -> Double
    private let sleep: (Double) -> Void

    /// `60x`, `60`, `0.5x` or `max`; nil for anything else.
    public init?(_ text: String, clock: @escaping () -> Double = { Date().timeIntervalSince1970 },
                 sleep: @escaping (Double) -> Void = { Thread.sleep(forTimeInterval: $0) }) {
        let t = text.lowercased().trimmingCharacters(in: .whitespaces)
        if t == "max" { speed = nil } else {
            guard let v = Double(t.hasSuffix("x") ? String(t.dropLast()) : t), v > 0, v.isFinite else { return nil }
            speed = v
        }
        self.clock = clock
        self.sleep = sleep
    }

    /// Waits until the wall clock reaches the moment `eventTime` (µs) maps to.
    public mutating func wait(until eventTime: Int64) {
        guard let speed else { return }
        let now = clock()
        guard let origin else { origin = (eventTime, now); return }
        let due = origin.wall + Double(eventTime - origin.event) / 1e6 / speed
        // Sub-millisecond waits are left to accumulate: sleeping per request would cost more than it paces.
        if due - now >= 0.001 { sleep(due - now) }
    }
}
