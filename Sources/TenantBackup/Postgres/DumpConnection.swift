import CLibPQ
import Foundation

/// How `pg_dump` reaches the database: the `PG*` variables of its environment, derived from the
/// settings' connection string when there is one. A password therefore travels in `PGPASSWORD` (visible
/// only to the process and root), never in argv (visible to every user in `ps`).
public enum DumpConnection {
    /// A connection string that cannot be used, with libpq's reason (never the string itself).
    public struct InvalidConnectionString: Error, CustomStringConvertible {
        public let message: String
        public var description: String { "postgres.url is not a valid connection string: \(message)" }
    }

    /// The environment variables equivalent to `connectionString` (keyword form or URL).
    public static func variables(for connectionString: String) throws(InvalidConnectionString) -> [String: String] {
        var errorMessage: UnsafeMutablePointer<CChar>?
        guard let options = PQconninfoParse(connectionString, &errorMessage) else {
            let message = errorMessage.map { String(cString: $0).trimmingCharacters(in: .whitespacesAndNewlines) } ?? "unparseable"
            if let errorMessage { PQfreemem(errorMessage) }
            throw InvalidConnectionString(message: message)
        }
        defer { PQconninfoFree(options) }
        var result: [String: String] = [:]
        var pointer = options
        while let keyword = pointer.pointee.keyword {
            if let value = pointer.pointee.val, let variable = LibpqVariables.variableForKeyword[String(cString: keyword)] {
                result[variable] = String(cString: value)
            }
            pointer += 1
        }
        return result
    }
}
