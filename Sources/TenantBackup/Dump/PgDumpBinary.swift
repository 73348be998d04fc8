import Foundation
import Subprocess
import SystemPackage

/// A `pg_dump` executable and its version.
public struct PgDumpBinary: Sendable, Equatable {
    public let path: String
    public let major: Int
    public let minor: Int

    /// The version as pg_dump prints it, e.g. `15.18`.
    public var version: String { "\(major).\(minor)" }

    /// Whether this pg_dump can dump a server of the given major version (pg_dump refuses newer servers).
    public func canDump(serverMajor: Int) -> Bool { major >= serverMajor }
}

/// Finds and checks the `pg_dump` to run.
public enum PgDumpLocator {
    /// Where Debian and Ubuntu install each major version's binaries.
    public static let debianRoot = "/usr/lib/postgresql"

    /// The paths to try, best first: the configured one alone when set; otherwise the real binary of the
    /// server's major version, then newer installed majors, then `pg_dump` on `PATH` (on Debian that is a
    /// Perl wrapper costing ~50 ms a call, so it comes last).
    public static func candidates(configured: String?, serverMajor: Int, installedMajors: [Int], path: String?) -> [String] {
        if let configured { return [configured] }
        var result: [String] = []
        for major in installedMajors.sorted() where major >= serverMajor {
            let candidate = "\(debianRoot)/\(major)/bin/pg_dump"
            if major == serverMajor { result.insert(candidate, at: 0) } else { result.append(candidate) }
        }
        for directory in (path ?? "").split(separator: ":") where !directory.isEmpty {
            result.append("\(directory)/pg_dump")
        }
        return result
    }

    /// Parses `pg_dump --version` output such as `pg_dump (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)`.
    public static func parseVersion(_ output: String) -> (major: Int, minor: Int)? {
        guard let range = output.range(of: "(PostgreSQL) ") else { return nil }
        let digits = output[range.upperBound...].prefix { $0.isNumber || $0 == "." }
        let parts = digits.split(separator: ".").compactMap { Int($0) }
        guard let major = parts.first else { return nil }
        return (major, parts.count > 1 ? parts[1] : 0)
    }

    /// Installed major versions under ``debianRoot``.
    public static func installedMajors() -> [Int] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: debianRoot)) ?? []
        return entries.compactMap(Int.init).filter {
            FileManager.default.isExecutableFile(atPath: "\(debianRoot)/\($0)/bin/pg_dump")
        }
    }

    /// Resolves the `pg_dump` for a server and checks its version can dump it.
    public static func locate(
        configured: String?,
        serverMajor: Int,
        environment: [String: String] = ProcessInfo.processInfo.environment
    ) async throws(PgDumpError) -> PgDumpBinary {
        let paths = candidates(configured: configured, serverMajor: serverMajor, installedMajors: installedMajors(), path: environment["PATH"])
        var found: [PgDumpBinary] = []
        for path in paths where FileManager.default.isExecutableFile(atPath: path) {
            let binary = try await probe(path)
            if binary.canDump(serverMajor: serverMajor) { return binary }
            found.append(binary)
        }
        if let configured {
            if let binary = found.first {
                throw .tooOld(binary, serverMajor: serverMajor)
            }
            throw .notFound("postgres.pg_dump is '\(configured)', which is not an executable file")
        }
        if let newest = found.max(by: { $0.major < $1.major }) {
            throw .tooOld(newest, serverMajor: serverMajor)
        }
        throw .notFound("no pg_dump found in \(debianRoot)/*/bin or on PATH; install postgresql-client-\(serverMajor) or set postgres.pg_dump")
    }

    /// Runs `pg_dump --version`.
    public static func probe(_ path: String) async throws(PgDumpError) -> PgDumpBinary {
        do {
            let result = try await Subprocess.run(
                .path(FilePath(path)),
                arguments: ["--version"],
                environment: ChildEnvironment.subprocess(),
                output: .string(limit: 4096),
                error: .string(limit: 4096))
            guard case .exited(0) = result.terminationStatus else {
                throw PgDumpError.unusable(path: path, message: "'\(path) --version' failed: \(result.terminationStatus) \(result.standardError)")
            }
            guard let version = parseVersion(result.standardOutput) else {
                throw PgDumpError.unusable(path: path, message: "cannot read a version from '\(result.standardOutput)'")
            }
            return PgDumpBinary(path: path, major: version.major, minor: version.minor)
        } catch let error as PgDumpError {
            throw error
        } catch {
            throw .unusable(path: path, message: "cannot run it: \(error)")
        }
    }
}

/// Why no usable `pg_dump` was found.
public enum PgDumpError: Error, Equatable, CustomStringConvertible {
    case notFound(String)
    case tooOld(PgDumpBinary, serverMajor: Int)
    case unusable(path: String, message: String)

    public var description: String {
        switch self {
        case .notFound(let message):
            return message
        case .tooOld(let binary, let serverMajor):
            return "\(binary.path) is pg_dump \(binary.version), older than the server (\(serverMajor)); "
                + "install postgresql-client-\(serverMajor) or point postgres.pg_dump at a pg_dump \(serverMajor) or newer"
        case .unusable(let path, let message):
            return "\(path): \(message)"
        }
    }
}
