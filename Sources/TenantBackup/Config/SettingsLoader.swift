import Foundation

/// Builds ``Settings`` from, in order: defaults, the optional YAML file, the environment, and the files of
/// `$CREDENTIALS_DIRECTORY` (systemd's `LoadCredential=`). Later sources override earlier ones, except S3
/// credentials, which follow the credentials chain: the file's, then the environment's, then the
/// credentials directory's.
///
/// Which variables and credential files set which setting, and how each is parsed, is the settings table
/// (``SettingDefinition/all``), the same for the file, the environment and the credentials directory;
/// `TENANT_BACKUP_CONFIG` names the file. The S3 credentials (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
/// `AWS_SESSION_TOKEN`; the files `s3-access-key-id`, `s3-secret-access-key`, `s3-session-token`) go together.
/// The credential file `signing-key` is the manifest signing key itself, used when `signing.key_file` is not
/// set (``SigningSettings/resolvedKeyFile(environment:)``).
public struct SettingsLoader: Sendable {
    /// Read when neither `--config` nor `TENANT_BACKUP_CONFIG` names a file, and only if it exists.
    public static let defaultConfigPath = "/etc/tenant-backup/config.yaml"

    public var environment: [String: String]
    /// Overrides the default path, for tests.
    public var defaultConfigPath: String

    public init(environment: [String: String] = ProcessInfo.processInfo.environment, defaultConfigPath: String = Self.defaultConfigPath) {
        self.environment = environment
        self.defaultConfigPath = defaultConfigPath
    }

    /// The file that ``load(configFile:)`` reads, or `nil` when settings come from the environment alone.
    public func configPath(explicit: String?) -> String? {
        if let explicit { return explicit }
        if let named = environment["TENANT_BACKUP_CONFIG"], !named.isEmpty { return named }
        return FileManager.default.fileExists(atPath: defaultConfigPath) ? defaultConfigPath : nil
    }

    /// Loads and validates the settings. A file named explicitly (argument or `TENANT_BACKUP_CONFIG`) must
    /// exist; the default path is optional.
    public func load(configFile: String? = nil) throws(ConfigError) -> Settings {
        var settings = Settings()
        var fileCredentials: S3Credentials?
        if let path = configPath(explicit: configFile) {
            let data: Data
            do {
                data = try Data(contentsOf: URL(fileURLWithPath: path))
            } catch {
                throw .unreadable(path: path, reason: "cannot be read (\(Self.reason(error))); check the path and its permissions")
            }
            guard !data.contains(0), let text = String(data: data, encoding: .utf8) else {
                throw .unreadable(path: path, reason: "is not a text file (not UTF-8 YAML); is this the right file?")
            }
            try YAMLSettingsReader(path: path).read(text, into: &settings)
            fileCredentials = settings.s3.credentials
        }
        try applyEnvironment(to: &settings, fileCredentials: fileCredentials)
        try applyCredentialsDirectory(to: &settings, fileCredentials: fileCredentials)
        try SettingsValidation.validate(&settings)
        return settings
    }

    /// Loads settings from YAML text instead of a file (same rules as ``load(configFile:)``).
    public func load(yaml: String, path: String = "config.yaml") throws(ConfigError) -> Settings {
        var settings = Settings()
        try YAMLSettingsReader(path: path).read(yaml, into: &settings)
        let fileCredentials = settings.s3.credentials
        try applyEnvironment(to: &settings, fileCredentials: fileCredentials)
        try applyCredentialsDirectory(to: &settings, fileCredentials: fileCredentials)
        try SettingsValidation.validate(&settings)
        return settings
    }

    private func value(_ names: String...) -> (name: String, value: String)? {
        value(names)
    }

    private func value(_ names: [String]) -> (name: String, value: String)? {
        for name in names {
            if let value = environment[name], !value.isEmpty { return (name, value) }
        }
        return nil
    }

    private func applyEnvironment(to settings: inout Settings, fileCredentials: S3Credentials?) throws(ConfigError) {
        for definition in SettingDefinition.all {
            guard let apply = definition.apply, let (name, text) = value(definition.environment) else { continue }
            var input = SettingDefinition.Input(
                fail: { message in .environment(variable: name, message: message) },
                sibling: { key in SettingDefinition.named(key).flatMap { other in value(other.environment)?.value } })
            if definition.isList {
                input.list = text.split(whereSeparator: definition.separators.contains).map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
            } else {
                input.text = text
            }
            try apply(input, &settings)
        }
        guard fileCredentials == nil else { return }
        switch (value("AWS_ACCESS_KEY_ID"), value("AWS_SECRET_ACCESS_KEY")) {
        case (let key?, let secret?):
            settings.s3.credentials = S3Credentials(
                accessKeyId: key.value, secretAccessKey: secret.value, sessionToken: value("AWS_SESSION_TOKEN")?.value)
        case (nil, nil):
            break
        case (.some, nil):
            throw .environment(variable: "AWS_SECRET_ACCESS_KEY", message: "is not set while AWS_ACCESS_KEY_ID is; set both or neither")
        case (nil, .some):
            throw .environment(variable: "AWS_ACCESS_KEY_ID", message: "is not set while AWS_SECRET_ACCESS_KEY is; set both or neither")
        }
    }

