/// The argv of one `pg_dump` run (never a shell command line), built from the settings: pure, unit-tested.
public struct PgDumpArguments: Sendable, Equatable {
    public enum Format: String, Sendable, Equatable, CaseIterable {
        /// `-Fp`: SQL text, restorable with `psql`, row counts readable from the stream.
        case plain
        /// `-Fc -Z0`: pg_restore's archive, uncompressed (our compressor does that).
        case custom

        /// The suffix of the object before the compression's (`.sql`, `.dump`).
        public var fileSuffix: String { self == .plain ? ".sql" : ".dump" }
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
    public func arguments(schema: String, shared: Bool, snapshot: String? = nil) -> [String] {
        var arguments = ["--schema=\(BackupSchema(name: schema, area: shared ? .shared : .tenant).dumpPattern)", "--strict-names", "--no-password"]
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
}
