import Logging
import UnixSignals

/// The operator stopped a command with SIGTERM or SIGINT; the work in flight was cancelled cleanly.
public struct Interrupted: Error, CustomStringConvertible {
    public let signal: UnixSignal

    /// The shell's convention: 128 + the signal's number (143 for SIGTERM, 130 for SIGINT).
    public var exitCode: Int32 { 128 + signal.rawValue }

    public var description: String {
        "stopped by \(signal): pg_dump was stopped and its upload aborted; nothing half-written was left behind"
    }
}

/// Runs a one-shot command's work so that SIGTERM and SIGINT stop it the way the daemon stops: the work is
/// cancelled (pg_dump is stopped, multipart uploads are aborted), and only then does the command end.
///
/// Without this, the default action of either signal ends the process at once, with no log line and with its
/// multipart upload left behind.
public enum SignalInterruption {
    private enum Event<T: Sendable>: Sendable {
        case finished(Result<T, any Error>)
        case signal(UnixSignal)
        case watchEnded
    }

    /// Runs `body`. On SIGTERM or SIGINT, logs it, cancels `body`, waits for it to wind down and throws
    /// ``Interrupted``; otherwise returns or rethrows what `body` did.
    public static func run<T: Sendable>(logger: Logger, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
        let signals = await UnixSignalsSequence(trapping: .sigterm, .sigint)
        let (received, finished) = await withTaskGroup(of: Event<T>.self) { group -> (UnixSignal?, Result<T, any Error>?) in
            group.addTask {
                do {
                    return .finished(.success(try await body()))
                } catch {
                    return .finished(.failure(error))
                }
            }
            group.addTask {
                for await signal in signals { return .signal(signal) }
                return .watchEnded
            }
            var received: UnixSignal?
            var finished: Result<T, any Error>?
            for await event in group {
                switch event {
                case .finished(let result):
                    finished = result
                    group.cancelAll()
                case .signal(let signal):
                    guard received == nil else { continue }
                    received = signal
                    logger.warning("received \(signal): stopping pg_dump and aborting uploads in flight", metadata: ["signal": "\(signal)"])
                    group.cancelAll()
                case .watchEnded:
                    break
                }
            }
            return (received, finished)
        }
        if let received { throw Interrupted(signal: received) }
        guard let finished else { throw CancellationError() }
        return try finished.get()
    }
}
