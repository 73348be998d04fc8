import Foundation

/// One schema tenant-backup backs up: its exact name and whether it is a clinic's (`backups/`) or shared by
/// every clinic (`shared/`). The one place a schema is named for people, for metrics and for pg_dump.
public struct BackupSchema: Sendable, Hashable, CustomStringConvertible {
    public let name: String
    public let area: BackupKey.Area

    public init(name: String, area: BackupKey.Area) {
        self.name = name
        self.area = area
    }

    public static func tenant(_ name: String) -> BackupSchema { BackupSchema(name: name, area: .tenant) }
    public static func shared(_ name: String) -> BackupSchema { BackupSchema(name: name, area: .shared) }

    /// `tenant` or `shared`: the metrics label and the JSON field.
    public var kind: String { area == .tenant ? "tenant" : "shared" }

    /// The name as SQL would write it: bare when that is unambiguous, else double-quoted.
    public var display: String { Self.display(name) }

    /// `tenant` or `shared schema`: how messages call it.
    public var noun: String { area == .tenant ? "tenant" : "shared schema" }

    /// The log metadata key that names it: `tenant=` for a clinic (the journal field operators filter on),
    /// `schema=` for a shared schema.
    public var metadataKey: String { area == .tenant ? "tenant" : "schema" }

    /// `tenant bienestar`, `shared schema public`: how messages name it.
    public var description: String { "\(noun) \(display)" }

    /// `"name"` with `"` doubled: a pg_dump pattern that matches exactly this schema, whatever characters it
    /// holds (`*`, `?`, `.`, upper case...), so no dump can ever select another tenant's schema.
    public var dumpPattern: String { Self.quoted(name) }

    /// `bienestar`, or `"Clínica ""Sur"""` for a name that needs quoting.
    public static func display(_ name: String) -> String {
        let simple = !name.isEmpty && name.allSatisfy { $0.isASCII && ($0.isLowercase || $0.isNumber || $0 == "_") } && !(name.first?.isNumber ?? true)
        return simple ? name : quoted(name)
    }

    /// The name as an SQL identifier: in double quotes, each `"` doubled.
    static func quoted(_ name: String) -> String {
        "\"" + name.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }
}

extension BackupKey {
    /// The key of `schema`'s backup started at `timestamp`.
    public init(prefix: String, schema: BackupSchema, timestamp: Date, format: BackupFormat) {
        self.init(prefix: prefix, area: schema.area, schema: schema.name, timestamp: timestamp, format: format)
    }

    /// The same, with the format `suffix` names (one of ``BackupFormat/suffixes``).
    public init(prefix: String, schema: BackupSchema, timestamp: Date, suffix: String) {
        self.init(prefix: prefix, area: schema.area, schema: schema.name, timestamp: timestamp, suffix: suffix)
    }

    /// The schema this key is a backup of.
    public var owner: BackupSchema { BackupSchema(name: schema, area: area) }

    /// `<prefix>backups/<tenant>/` or `<prefix>shared/<schema>/`: where `schema`'s backups lie.
    public static func folder(prefix: String, of schema: BackupSchema) -> String {
        folder(prefix: prefix, area: schema.area, schema: schema.name)
    }
}
