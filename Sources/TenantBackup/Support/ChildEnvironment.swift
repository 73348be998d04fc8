import Foundation
import Subprocess

/// The environment of a child process (`pg_dump`, `psql`): only what it needs — libpq's `PG*` variables,
/// Kerberos' for GSSAPI, the locale, `PATH`, `HOME`, `TZ` and `TMPDIR`.
///
/// Never the rest: the AWS secret key and session token, `DATABASE_URL` (the child gets its `PG*` form),
/// and systemd's `NOTIFY_SOCKET`/`WATCHDOG_*` (a child that answered them would speak for the daemon).
public enum ChildEnvironment {
    /// Passed on by name.
    public static let kept: Set<String> = ["PATH", "HOME", "TZ", "TMPDIR", "LANG", "LANGUAGE", "KRB5CCNAME", "KRB5_CONFIG", "KRB5_KTNAME"]
    /// Passed on by prefix: libpq's variables and the locale's categories.
    public static let keptPrefixes = ["PG", "LC_"]

    /// Whether a variable of the parent reaches a child.
    public static func keeps(_ name: String) -> Bool {
        kept.contains(name) || keptPrefixes.contains { name.hasPrefix($0) }
    }

    /// The variables of `base` a child may see, plus `overrides`.
    public static func variables(_ base: [String: String] = ProcessInfo.processInfo.environment, overrides: [String: String] = [:]) -> [String: String] {
        var result = base.filter { keeps($0.key) }
        for (key, value) in overrides { result[key] = value }
        return result
    }

    /// The same as a swift-subprocess environment.
    public static func subprocess(_ base: [String: String] = ProcessInfo.processInfo.environment, overrides: [String: String] = [:]) -> Subprocess.Environment {
        .custom(variables(base, overrides: overrides).map { Array("\($0.key)=\($0.value)\0".utf8) })
    }
}
