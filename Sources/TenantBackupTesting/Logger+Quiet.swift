import Logging

extension Logger {
    /// A logger that drops everything, for tests that do not read the log.
    public static let quiet = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })
}
