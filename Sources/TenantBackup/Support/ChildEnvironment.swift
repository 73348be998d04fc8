import Foundation
import Subprocess

/// The environment handed to child processes (`pg_dump`, `psql`): ours, minus systemd's notification
/// and watchdog variables, so a child can never speak to systemd in our name.
public enum ChildEnvironment {
    /// Variables removed before a child starts.
    public static let removed: Set<String> = ["NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES"]

    /// `base` without the ``removed`` variables, plus `overrides`.
    public static func variables(_ base: [String: String] = ProcessInfo.processInfo.environment, overrides: [String: String] = [:]) -> [String: String] {
        var result = base.filter { !removed.contains($0.key) }
        for (key, value) in overrides { result[key] = value }
        return result
    }

    /// The same as a swift-subprocess environment.
    public static func subprocess(_ base: [String: String] = ProcessInfo.processInfo.environment, overrides: [String: String] = [:]) -> Subprocess.Environment {
        .custom(variables(base, overrides: overrides).map { Array("\($0.key)=\($0.value)\0".utf8) })
    }
}
