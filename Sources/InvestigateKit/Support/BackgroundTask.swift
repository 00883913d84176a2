import Foundation

/// One computation run on its own thread while the caller does something else; `wait()` returns
/// its value. For pure work only (no database handle may cross to it): correlation matches one
/// slab here while the calling thread, which owns the SQLite connection, reads and writes others.
final class BackgroundTask<Value> {
    private let done = DispatchSemaphore(value: 0)
    private var value: Value?

    init(_ work: @escaping () -> Value) {
        let thread = Thread { [self] in
            value = work()
            done.signal()
        }
        thread.stackSize = 8 << 20
        thread.start()
    }

    /// Blocks until the work has finished, then returns its value (call once).
    func wait() -> Value {
        done.wait()
        return value!
    }
}