    private func applyCredentialsDirectory(to settings: inout Settings, fileCredentials: S3Credentials?) throws(ConfigError) {
        guard let directory = environment["CREDENTIALS_DIRECTORY"], !directory.isEmpty else { return }
        func read(_ name: String) throws(ConfigError) -> String? {
            let path = (directory as NSString).appendingPathComponent(name)
            guard FileManager.default.fileExists(atPath: path) else { return nil }
            do {
                let text = try String(contentsOfFile: path, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
                guard !text.isEmpty else { throw ConfigError.credential(name: name, message: "the file is empty") }
                return text
            } catch let error as ConfigError {
                throw error
            } catch {
                throw .credential(name: name, message: "cannot be read (\(Self.reason(error)))")
            }
        }
        for definition in SettingDefinition.all {
            guard let name = definition.credential, let apply = definition.apply, let text = try read(name) else { continue }
            try apply(SettingDefinition.Input(text: text, fail: { message in .credential(name: name, message: message) }, sibling: { _ in nil }), &settings)
        }
        guard fileCredentials == nil, settings.s3.credentials == nil else { return }
        switch (try read("s3-access-key-id"), try read("s3-secret-access-key")) {
        case (let key?, let secret?):
            settings.s3.credentials = S3Credentials(accessKeyId: key, secretAccessKey: secret, sessionToken: try read("s3-session-token"))
        case (nil, nil):
            break
        case (.some, nil):
            throw .credential(name: "s3-secret-access-key", message: "is missing while s3-access-key-id is present")
        case (nil, .some):
            throw .credential(name: "s3-access-key-id", message: "is missing while s3-secret-access-key is present")
        }
    }

    static func reason(_ error: any Error) -> String {
        let nsError = error as NSError
        if let underlying = nsError.userInfo[NSUnderlyingErrorKey] as? NSError, underlying.domain == NSPOSIXErrorDomain {
            return String(cString: strerror(Int32(underlying.code)))
        }
        return nsError.localizedDescription
    }
}

/// Checks that apply whatever source a value came from.
enum SettingsValidation {
    /// `'value' is not one of a, b, c`, from the enum's own cases, so the message cannot drift from them.
    static func notOneOf<Value: CaseIterable & RawRepresentable>(_ text: String, _: Value.Type) -> String where Value.RawValue == String {
        "'\(text)' is not one of \(Value.allCases.map(\.rawValue).joined(separator: ", "))"
    }

    static func endpoint(_ text: String, error: (String) -> ConfigError) throws(ConfigError) -> URL {
        guard let url = URL(string: text), let scheme = url.scheme?.lowercased(), scheme == "http" || scheme == "https",
              let host = url.host, !host.isEmpty
        else {
            throw error("'\(text)' is not an http:// or https:// URL with a host")
        }
        guard url.path.isEmpty || url.path == "/", url.query == nil else {
            throw error("'\(text)' must be just scheme://host[:port], without a path or query")
        }
        return url
    }

    /// The longest duration any setting takes: ten years. Longer ones are typos, and would overflow the
    /// nanosecond clocks timers run on.
    static let maximumDuration: Duration = .seconds(3650 * 86400)

    /// Why a duration setting cannot be used.
    struct DurationProblem: Error {
        let message: String
    }

    /// An HTTP field name (RFC 9110 token characters).
    static func isHeaderName(_ value: String) -> Bool {
        !value.isEmpty && value.utf8.allSatisfy { byte in
            (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A) || Array("!#$%&'*+-.^_`|~".utf8).contains(byte)
        }
    }

    static func deletePolicyMessage(_ value: String) -> String {
        "'\(value)' is not a delete policy: floor (the default: never the newest, newest verified, monthly or yearly backup), any, or none"
    }

