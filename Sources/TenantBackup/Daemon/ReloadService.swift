import Logging
import ServiceLifecycle
import UnixSignals

/// Owns SIGHUP: each signal reloads the configuration as a whole — file, environment and credentials —
/// validates it, and only then swaps it in, never key by key. An invalid file leaves the running
/// settings untouched; the reason is logged and shown in systemd's status line.
///
/// systemd is told `RELOADING=1` (with `MONOTONIC_USEC=`) before and `READY=1` after, whatever the outcome.
public struct ReloadService: Service {
    let state: DaemonState
    let signals: UnixSignalsSequence
    let load: @Sendable () throws(ConfigError) -> Settings
    let logger: Logger

    /// - Parameter signals: a sequence trapping SIGHUP, created before the daemon reports ready so that an
    ///   early `systemctl reload` cannot kill it (SIGHUP's default action).
    public init(state: DaemonState, signals: UnixSignalsSequence, logger: Logger, load: @escaping @Sendable () throws(ConfigError) -> Settings) {
        self.state = state
        self.signals = signals
        self.load = load
        self.logger = logger
    }

    public func run() async throws {
        for await _ in signals.cancelOnGracefulShutdown() {
            reload()
        }
    }

    /// One reload, as on SIGHUP.
    public func reload() {
        state.notifier.reloading()
        logger.notice("reloading the configuration (SIGHUP)")
        let old = state.current.settings
        do throws(ConfigError) {
            let new = try load()
            state.replace(settings: new)
            BackupMetrics.recordReload(succeeded: true)
            if new.metrics.listen != old.metrics.listen || new.logging != old.logging {
                logger.warning("metrics.listen and logging settings take effect at the next restart; the rest is in effect now")
            }
            logger.notice("configuration reloaded", metadata: ["schedule": "\(new.daemon.schedule)"])
        } catch {
            state.reloadFailed("\(error)")
            BackupMetrics.recordReload(succeeded: false)
            logger.error("configuration reload failed; still running with the previous configuration", metadata: ["error": "\(error)"])
        }
        state.notifier.ready(status: state.statusLine)
    }
}
