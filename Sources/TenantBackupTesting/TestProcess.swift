import Foundation
import Subprocess

#if canImport(System)
    import System
#else
    import SystemPackage
#endif

/// Running the built binary and other programs, free ports and temporary paths: what every integration suite
/// needs, in one place instead of reached across suites.
public enum TestProcess {
    /// Runs `executable` with exactly `environment` (`nil`: this process's), and returns its exit status and
    /// its stdout followed by its stderr.
    public static func run(_ executable: String, _ arguments: [String], environment: [String: String]? = nil) async throws
        -> (status: TerminationStatus, output: String)
    {
        let result = try await Subprocess.run(
            .path(FilePath(executable)), arguments: Arguments(arguments),
            // Exactly this environment: our own binary reads AWS_* and TENANT_BACKUP_* (ChildEnvironment is for pg_dump).
            environment: environment.map { variables in .custom(variables.map { Array("\($0.key)=\($0.value)\0".utf8) }) } ?? .inherit,
            output: .string(limit: 4 << 20), error: .string(limit: 4 << 20))
        return (result.terminationStatus, result.standardOutput + result.standardError)
    }

    /// Runs the tenant-backup binary under test (``DaemonProcess/executable``) with exactly `environment`.
    public static func tenantBackup(_ arguments: [String], _ environment: [String: String]) async throws -> (status: TerminationStatus, output: String) {
        try await run(DaemonProcess.executable, arguments, environment: environment)
    }

    /// ``tenantBackup(_:_:)``, with its stdout as bytes and its stderr as text, apart.
    public static func tenantBackupBytes(_ arguments: [String], _ environment: [String: String]) async throws
        -> (status: TerminationStatus, stdout: [UInt8], stderr: String)
    {
        let result = try await Subprocess.run(
            .path(FilePath(DaemonProcess.executable)), arguments: Arguments(arguments),
            environment: .custom(environment.map { Array("\($0.key)=\($0.value)\0".utf8) }),
            output: .bytes(limit: 64 << 20), error: .string(limit: 4 << 20))
        return (result.terminationStatus, result.standardOutput, result.standardError)
    }

    /// A TCP port on 127.0.0.1 that was free a moment ago.
    public static func freePort() throws -> Int {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(descriptor) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        _ = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(descriptor, $0, &length) } }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    /// A path in the temporary directory that nothing uses yet, ending in `name`.
    public static func temporaryFile(_ name: String) -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("tb-\(UUID().uuidString.prefix(8))-\(name)").path
    }
}
