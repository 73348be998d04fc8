import Foundation
import NIOCore

/// `psql -X -v ON_ERROR_STOP=1`, fed on its standard input one transaction that we open with `BEGIN` and close
/// with ``commit()`` only once every object verified: a restore that applies the whole script or nothing.
/// Not `--single-transaction`: with it, psql commits whatever it read when its input ends, so a tenant-backup
/// killed midway (SIGKILL, the OOM killer) would commit half a clinic. Here the end of input before our
/// `COMMIT` ends the session, and the server rolls the transaction back. ``abort()`` kills psql outright.
public final class PsqlProcess: @unchecked Sendable {
    private let process = Process()
    private let input = Pipe()
    private let errors = Pipe()
    private let stderrTail = StderrTail()

    /// The connection comes from `environment` (`PG*`), never from argv: no password on a command line.
    /// `preamble` goes first, before `BEGIN` (the restore's own `\restrict`); `opening` right after it.
    /// `user`, when given, is passed as `--username` (over a service file's or the environment's).
    public init(executable: String, environment: [String: String], user: String? = nil, preamble: String = "", opening: String = "") throws {
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = ["-X", "-q", "-v", "ON_ERROR_STOP=1", "-f", "-"] + (user.map { ["--username", $0] } ?? [])
        process.environment = environment
        process.standardInput = input
        process.standardOutput = FileHandle(forWritingAtPath: "/dev/null")
        process.standardError = errors
        // A psql that stops reading (ON_ERROR_STOP) must give us EPIPE, not kill us with SIGPIPE.
        signal(SIGPIPE, SIG_IGN)
        let tail = stderrTail
        errors.fileHandleForReading.readabilityHandler = { handle in
            let data = handle.availableData
            if !data.isEmpty { tail.append(data) }
        }
        try process.run()
        #if os(Linux)
        // A pipe of 1 MiB (Linux's default maximum for users) instead of 64 KiB: the next chunk is decoded
        // while psql still reads the last one.
        _ = fcntl(input.fileHandleForWriting.fileDescriptor, 1031 /* F_SETPIPE_SZ */, Int32(1 << 20))
        #endif
        try input.fileHandleForWriting.write(contentsOf: Data((preamble + "BEGIN;\n" + opening).utf8))
    }

    /// Ends the script with `COMMIT` (call only when everything fed verified), closes psql's input and waits.
    public func commit() async -> (status: Int32, stderr: String) {
        do {
            try await write(ByteBuffer(string: "\nCOMMIT;\n"))
        } catch {
            return await finishWithoutCommit()
        }
        return await finishWithoutCommit()
    }

    /// Writes a chunk of the script (blocking on a full pipe, off the cooperative pool).
    public func write(_ buffer: ByteBuffer) async throws {
        guard buffer.readableBytes > 0 else { return }
        let handle = input.fileHandleForWriting
        let data = Data(buffer.readableBytesView)
        try await Blocking.run { try handle.write(contentsOf: data) }
    }

    /// Closes its input without a `COMMIT`: the session ends and the server rolls the transaction back.
    /// Returns psql's exit status and the end of its stderr.
    func finishWithoutCommit() async -> (status: Int32, stderr: String) {
        try? input.fileHandleForWriting.close()
        return await wait()
    }

    /// Kills psql before its input ends: the transaction is rolled back by the server. Returns the end of its
    /// stderr (why it stopped reading, when it did).
    @discardableResult
    public func abort() async -> String {
        kill(process.processIdentifier, SIGKILL)
        let (_, stderr) = await wait()
        try? input.fileHandleForWriting.close()
        return stderr
    }

    private func wait() async -> (status: Int32, stderr: String) {
        let process = self.process
        _ = try? await Blocking.run { () throws -> Bool in
            process.waitUntilExit()
            return true
        }
        errors.fileHandleForReading.readabilityHandler = nil
        let rest = (try? errors.fileHandleForReading.readToEnd()) ?? nil
        if let rest { stderrTail.append(rest) }
        let status = process.terminationReason == .uncaughtSignal ? 128 + process.terminationStatus : process.terminationStatus
        return (status, stderrTail.text)
    }

    /// The last 8 KiB of psql's stderr.
    final class StderrTail: @unchecked Sendable {
        private let lock = NSLock()
        private var data = Data()

        func append(_ more: Data) {
            lock.lock()
            data.append(more)
            if data.count > 16384 { data = data.suffix(8192) }
            lock.unlock()
        }

        var text: String {
            lock.lock()
            defer { lock.unlock() }
            return String(decoding: data.suffix(8192), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        }
    }

    /// Whether this psql has `\restrict` (15.14, 16.10, 17.6, 18 and later; also 13.22 and 14.19): then the
    /// restore runs with a key of its own, and psql itself refuses every meta-command in the dump.
    public static func supportsRestrict(executable: String) -> Bool {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = ["--version"]
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle(forWritingAtPath: "/dev/null")
        guard (try? process.run()) != nil else { return false }
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        // "psql (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)"
        let text = String(decoding: data, as: UTF8.self)
        guard let version = text.split(separator: " ").first(where: { $0.first?.isNumber == true }) else { return false }
        let numbers = version.split(separator: ".").map { Int($0.prefix { $0.isNumber }) ?? 0 }
        let major = numbers.first ?? 0
        let minor = numbers.count > 1 ? numbers[1] : 0
        let firstWithRestrict = [13: 22, 14: 19, 15: 14, 16: 10, 17: 6]
        if major >= 18 { return true }
        return firstWithRestrict[major].map { minor >= $0 } ?? false
    }

    /// `psql` of the server's major version when installed (Debian's layout), else the one on `PATH`.
    public static func locate(serverMajor: Int, environment: [String: String]) -> String? {
        let versioned = "/usr/lib/postgresql/\(serverMajor)/bin/psql"
        if FileManager.default.isExecutableFile(atPath: versioned) { return versioned }
        for directory in (environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":") {
            let candidate = "\(directory)/psql"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }
}
