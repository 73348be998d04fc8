import Foundation

/// A connection kept open for as long as what it holds lasts — an advisory lock, an exported snapshot —
/// used by one call at a time, and handed over exactly once to be closed.
final class HeldConnection: @unchecked Sendable {
    private let lock = NSLock()
    private var connection: PostgresConnection?

    init(_ connection: PostgresConnection) {
        self.connection = connection
    }

    /// Runs `body` on the connection while no other call uses it; `nil` once it has been handed over.
    func with<T>(_ body: (PostgresConnection) throws -> T) throws -> T? {
        lock.lock()
        defer { lock.unlock() }
        guard let connection else { return nil }
        return try body(connection)
    }

    /// Hands the connection over exactly once (it closes when the caller drops it).
    func take() -> PostgresConnection? {
        lock.lock()
        defer { lock.unlock() }
        let taken = connection
        connection = nil
        return taken
    }
}
