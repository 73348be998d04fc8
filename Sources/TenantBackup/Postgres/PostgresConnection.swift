import CLibPQ
import Foundation
import Logging

extension PostgresConnection {
    /// Why `connectionString` does not parse as a libpq connection string or `postgresql://` URL (redacted),
    /// or `nil` when it does. Checked by the configuration, before anything connects.
    public static func parseProblem(_ connectionString: String) -> String? {
        let trimmed = connectionString.trimmingCharacters(in: .whitespaces)
        let isURL = trimmed.hasPrefix("postgresql://") || trimmed.hasPrefix("postgres://")
        if !isURL, !trimmed.contains("=") {
            return trimmed.contains("://")
                ? "the URL's scheme must be postgresql:// or postgres://"
                : "is neither a postgresql:// URL nor a key=value connection string (a URL without its scheme is read as a database name)"
        }
        var error: UnsafeMutablePointer<CChar>?
        guard let options = PQconninfoParse(trimmed, &error) else {
            let message = error.map { String(cString: $0).trimmingCharacters(in: .whitespacesAndNewlines) } ?? "it does not parse"
            if let error { PQfreemem(error) }
            return Redaction.libpqMessage(message, connectionString: connectionString)
        }
        PQconninfoFree(options)
        return nil
    }
}

/// The rows of a statement, as text.
public struct PostgresResult: Sendable, Equatable {
    public let columns: [String]
    /// Each row's values in column order; `nil` is SQL NULL.
    public let rows: [[String?]]
}

/// One libpq connection, opened with the same rules `pg_dump` uses: a connection string or URL when one is
/// configured, otherwise the standard `PG*` variables, `~/.pgpass` and service files.
///
/// libpq calls block; use a connection from one task at a time. The connection closes on deinit.
public final class PostgresConnection {
    private let handle: OpaquePointer

    /// Connects, or throws ``PostgresError/connectionFailed(target:message:)`` with libpq's message.
    ///
    /// - Parameters:
    ///   - connectionString: a libpq keyword string or `postgresql://` URL; `nil` or empty uses the `PG*`
    ///     variables of `environment`, as `pg_dump` run with that environment would.
    ///   - applicationName: shown in `pg_stat_activity` unless the connection string or `PGAPPNAME` sets one.
    ///   - environment: the `PG*` variables to use (the settings' environment, so that what `doctor` checks is
    ///     what `pg_dump` gets); a 10 s connect timeout applies when `PGCONNECT_TIMEOUT` is unset.
    public init(
        connectionString: String?,
        applicationName: String = "tenant-backup",
        environment: [String: String] = ProcessInfo.processInfo.environment
    ) throws(PostgresError) {
        var pairs: [(String, String)] = [("fallback_application_name", applicationName), ("client_encoding", "UTF8")]
        if environment["PGCONNECT_TIMEOUT"] == nil { pairs.append(("connect_timeout", "10")) }
        if let connectionString, !connectionString.isEmpty {
            // Only the first dbname is expanded, and what it holds overrides the keywords before it.
            pairs.append(("dbname", connectionString))
        } else {
            // libpq reads the process's own PGPASSWORD for any keyword left out, and ignores an empty keyword
            // value: a password withheld from these variables (a restore target on another server) is set to
            // the empty string inside an expanded dbname (the first one, which later keywords override), which
            // also keeps a service file's password out.
            if environment["PGPASSWORD"] == nil, ProcessInfo.processInfo.environment["PGPASSWORD"] != nil {
                pairs.append(("dbname", "password=''"))
            }
            for (keyword, variable) in LibpqVariables.all {
                if let value = environment[variable], !value.isEmpty { pairs.append((keyword, value)) }
            }
        }
        let keywords = pairs.map { strdup($0.0) }
        let values = pairs.map { strdup($0.1) }
        defer {
            keywords.forEach { free($0) }
            values.forEach { free($0) }
        }
        let keywordPointers = keywords.map { UnsafePointer<CChar>($0) } + [nil]
        let valuePointers = values.map { UnsafePointer<CChar>($0) } + [nil]
        guard let connection = PQconnectdbParams(keywordPointers, valuePointers, 1) else {
            throw .connectionFailed(target: "unknown", message: "libpq could not allocate a connection")
        }
        guard PQstatus(connection) == CONNECTION_OK else {
            // libpq repeats a malformed URL whole in its message, password included, and a URL without
            // its scheme becomes the database name: neither may reach a log line.
            let message = Redaction.libpqMessage(Self.message(PQerrorMessage(connection)), connectionString: connectionString, environment: environment)
            let target = Redaction.libpqMessage(Self.describe(connection), connectionString: connectionString, environment: environment)
            PQfinish(connection)
            throw .connectionFailed(target: target, message: message)
        }
        // libpq prints notices (WARNING:, NOTICE:) straight to stderr, around the log format and the
        // journal's fields; they go through swift-log instead.
        PQsetNoticeProcessor(connection, { _, message in
            guard let message else { return }
            let text = String(cString: message).trimmingCharacters(in: .whitespacesAndNewlines)
            PostgresConnection.noticeLogger.notice("PostgreSQL notice", metadata: ["notice": "\(text)"])
        }, nil)
        self.handle = connection
    }