    /// `500ms`, `30s`, `10m`, `6h` or `1d`. A bare number is refused: `30` could mean seconds or minutes,
    /// and a backup tool should not guess.
    static func parseDuration(_ text: String, example: String) -> Result<Duration, DurationProblem> {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        if let number = Int64(trimmed) {
            return .failure(DurationProblem(message: "'\(text)' has no unit: write \(number)s for seconds (or \(number)m, \(number)h, \(number)d, \(number)ms)"))
        }
        let units: [(String, Int64)] = [("ms", 0), ("s", 1), ("m", 60), ("h", 3600), ("d", 86400)]
        for (unit, factor) in units where trimmed.hasSuffix(unit) {
            let digits = trimmed.dropLast(unit.count).trimmingCharacters(in: .whitespaces)
            guard !digits.isEmpty, digits.allSatisfy(\.isASCII), digits.allSatisfy(\.isNumber) else { break }
            let tooLong = DurationProblem(message: "'\(text)' is longer than the most any duration setting takes (3650d)")
            guard let number = Int64(digits) else { return .failure(tooLong) }
            let (seconds, overflow) = factor == 0 ? (number / 1000, false) : number.multipliedReportingOverflow(by: factor)
            guard !overflow, seconds <= maximumDuration.components.seconds else { return .failure(tooLong) }
            return .success(factor == 0 ? .milliseconds(number) : .seconds(seconds))
        }
        return .failure(DurationProblem(message: "'\(text)' is not a duration such as \(example) (units: ms, s, m, h, d)"))
    }

    /// `8MiB`, `64MB`, `1GiB` or a number of bytes; `nil` for anything else, or a size that does not fit.
    static func byteSize(_ text: String) -> Int? {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        let units: [(String, Int)] = [("KiB", 1 << 10), ("MiB", 1 << 20), ("GiB", 1 << 30), ("KB", 1000), ("MB", 1_000_000), ("GB", 1_000_000_000), ("B", 1)]
        for (unit, factor) in units where trimmed.hasSuffix(unit) {
            guard let number = Int(trimmed.dropLast(unit.count).trimmingCharacters(in: .whitespaces)), number >= 0 else { return nil }
            let (bytes, overflow) = number.multipliedReportingOverflow(by: factor)
            return overflow ? Int.max : bytes
        }
        return Int(trimmed).flatMap { $0 >= 0 ? $0 : nil }
    }

    static func partSizeMessage(_ text: String) -> String {
        "'\(text)' is outside S3's part size limits (5MiB to 5GiB); write a size such as 16MiB, or auto"
    }

    /// Whether a listen host is the loopback interface (the API is only ever served there; TLS and the
    /// outside world are the reverse proxy's).
    static func isLoopback(_ host: String) -> Bool {
        // 127.x.y.z only as an address: a name such as 127.0.0.1.example.com resolves wherever DNS says.
        var address = in_addr()
        let isIPv4Loopback = host.hasPrefix("127.") && inet_pton(AF_INET, host, &address) == 1
        return ["127.0.0.1", "::1", "[::1]", "localhost"].contains(host.lowercased()) || isIPv4Loopback
    }

    static func apiLoopbackMessage(_ text: String) -> String {
        "'\(text)' is not a loopback address: the API listens on 127.0.0.1 or ::1 only; put a TLS reverse proxy in front of it"
    }

    /// `audit.retention_days`: whole days, 1 to 3650.
    static func auditRetentionDays(_ text: String) -> Int? {
        Int(text.trimmingCharacters(in: .whitespaces)).flatMap { (1...3650).contains($0) ? $0 : nil }
    }

    static func auditRetentionDaysMessage(_ text: String) -> String {
        "'\(text)' must be a whole number of days from 1 to 3650 (the default keeps 400)"
    }

    static func neverRunsMessage(_ expression: String) -> String {
        "'\(expression)' never runs (no such date in the next five years)"
    }

    static func compressionLevelMessage(_ text: String, compression: Compression) -> String {
        switch compression {
        case .none: "'\(text)': compression is none, so there is no level to set; remove compression_level"
        default: "'\(text)' is not a \(compression.rawValue) level; \(compression.rawValue) takes \(compression.levels.lowerBound) to \(compression.levels.upperBound)"
        }
    }

    static func boolean(_ text: String) -> Bool? {
        switch text.lowercased() {
        case "true", "yes", "on", "1": true
        case "false", "no", "off", "0": false
        default: nil
        }
    }

    /// `host:port`, or `off` for none.
    static func listenAddress(_ text: String, error: (String) -> ConfigError) throws(ConfigError) -> ListenAddress? {
        if ["off", "none", "false", ""].contains(text.lowercased()) { return nil }
        guard let address = ListenAddress(text) else { throw error("'\(text)' is not host:port such as 127.0.0.1:9187, or off") }
        return address
    }

