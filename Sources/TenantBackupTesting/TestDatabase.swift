import Foundation
import Subprocess
import TenantBackup

/// A database of its own for one test, created on the test PostgreSQL server and dropped afterwards.
public struct TestDatabase: Sendable {
    public let name: String
    let services: TestServices

    /// The connection string libpq and pg_dump use for this database (host, port and user come from `PG*`).
    public var connectionString: String { "dbname=\(name)" }

    /// Opens a connection to this database.
    public func connect() throws -> PostgresConnection {
        try PostgresConnection(connectionString: connectionString, environment: services.environment)
    }

    /// Runs SQL in this database with `psql -X -v ON_ERROR_STOP=1` (so meta-commands and multi-statement
    /// scripts work), failing with psql's message.
    public func psql(_ sql: String) async throws {
        try await Self.psql(["-d", name, "-c", sql], services: services)
    }

    /// Runs a SQL file in this database with `psql -X -v ON_ERROR_STOP=1 --single-transaction`: all or nothing.
    public func psqlFile(_ path: String) async throws {
        try await Self.psql(["-d", name, "--single-transaction", "-f", path], services: services)
    }

    /// Runs `body` with a fresh database, loaded with the sample clinic fixture when `fixture` is true, and
    /// drops it afterwards whatever happens.
    @discardableResult
    public static func with<T>(
        _ services: TestServices,
        fixture: Bool = true,
        _ body: (TestDatabase) async throws -> T
    ) async throws -> T {
        let database = TestDatabase(name: TestServices.uniqueName("tb_test").replacingOccurrences(of: "-", with: "_"), services: services)
        try await psql(["-d", "postgres", "-c", "CREATE DATABASE \(database.name)"], services: services)
        do {
            if fixture {
                try await psql(["-d", database.name, "-f", services.fixturePath], services: services)
            }
            let result = try await body(database)
            try await drop(database, services: services)
            return result
        } catch {
            try? await drop(database, services: services)
            throw error
        }
    }

    private static func drop(_ database: TestDatabase, services: TestServices) async throws {
        try await psql(["-d", "postgres", "-c", "DROP DATABASE IF EXISTS \(database.name) WITH (FORCE)"], services: services)
    }

    struct PsqlFailed: Error, CustomStringConvertible {
        let arguments: [String]
        let status: String
        let stderr: String
        var description: String { "psql \(arguments.joined(separator: " ")) failed (\(status)): \(stderr)" }
    }

    static func psql(_ arguments: [String], services: TestServices) async throws {
        let all = ["-X", "-q", "-v", "ON_ERROR_STOP=1"] + arguments
        let result = try await Subprocess.run(
            .name("psql"),
            arguments: Arguments(all),
            environment: ChildEnvironment.subprocess(services.environment),
            output: .discarded,
            error: .string(limit: 1 << 20))
        guard case .exited(0) = result.terminationStatus else {
            throw PsqlFailed(arguments: all, status: "\(result.terminationStatus)", stderr: result.standardError)
        }
    }
}