    /// Where the server's notices go (through whatever handler the executable bootstrapped).
    static let noticeLogger = Logger(label: "tenant-backup.postgres")

    deinit {
        PQfinish(handle)
    }

    /// `user@host:port/database`, for messages; never includes a password.
    public var target: String { Self.describe(handle) }

    /// The server's version number, e.g. 150018 for 15.18.
    public var serverVersionNumber: Int { Int(PQserverVersion(handle)) }

    /// The server's major version (15 for 15.18).
    public var serverMajorVersion: Int { serverVersionNumber / 10000 }

    /// Runs one statement with text parameters and returns every row as text (`nil` for SQL NULL).
    ///
    /// - Parameter purpose: what the query is for, used in the error ("discovering tenants").
    public func query(_ sql: String, _ parameters: [String?] = [], purpose: String) throws(PostgresError) -> PostgresResult {
        let copies = parameters.map { $0.map { strdup($0) } ?? nil }
        defer { copies.forEach { free($0) } }
        let pointers = copies.map { UnsafePointer<CChar>($0) }
        guard let result = PQexecParams(handle, sql, Int32(parameters.count), nil, pointers, nil, nil, 0) else {
            throw .queryFailed(purpose: purpose, sqlState: nil, message: Self.message(PQerrorMessage(handle)))
        }
        defer { PQclear(result) }
        let status = PQresultStatus(result)
        guard status == PGRES_TUPLES_OK || status == PGRES_COMMAND_OK else {
            let sqlState = PQresultErrorField(result, Int32(UInt8(ascii: "C"))).map { String(cString: $0) }
            throw .queryFailed(purpose: purpose, sqlState: sqlState, message: Self.message(PQresultErrorMessage(result)))
        }
        let rowCount = PQntuples(result)
        let columnCount = PQnfields(result)
        let columns = (0..<columnCount).map { String(cString: PQfname(result, $0)) }
        var rows: [[String?]] = []
        rows.reserveCapacity(Int(rowCount))
        for row in 0..<rowCount {
            var values: [String?] = []
            values.reserveCapacity(Int(columnCount))
            for column in 0..<columnCount {
                if PQgetisnull(result, row, column) == 1 {
                    values.append(nil)
                } else {
                    values.append(String(cString: PQgetvalue(result, row, column)))
                }
            }
            rows.append(values)
        }
        return PostgresResult(columns: columns, rows: rows)
    }

    private static func message(_ pointer: UnsafePointer<CChar>?) -> String {
        guard let pointer else { return "unknown error" }
        let text = String(cString: pointer).trimmingCharacters(in: .whitespacesAndNewlines)
        // libpq puts a hint on a second, tab-indented line; keep it on one line.
        return text.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }.joined(separator: " ")
    }

    private static func describe(_ connection: OpaquePointer) -> String {
        func text(_ pointer: UnsafeMutablePointer<CChar>?) -> String? {
            guard let pointer else { return nil }
            let value = String(cString: pointer)
            return value.isEmpty ? nil : value
        }
        let user = text(PQuser(connection)) ?? "?"
        let host = text(PQhost(connection)) ?? "?"
        let port = text(PQport(connection)) ?? "5432"
        let database = text(PQdb(connection)) ?? "?"
        return "\(user)@\(host):\(port)/\(database)"
    }
}
