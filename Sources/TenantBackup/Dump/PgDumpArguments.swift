/// The argv of one `pg_dump` run (never a shell command line), built from the settings: pure, unit-tested.
public struct PgDumpArguments: Sendable, Equatable {
    public enum Format: String, Sendable, Equatable, CaseIterable {
        /// `-Fp`: SQL text, restorable with `psql`, row counts readable from the stream.
        case plain
        /// `-Fc -Z0`: pg_restore's archive, uncompressed (our compressor does that).
        case custom
    }

    public var format: Format
    /// Extra options appended as they are (`--no-owner`, `--no-privileges`...).
    public var extraOptions: [String]
    /// `--lock-wait-timeout`: fail instead of waiting for a lock longer than this many seconds.
    public var lockWaitTimeoutSeconds: Int?

    public init(format: Format = .plain, extraOptions: [String] = [], lockWaitTimeoutSeconds: Int? = nil) {
        self.format = format
        self.extraOptions = extraOptions
        self.lockWaitTimeoutSeconds = lockWaitTimeoutSeconds
    }

    /// The arguments to dump `schema`. A shared schema also gets `--extension=*`: `pg_dump -n public`
    /// leaves out the extensions tenant tables use (citext), and the restore would fail without them.
    /// With `snapshot`, the dump sees the database as of that exported snapshot (`--snapshot=`), like every
    /// other schema of the cycle.
    public func arguments(schema: BackupSchema, snapshot: String? = nil) -> [String] {
        let shared = schema.area == .shared
        var arguments = ["--schema=\(schema.dumpPattern)", "--strict-names", "--no-password"]
        if let snapshot { arguments.append("--snapshot=\(snapshot)") }
        if shared { arguments.append("--extension=*") }
        switch format {
        case .plain: arguments.append("--format=plain")
        case .custom: arguments += ["--format=custom", "--compress=0"]
        }
        if let lockWaitTimeoutSeconds { arguments.append("--lock-wait-timeout=\(lockWaitTimeoutSeconds)s") }
        arguments += extraOptions
        return arguments
    }

    /// Options `backup.pg_dump_options` may not hold: those that choose what is dumped (another schema's or
    /// table's rows would land in a clinic's backup), where it goes, in which format, or how pg_dump connects.
    static let forbiddenLongOptions = [
        "--schema", "--exclude-schema", "--table", "--exclude-table", "--table-and-children", "--exclude-table-and-children",
        "--extension", "--exclude-extension", "--filter", "--file", "--format", "--snapshot", "--dbname", "--host", "--port",
        "--username", "--password", "--jobs", "--compress", "--binary-upgrade", "--role",
    ]
    /// Single-letter options that are harmless (data or schema only, clean, no owner, no privileges, verbose,
    /// large objects, encoding); every other one is refused, since letters combine (`-On x` is `-O -n x`).
    static let allowedShortOptions: Set<Character> = ["a", "s", "c", "O", "x", "v", "b", "B", "E"]

    /// Why `options` cannot be passed to pg_dump, or `nil` when they can.
    public static func problem(withOptions options: [String]) -> String? {
        for option in options {
            if option.hasPrefix("--") {
                let name = option.split(separator: "=", maxSplits: 1).first.map(String.init) ?? option
                if forbiddenLongOptions.contains(name) {
                    return "'\(option)' is not allowed: tenant-backup chooses the schema, the output, the format and the connection itself "
                        + "(an option that selects other schemas or tables would put another clinic's data in this one's backup)"
                }
            } else if option.hasPrefix("-"), option.count > 1 {
                let letters = option.dropFirst()
                // -E takes its value attached (-EUTF8): the letters after it are the value.
                let flags = letters.first == "E" ? Substring("E") : letters
                if let letter = flags.first(where: { !allowedShortOptions.contains($0) }) {
                    return "'\(option)' is not allowed: -\(letter) may select other schemas, redirect the output or change the connection; "
                        + "write long options (--no-owner, --exclude-table-data=...)"
                }
            } else {
                return "'\(option)' is not an option: a bare word is pg_dump's database name; write each option with its value as --name=value"
            }
        }
        return nil
    }
}
