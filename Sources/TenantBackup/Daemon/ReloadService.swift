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

    /// The settings that differ from those the daemon started with and apply only at a restart: the sockets
    /// it listens on, and the logging backend.
    static func restartOnly(started: Settings, new: Settings) -> [String] {
        SettingDefinition.restartNeeded(started: started, new: new)
    }

    /// One reload, as on SIGHUP.
    public func reload() {
        state.notifier.reloading()
        logger.notice("reloading the configuration (SIGHUP)")
        do throws(ConfigError) {
            let new = try load()
            state.replace(settings: new)
            BackupMetrics.recordReload(succeeded: true)
            let pending = Self.restartOnly(started: state.started, new: new)
            state.restartNeeded(pending.isEmpty ? nil : pending.joined(separator: ", ") + " changed")
            if !pending.isEmpty {
                logger.warning(
                    "some settings take effect only at the next restart; the rest is in effect now",
                    metadata: ["restart_needed": "\(pending.joined(separator: ","))"])
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
