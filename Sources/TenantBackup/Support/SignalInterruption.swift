import Logging
import UnixSignals

/// The operator stopped a command with SIGTERM or SIGINT; the work in flight was cancelled cleanly.
public struct Interrupted: Error, CustomStringConvertible {
    public let signal: UnixSignal

    /// The shell's convention: 128 + the signal's number (143 for SIGTERM, 130 for SIGINT, 129 for SIGHUP).
    public var exitCode: Int32 { 128 + signal.rawValue }

    public var description: String {
        "stopped by \(signal): pg_dump was stopped and its upload aborted; nothing half-written was left behind"
    }
}

/// Runs a one-shot command's work so that SIGTERM, SIGINT and SIGHUP stop it the way the daemon stops: the work is
/// cancelled (pg_dump is stopped, multipart uploads are aborted), and only then does the command end.
///
/// Without this, the default action of either signal ends the process at once, with no log line and with its
/// multipart upload left behind.
public enum SignalInterruption {
    /// Runs `body`. On SIGTERM, SIGINT or SIGHUP, logs it, cancels `body`, waits for it to wind down and throws
    /// ``Interrupted``; otherwise returns or rethrows what `body` did.
    public static func run<T: Sendable>(
        logger: Logger, stopping: String = "stopping pg_dump and aborting uploads in flight", _ body: @escaping @Sendable () async throws -> T
    ) async throws -> T {
        // SIGHUP too: a dropped SSH session must not leave pg_dump running and an upload open.
        let signals = await UnixSignalsSequence(trapping: .sigterm, .sigint, .sighup)
        let (finished, received) = await withWatcher { () async -> Result<T, any Error> in
            do {
                return .success(try await body())
            } catch {
                return .failure(error)
            }
        } until: {
            for await signal in signals { return signal }
            return nil
        } onEvent: { signal in
            logger.warning("received \(signal): \(stopping)", metadata: ["signal": "\(signal)"])
        }
        if let received { throw Interrupted(signal: received) }
        return try finished.get()
    }
}