    /// A CA bundle: a readable file holding at least one PEM certificate.
    static func caBundle(_ path: String, error: (String) -> ConfigError) throws(ConfigError) -> String {
        guard let contents = FileManager.default.contents(atPath: path) else {
            throw error("cannot read the CA bundle \(path): give the path of a PEM file of the CA certificates the S3 endpoint's certificate chains to")
        }
        guard String(decoding: contents, as: UTF8.self).contains("-----BEGIN CERTIFICATE-----") else {
            throw error("\(path) holds no PEM certificate (-----BEGIN CERTIFICATE-----): give the CA certificates the S3 endpoint's certificate chains to")
        }
        return path
    }

    static func serverSideEncryption(_ text: String, keyId: String?, error: (String) -> ConfigError) throws(ConfigError) -> ServerSideEncryption {
        switch text.lowercased() {
        case "aes256": return .aes256
        case "aws:kms", "kms": return .kms(keyId: keyId)
        case "none", "off": return .none
        default: throw error("'\(text)' is not one of AES256, aws:kms, none")
        }
    }

    static func validate(_ settings: inout Settings) throws(ConfigError) {
        // The prefix is a folder: "prod" means "prod/", and a leading "/" would make an empty path segment.
        var prefix = settings.s3.prefix
        while prefix.hasPrefix("/") { prefix.removeFirst() }
        if !prefix.isEmpty, !prefix.hasSuffix("/") { prefix += "/" }
        if prefix.contains("//") {
            throw .invalid(setting: "s3.prefix", message: "'\(settings.s3.prefix)' contains an empty path segment ('//')")
        }
        settings.s3.prefix = prefix
        if settings.api.tenantFromHost, let query = settings.api.tokenQuery, !query.contains("$2") {
            throw .invalid(
                setting: "api.token_query",
                message: "with api.tenant_from_host the query gets $2, the clinic the host name maps to, and must use it (a token is valid for one clinic at a time)")
        }
        let region = settings.s3.region
        guard !region.isEmpty, region.allSatisfy({ $0.isASCII && ($0.isLowercase || $0.isNumber || $0 == "-") }) else {
            throw .invalid(setting: "s3.region", message: "'\(region)' is not a region name such as eu-west-1")
        }
        if let bucket = settings.s3.bucket {
            guard !bucket.isEmpty, !bucket.contains("/"), bucket.count <= 255 else {
                throw .invalid(setting: "s3.bucket", message: "'\(bucket)' is not a bucket name")
            }
        }
        for (name, patterns) in [("tenants.include", settings.tenants.include), ("tenants.exclude", settings.tenants.exclude)] {
            for pattern in patterns {
                do {
                    _ = try Glob(pattern)
                } catch {
                    throw .invalid(setting: name, message: error.description)
                }
            }
        }
        for schema in settings.tenants.sharedSchemas where schema.isEmpty {
            throw .invalid(setting: "tenants.shared_schemas", message: "a schema name cannot be empty")
        }
        // Values set in code rather than read from a file (the file's are checked where they are, with their line).
        if let partSize = settings.backup.partSize, partSize < PartSizePlanner.minimumPartSize || partSize > PartSizePlanner.maximumPartSize {
            throw .invalid(setting: "backup.part_size", message: partSizeMessage("\(partSize) bytes"))
        }
        let positive: [(String, Duration)] = [
            ("backup.no_output_timeout", settings.backup.noOutputTimeout), ("backup.dump_timeout", settings.backup.dumpTimeout),
            ("daemon.stop_timeout", settings.daemon.stopTimeout), ("daemon.lock_check_interval", settings.daemon.lockCheckInterval),
            ("metrics.stale_after", settings.metrics.staleAfter), ("metrics.refresh_interval", settings.metrics.refreshInterval),
        ]
        for (name, value) in positive where value <= .zero || value > maximumDuration {
            throw .invalid(setting: name, message: "must be more than zero and at most 3650d")
        }
        if let problem = PgDumpArguments.problem(withOptions: settings.backup.pgDumpOptions) {
            throw .invalid(setting: "backup.pg_dump_options", message: problem)
        }
        if let level = settings.backup.compressionLevel, !settings.backup.compression.levels.contains(level) {
            throw .invalid(
                setting: "backup.compression_level",
                message: compressionLevelMessage("\(level)", compression: settings.backup.compression) + " (compression is \(settings.backup.compression.rawValue))")
        }
        if settings.daemon.schedule.next(after: Date()) == nil {
            throw .invalid(setting: "schedule.cron", message: neverRunsMessage(settings.daemon.schedule.expression))
        }
        if let url = settings.postgres.connectionString, !url.isEmpty, let problem = PostgresConnection.parseProblem(url) {
            throw .invalid(setting: "postgres.url (or DATABASE_URL)", message: "\(Redaction.libpqMessage(url, connectionString: url)): \(problem)")
        }
        if let query = settings.tenants.query, query.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty {
            throw .invalid(setting: "tenants.query", message: "is empty; remove it to discover tenants from the schemas")
        }
    }
}
