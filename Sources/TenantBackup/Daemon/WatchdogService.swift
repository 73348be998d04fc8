import Logging
import ServiceLifecycle

/// Pings systemd's watchdog (`WATCHDOG=1`) at half of `WATCHDOG_USEC`, but only while the scheduler proves
/// it is alive: a scheduler stuck for longer than twice the interval stops the pings, and systemd restarts
/// the daemon. Without `WATCHDOG_USEC` it does nothing.
public struct WatchdogService: Service {
    let state: DaemonState
    let logger: Logger

    public init(state: DaemonState, logger: Logger) {
        self.state = state
        self.logger = logger
    }

    public func run() async throws {
        guard let interval = state.notifier.watchdogInterval else {
            try? await gracefulShutdown()
            return
        }
        let tolerance = max(interval * 2, .seconds(5))
        // Keeps pinging through the scheduler's own graceful stop; it is the last service to be stopped.
        await cancelWhenGracefulShutdown {
            var warned = false
            while !Task.isCancelled {
                if state.heartbeatAge <= tolerance {
                    state.notifier.watchdog()
                    warned = false
                } else if !warned {
                    warned = true
                    logger.critical("the scheduler has not reported for \(state.heartbeatAge); withholding the watchdog ping so systemd restarts the daemon")
                }
                try? await Task.sleep(for: interval)
            }
        }
    }
}
