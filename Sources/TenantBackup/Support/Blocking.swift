import Foundation

/// Runs blocking work (libpq calls) on a thread of its own, so a slow query or a lock wait never holds one
/// of the few threads Swift concurrency's cooperative pool has (two on a two-core machine).
public enum Blocking {
    public static func run<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            let thread = Thread {
                do {
                    continuation.resume(returning: try body())
                } catch {
                    continuation.resume(throwing: error)
                }
            }
            thread.name = "tenant-backup-blocking"
            thread.start()
        }
    }
}
