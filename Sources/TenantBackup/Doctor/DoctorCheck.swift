/// One line of `tenant-backup doctor`: what was checked, how it went, and how to fix it.
public struct DoctorCheck: Sendable, Equatable {
    public enum Outcome: String, Sendable, Equatable {
        case passed, failed, skipped
        /// The store lacks a capability the tool works around (the detail says how): not a failure.
        case notSupported = "not supported"
    }

    /// A short name: "configuration", "PostgreSQL", "pg_dump", "tenants", "S3 bucket", "S3 write/read/delete".
    public let name: String
    public let outcome: Outcome
    /// What was found, or why it failed (never with a secret).
    public let detail: String
    /// What to do about a failure.
    public let hint: String?

    public init(name: String, outcome: Outcome, detail: String, hint: String? = nil) {
        self.name = name
        self.outcome = outcome
        self.detail = detail
        self.hint = hint
    }
}

/// Every check `doctor` ran, in order.
public struct DoctorReport: Sendable, Equatable {
    public var checks: [DoctorCheck] = []

    /// True only when every check passed or found a capability missing that the tool works around (a
    /// skipped check is not a pass).
    public var allPassed: Bool { !checks.isEmpty && checks.allSatisfy { $0.outcome == .passed || $0.outcome == .notSupported } }

    public func check(named name: String) -> DoctorCheck? { checks.first { $0.name == name } }
}
