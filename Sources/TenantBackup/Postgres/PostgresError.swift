/// A PostgreSQL failure, with the server or libpq message and what to check.
public enum PostgresError: Error, Equatable, CustomStringConvertible {
    /// The connection could not be made. `target` describes where (never with a password).
    case connectionFailed(target: String, message: String)
    /// A statement failed on the server.
    case queryFailed(purpose: String, sqlState: String?, message: String)

    public var description: String {
        switch self {
        case .connectionFailed(let target, let message):
            return "cannot connect to PostgreSQL (\(target)): \(message)"
        case .queryFailed(let purpose, let sqlState, let message):
            return "PostgreSQL query failed (\(purpose))\(sqlState.map { " [\($0)]" } ?? ""): \(message)"
        }
    }
}
