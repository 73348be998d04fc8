import Foundation
import Logging
import TenantBackup

/// Collects every line a logger writes (through the real logfmt handler), so a test can assert what was
/// logged, or that a secret never was.
public final class CapturedLogs: @unchecked Sendable {
    private let lock = NSLock()
    private var captured: [String] = []

    public init() {}

    /// A logger whose lines land here, at `level` and above.
    public func logger(label: String = "test", level: Logger.Level = .trace) -> Logger {
        Logger(label: label) { label in
            LogfmtLogHandler(label: label, level: level) { [weak self] line in self?.append(line) }
        }
    }

    private func append(_ line: String) {
        lock.lock()
        captured.append(line)
        lock.unlock()
    }

    public var lines: [String] {
        lock.lock()
        defer { lock.unlock() }
        return captured
    }

    public var text: String { lines.joined() }
}
