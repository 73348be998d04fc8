import Foundation
import Logging
import NIOCore
import Subprocess
import Synchronization
import SystemPackage

/// One `pg_dump` run whose standard output is handed, chunk by chunk, to a consumer (the compression and
/// upload pipeline) while standard error is drained concurrently into a bounded tail.
///
/// The run fails — and the consumer must then discard what it received — when pg_dump exits non-zero, is
/// killed, writes nothing, stays silent longer than the no-output timeout (blocked on a lock), or runs
/// longer than the whole-dump timeout. A stuck or cancelled pg_dump is stopped with SIGTERM, then SIGKILL.
public struct PgDumpProcess: Sendable {
    public let executable: String
    public let arguments: [String]
    /// The child's whole environment (already without systemd's variables).
    public let environment: [String: String]
    public let noOutputTimeout: Duration
    public let totalTimeout: Duration
    /// How a pg_dump is stopped (timeout, failed consumer, cancellation): SIGTERM, then SIGKILL after 5 s.
    static let stopSequence: [TeardownStep] = [.send(signal: .terminate, allowedDurationToNextStep: .seconds(5))]
    /// How much of stderr is kept for the error message.
    public static let stderrLimit = 16 << 10

    public init(executable: String, arguments: [String], environment: [String: String], noOutputTimeout: Duration, totalTimeout: Duration) {
        self.executable = executable
        self.arguments = arguments
        self.environment = ChildEnvironment.variables(environment)
        self.noOutputTimeout = noOutputTimeout
        self.totalTimeout = totalTimeout
    }

    /// What a successful run produced.
    public struct Outcome: Sendable, Equatable {
        public let bytes: Int64
        /// The end of what pg_dump wrote to stderr (warnings).
        public let stderr: String
    }

    /// Runs pg_dump; `consume` sees every chunk of stdout in order. Throws ``PgDumpFailure`` when the dump
    /// is not a complete, successful dump, including when `consume` throws.
    public func run(consume: (ByteBuffer) async throws -> Void) async throws(PgDumpFailure) -> Outcome {
        let watch = Watch(started: ContinuousClock.now)
        var options = PlatformOptions()
        options.teardownSequence = Self.stopSequence
        let childEnvironment = Subprocess.Environment.custom(environment.map { Array("\($0.key)=\($0.value)\0".utf8) })
        let result: ExecutionResult<Int64, SequenceOutput, SequenceOutput>
        do {
            result = try await Subprocess.run(
                .path(FilePath(executable)),
                arguments: Arguments(arguments),
                environment: childEnvironment,
                platformOptions: options,
                input: .none,
                output: .sequence,
                error: .sequence
            ) { execution in
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask {
                        var tail = [UInt8]()
                        for try await chunk in execution.standardError {
                            chunk.withUnsafeBytes { tail.append(contentsOf: $0) }
                            if tail.count > 2 * Self.stderrLimit { tail.removeFirst(tail.count - Self.stderrLimit) }
                        }
                        watch.stderr.withLock { $0 = String(decoding: tail.suffix(Self.stderrLimit), as: UTF8.self) }
                    }
                    let watchdog = Task {
                        let tick = min(Duration.milliseconds(250), noOutputTimeout / 4)
                        while !Task.isCancelled {
                            try? await Task.sleep(for: tick)
                            if Task.isCancelled { return }
                            if let reason = watch.expired(noOutput: noOutputTimeout, total: totalTimeout) {
                                watch.reason.withLock { $0 = reason }
                                await execution.teardown(using: Self.stopSequence)
                                return
                            }
                        }
                    }
                    defer { watchdog.cancel() }
                    var bytes: Int64 = 0
                    do {
                        for try await chunk in execution.standardOutput {
                            watch.touch()
                            let buffer = chunk.withUnsafeBytes { ByteBuffer(bytes: $0) }
                            bytes += Int64(buffer.readableBytes)
                            try await consume(buffer)
                        }
                    } catch {
                        // The consumer (or the pipe) failed: stop pg_dump, or it blocks on a full pipe forever.
                        watch.reason.withLock { $0 = $0 ?? .consumerFailed("\(error)") }
                        await execution.teardown(using: Self.stopSequence)
                        throw error
                    }
                    if Task.isCancelled {
                        watch.reason.withLock { $0 = $0 ?? .cancelled }
                        await execution.teardown(using: Self.stopSequence)
                    }
                    try await group.waitForAll()
                    watch.bytes.withLock { $0 = bytes }
                }
                return watch.bytes.withLock { $0 }
            }
        } catch {
            let stderr = watch.stderr.withLock { $0 }
            if let reason = watch.reason.withLock({ $0 }) { throw PgDumpFailure(reason: reason, stderr: stderr) }
            if error is CancellationError || Task.isCancelled { throw PgDumpFailure(reason: .cancelled, stderr: stderr) }
            throw PgDumpFailure(reason: .launchFailed("\(error)"), stderr: stderr)
        }
        let stderr = watch.stderr.withLock { $0 }
        if let reason = watch.reason.withLock({ $0 }) { throw PgDumpFailure(reason: reason, stderr: stderr) }
        switch result.terminationStatus {
        case .exited(0):
            break
        case .exited(let code):
            throw PgDumpFailure(reason: .exited(Int(code)), stderr: stderr)
        case .signaled(let signal):
            throw PgDumpFailure(reason: .killed(Int(signal)), stderr: stderr)
        }
        if Task.isCancelled { throw PgDumpFailure(reason: .cancelled, stderr: stderr) }
        guard result.closureResult > 0 else { throw PgDumpFailure(reason: .emptyOutput, stderr: stderr) }
        return Outcome(bytes: result.closureResult, stderr: stderr)
    }

    /// Shared between the output loop, the stderr drain and the watchdog.
    final class Watch: Sendable {
        let started: ContinuousClock.Instant
        let lastOutput: Mutex<ContinuousClock.Instant>
        let reason = Mutex<PgDumpFailure.Reason?>(nil)
        let stderr = Mutex<String>("")
        let bytes = Mutex<Int64>(0)

        init(started: ContinuousClock.Instant) {
            self.started = started
            self.lastOutput = Mutex(started)
        }

        func touch() { lastOutput.withLock { $0 = .now } }

        func expired(noOutput: Duration, total: Duration) -> PgDumpFailure.Reason? {
            let now = ContinuousClock.now
            if now - started > total { return .totalTimeout(total) }
            if now - lastOutput.withLock({ $0 }) > noOutput { return .noOutputTimeout(noOutput) }
            return nil
        }
    }
}

