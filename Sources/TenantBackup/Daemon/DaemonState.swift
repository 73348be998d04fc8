import Foundation
import ServiceLifecycle

/// What the daemon's services share: the running settings (swapped as a whole by a reload), the
/// scheduler's heartbeat (which the watchdog checks), and the status line systemd shows.
///
/// A lock-protected class rather than an actor so that synchronous callbacks (a tenant starting) can
/// update it in order.
public final class DaemonState: @unchecked Sendable {
    private let lock = NSLock()
    private var _context: BackupContext
    private var _generation = 0
    private var _heartbeat = ContinuousClock.now
    private var _activity = "starting"
    private var _lastCycle: String?
    private var _reloadProblem: String?
    private var _stopRequested = false
    private var _restartNeeded: String?
    public let notifier: SystemdNotifier
    /// The settings the daemon started with: what its listening sockets were opened from.
    public let started: Settings

    public init(context: BackupContext, notifier: SystemdNotifier) {
        _context = context
        started = context.settings
        self.notifier = notifier
    }

    /// Settings a reload took in but that apply only at the next start (listen addresses, logging); `nil`
    /// when the running ones match what the daemon started with. Shown in the status line.
    public func restartNeeded(_ reason: String?) {
        locked { _restartNeeded = reason }
    }

    private func locked<T>(_ body: () -> T) -> T {
        lock.lock()
        defer { lock.unlock() }
        return body()
    }

    /// The running settings and their generation (incremented by every successful reload).
    public var current: (settings: Settings, generation: Int) { locked { (_context.settings, _generation) } }

    /// The running settings' context and its generation: built once per generation, shared by the scheduler
    /// and the monitors.
    public var currentContext: (context: BackupContext, generation: Int) { locked { (_context, _generation) } }

    /// Replaces the running settings as a whole (after they were validated as a whole), with a new context.
    public func replace(settings: Settings) {
        locked {
            _context = BackupContext(settings: settings, environment: _context.environment, logger: _context.logger, httpClient: _context.httpClient)
            _generation += 1
            _reloadProblem = nil
        }
    }

    /// A reload failed: the running settings stay, and the status line says so until the next good reload.
    public func reloadFailed(_ problem: String) {
        locked { _reloadProblem = problem }
    }

    /// Sleeps on `clock` in ticks of at most a second (calling `tick` at each) until `date`. Returns `false` on
    /// shutdown, `true` when the time came or the settings were reloaded (the caller plans again).
    func sleep(until date: Date, unlessReloadedFrom generation: Int, clock: WallClock, tick: () -> Void = {}) async -> Bool {
        while clock.now() < date {
            tick()
            if Task.isShuttingDownGracefully || Task.isCancelled { return false }
            if current.generation != generation { return true }
            let remaining = date.timeIntervalSince(clock.now())
            try? await clock.sleep(.milliseconds(Int64(min(max(remaining, 0.01), 1) * 1000)))
        }
        return !(Task.isShuttingDownGracefully || Task.isCancelled)
    }

    /// The scheduler is alive.
    public func beat() { locked { _heartbeat = .now } }

    /// Time since the scheduler last proved it was alive.
    public var heartbeatAge: Duration { locked { .now - _heartbeat } }

    private var _stoppingSent = false

    /// Sends `STOPPING=1` once, whoever notices the stop first.
    public func notifyStopping() {
        let send = locked { () -> Bool in
            defer { _stoppingSent = true }
            return !_stoppingSent
        }
        if send { notifier.stopping() }
    }

    public var stopRequested: Bool { locked { _stopRequested } }
    public func requestStop() { locked { _stopRequested = true } }

    /// Sets what the daemon is doing ("idle, next cycle 02:00 CET" / "backing up mindcare (12/41)") and sends
    /// the status line to systemd.
    public func setActivity(_ activity: String) {
        locked { _activity = activity }
        notifier.status(statusLine)
    }

    /// Records the summary of the last cycle ("41/41 ok").
    public func setLastCycle(_ summary: String) {
        locked { _lastCycle = summary }
    }

    /// The line systemd shows in `systemctl status`.
    public var statusLine: String {
        locked {
            var line = _activity
            if let last = _lastCycle { line += ", last: \(last)" }
            if let problem = _reloadProblem { line += "; reload failed, running with the previous configuration: \(problem)" }
            if let restart = _restartNeeded { line += "; restart needed: \(restart)" }
            return line
        }
    }
}
