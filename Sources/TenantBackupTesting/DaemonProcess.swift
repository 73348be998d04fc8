import Foundation
import TenantBackup

/// The built `tenant-backup` executable, run as an operator or systemd would: arguments, environment,
/// signals, exit status, and its stderr in a file the test can read.
public final class DaemonProcess: @unchecked Sendable {
    /// `$TENANT_BACKUP_BIN`, or `.build/debug/tenant-backup` of this checkout.
    public static var executable: String {
        if let path = ProcessInfo.processInfo.environment["TENANT_BACKUP_BIN"] { return path }
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        return root.appendingPathComponent(".build/debug/tenant-backup").path
    }

    private let process = Process()
    public let logPath: String

    public init(_ arguments: [String], environment: [String: String]) throws {
        logPath = FileManager.default.temporaryDirectory.appendingPathComponent("tb-daemon-\(UUID().uuidString.prefix(8)).log").path
        _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        let log = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
        process.executableURL = URL(fileURLWithPath: Self.executable)
        process.arguments = arguments
        process.environment = environment
        process.standardOutput = log
        process.standardError = log
        try process.run()
        try log.close()
    }

    deinit {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        try? FileManager.default.removeItem(atPath: logPath)
    }

    public var pid: Int32 { process.processIdentifier }
    public var isRunning: Bool { process.isRunning }

    public func signal(_ number: Int32) {
        kill(process.processIdentifier, number)
    }

    /// What it has logged so far (stdout and stderr).
    public var output: String {
        (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
    }

    /// Waits for the process to exit; returns its exit status, or `nil` on timeout (it is then killed).
    public func waitForExit(timeout: Duration = .seconds(120)) async -> Int32? {
        let deadline = ContinuousClock.now + timeout
        while process.isRunning {
            if ContinuousClock.now > deadline {
                kill(process.processIdentifier, SIGKILL)
                return nil
            }
            try? await Task.sleep(for: .milliseconds(50))
        }
        return process.terminationReason == .exit ? process.terminationStatus : 128 + process.terminationStatus
    }

    /// Waits until the log holds `text`.
    public func waitForOutput(containing text: String, timeout: Duration = .seconds(180)) async throws {
        let deadline = ContinuousClock.now + timeout
        while !output.contains(text) {
            guard ContinuousClock.now < deadline else { throw NotifySocket.TimedOut(what: "'\(text)' in the daemon's log:\n\(output.suffix(3000))") }
            try await Task.sleep(for: .milliseconds(100))
        }
    }
}

/// A stand-in `pg_dump`: answers `--version` like pg_dump 15 and otherwise runs a bash body (which may
/// `exec` the real one).
public enum FakePgDump {
    public static func make(_ body: String) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("fake-pg_dump-\(UUID().uuidString)").path
        let script = """
            #!/bin/bash
            if [[ "$1" == "--version" ]]; then echo "pg_dump (PostgreSQL) 15.99"; exit 0; fi
            \(body)
            """
        try script.write(toFile: path, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: path)
        return path
    }

    /// The real pg_dump of PostgreSQL 15 on this machine.
    public static let real = "/usr/lib/postgresql/15/bin/pg_dump"
}
