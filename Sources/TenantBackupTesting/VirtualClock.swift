import Foundation
import Synchronization
import TenantBackup

/// A wall clock that moves only when slept on, for unit tests of the scheduler: three days of one-second
/// ticks pass in a moment. Every sleep is recorded, and `onSleep` sees the time after it.
public final class VirtualClock: Sendable {
    private struct State {
        var now: Date
        var slept: Duration = .zero
        var longest: Duration = .zero
        var sleeps = 0
    }

    private let state: Mutex<State>
    private let onSleep: @Sendable (Date) -> Void

    public init(at start: Date, onSleep: @escaping @Sendable (Date) -> Void = { _ in }) {
        state = Mutex(State(now: start))
        self.onSleep = onSleep
    }

    public var now: Date { state.withLock { $0.now } }

    /// The total time slept on this clock.
    public var slept: Duration { state.withLock { $0.slept } }

    /// The longest single sleep, and how many there were.
    public var longestSleep: Duration { state.withLock { $0.longest } }
    public var sleeps: Int { state.withLock { $0.sleeps } }

    public var wallClock: WallClock {
        WallClock(
            now: { [self] in now },
            sleep: { [self] duration in
                try Task.checkCancellation()
                let components = duration.components
                let now = state.withLock { state -> Date in
                    state.now = state.now.addingTimeInterval(Double(components.seconds) + Double(components.attoseconds) / 1e18)
                    state.slept += duration
                    state.longest = max(state.longest, duration)
                    state.sleeps += 1
                    return state.now
                }
                onSleep(now)
                await Task.yield()
            })
    }
}