/// Why a dump is not a good dump. Its description says what happened and includes pg_dump's own message.
public struct PgDumpFailure: Error, Equatable, CustomStringConvertible {
    public enum Reason: Sendable, Equatable {
        case exited(Int)
        case killed(Int)
        case emptyOutput
        case noOutputTimeout(Duration)
        case totalTimeout(Duration)
        case consumerFailed(String)
        case cancelled
        case launchFailed(String)
    }

    public let reason: Reason
    public let stderr: String

    /// Whether tenant-backup itself stopped pg_dump (a timeout, a failed upload, a cancellation).
    var stoppedByUs: Bool {
        switch reason {
        case .noOutputTimeout, .totalTimeout, .consumerFailed, .cancelled: true
        case .exited, .killed, .emptyOutput, .launchFailed: false
        }
    }

    public var description: String {
        var text: String
        switch reason {
        case .exited(let code): text = "pg_dump exited with status \(code)"
        case .killed(let signal): text = "pg_dump was killed by signal \(signal)"
        case .emptyOutput: text = "pg_dump exited 0 but wrote nothing"
        case .noOutputTimeout(let timeout):
            text = "pg_dump wrote nothing for \(timeout.components.seconds) s (backup.no_output_timeout) and was stopped; is it waiting for a lock?"
        case .totalTimeout(let timeout):
            text = "pg_dump ran longer than \(timeout.components.seconds) s (backup.dump_timeout) and was stopped"
        case .consumerFailed(let message): text = "the backup stream failed and pg_dump was stopped: \(message)"
        case .cancelled: text = "the dump was cancelled and pg_dump was stopped"
        case .launchFailed(let message): text = "pg_dump could not be started: \(message)"
        }
        var lines = stderr.split(whereSeparator: \.isNewline)
        if stoppedByUs {
            // pg_dump's answer to the SIGTERM we sent: true, and misleading ("by user") next to our reason.
            lines.removeAll { $0.contains("terminated by user") }
        }
        let message = lines.suffix(5).joined(separator: " | ")
        if !message.isEmpty { text += ": \(message)" }
        return text
    }
}
