import Foundation

/// The wall clock the scheduler reads and sleeps on. Cron slots are wall-clock instants (`Date`), so the
/// scheduler cannot use a monotonic `Clock`; tests inject a virtual one that moves only when slept on.
public struct WallClock: Sendable {
    public let now: @Sendable () -> Date
    public let sleep: @Sendable (Duration) async throws -> Void

    public init(now: @escaping @Sendable () -> Date, sleep: @escaping @Sendable (Duration) async throws -> Void) {
        self.now = now
        self.sleep = sleep
    }

    /// The system's clock and `Task.sleep`.
    public static let system = WallClock(now: { Date() }, sleep: { try await Task.sleep(for: $0) })
}
