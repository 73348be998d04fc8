import Foundation

/// Builds ``Settings`` from, in order: defaults, the optional YAML file, the environment, and the files of
/// `$CREDENTIALS_DIRECTORY` (systemd's `LoadCredential=`). Later sources override earlier ones, except S3
/// credentials, which follow the credentials chain: the file's, then the environment's, then the
/// credentials directory's.
///
/// Environment variables read (the old system's `.env` names work unchanged):
///
/// | variable | setting |
/// |---|---|
/// | `TENANT_BACKUP_CONFIG` | path of the YAML file (default `/etc/tenant-backup/config.yaml`, if present) |
/// | `TENANT_BACKUP_DATABASE_URL`, `DATABASE_URL` | `postgres.url`; unset: libpq's `PG*` variables |
/// | `TENANT_BACKUP_PG_DUMP` | `postgres.pg_dump` |
/// | `TENANT_BACKUP_TENANT_QUERY` | `tenants.query` |
/// | `TENANT_BACKUP_INCLUDE`, `TENANT_BACKUP_EXCLUDE`, `TENANT_BACKUP_SHARED_SCHEMAS` | comma-separated lists |
/// | `TENANT_BACKUP_COMPRESSION`, `TENANT_BACKUP_TENANT_CONCURRENCY` | `backup.compression`, `backup.tenant_concurrency` |
/// | `TENANT_BACKUP_S3_BUCKET`, `AWS_STORAGE_BUCKET_NAME` | `s3.bucket` |
/// | `TENANT_BACKUP_S3_REGION`, `AWS_S3_REGION_NAME`, `AWS_REGION`, `AWS_DEFAULT_REGION` | `s3.region` |
/// | `TENANT_BACKUP_S3_ENDPOINT`, `AWS_ENDPOINT_URL_S3`, `AWS_ENDPOINT_URL` | `s3.endpoint` |
/// | `TENANT_BACKUP_S3_PREFIX`, `TENANT_BACKUP_S3_ADDRESSING_STYLE` | `s3.prefix`, `s3.addressing_style` |
/// | `TENANT_BACKUP_S3_CA_BUNDLE`, `AWS_CA_BUNDLE` | `s3.ca_bundle` |
/// | `TENANT_BACKUP_S3_SSE`, `TENANT_BACKUP_S3_KMS_KEY_ID`, `TENANT_BACKUP_S3_STORAGE_CLASS` | `s3.server_side_encryption`, `s3.kms_key_id`, `s3.storage_class` |
/// | `TENANT_BACKUP_SCHEDULE`, `TENANT_BACKUP_TIME_ZONE` | `schedule.cron`, `schedule.time_zone` |
/// | `TENANT_BACKUP_METRICS_LISTEN` | `metrics.listen` (`host:port` or `off`) |
/// | `TENANT_BACKUP_AUDIT_RETENTION_DAYS`, `TENANT_BACKUP_DRILL_CRON` | `audit.retention_days`, `drill.cron` |
/// | `TENANT_BACKUP_API_LISTEN`, `TENANT_BACKUP_API_TOKENS_FILE`, `TENANT_BACKUP_API_TOKEN_QUERY` | `api.listen`, `api.tokens_file`, `api.token_query` |
/// | `TENANT_BACKUP_API_DELETE_POLICY`, `TENANT_BACKUP_API_DELETE_GRACE` | `api.delete_policy`, `api.delete_grace` |
/// | `TENANT_BACKUP_API_TENANT_FROM_HOST`, `TENANT_BACKUP_API_DOMAIN_QUERY` | `api.tenant_from_host`, `api.domain_query` |
/// | `TENANT_BACKUP_API_TRUSTED_PROXIES`, `TENANT_BACKUP_API_FORWARDED_HOST_HEADER` | `api.trusted_proxies` (comma-separated), `api.forwarded_host_header` |
/// | `TENANT_BACKUP_SIGNING_KEY_FILE`, `TENANT_BACKUP_SIGNING_PUBLIC_KEYS` | `signing.key_file`, `signing.public_keys` |
/// | `TENANT_BACKUP_SPOOL_DIRECTORY`, `TENANT_BACKUP_SPOOL_LIMIT` | `restore.spool_directory`, `restore.spool_limit` |
/// | `TENANT_BACKUP_LOG_FORMAT` | `logging.format` |
/// | `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN` | S3 credentials |
///
/// Credential files: `database-url`, `s3-access-key-id`, `s3-secret-access-key`, `s3-session-token`, and
/// `signing-key` (the manifest signing key, used when `signing.key_file` is not set).
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
        for name in names {
            if let value = environment[name], !value.isEmpty { return (name, value) }
        }
        return nil
    }

    private static func list(_ value: String) -> [String] {
        value.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
    }

    private func applyEnvironment(to settings: inout Settings, fileCredentials: S3Credentials?) throws(ConfigError) {
        if let (_, url) = value("TENANT_BACKUP_DATABASE_URL", "DATABASE_URL") { settings.postgres.connectionString = url }
        if let (_, path) = value("TENANT_BACKUP_PG_DUMP") { settings.postgres.pgDumpPath = path }
        if let (_, query) = value("TENANT_BACKUP_TENANT_QUERY") { settings.tenants.query = query }
        if let (_, include) = value("TENANT_BACKUP_INCLUDE") { settings.tenants.include = Self.list(include) }
        if let (_, exclude) = value("TENANT_BACKUP_EXCLUDE") { settings.tenants.exclude = Self.list(exclude) }
        if let (_, shared) = value("TENANT_BACKUP_SHARED_SCHEMAS") { settings.tenants.sharedSchemas = Self.list(shared) }
        if let (_, bucket) = value("TENANT_BACKUP_S3_BUCKET", "AWS_STORAGE_BUCKET_NAME") { settings.s3.bucket = bucket }
        if let (_, region) = value("TENANT_BACKUP_S3_REGION", "AWS_S3_REGION_NAME", "AWS_REGION", "AWS_DEFAULT_REGION") {
            settings.s3.region = region
        }
        if let (name, endpoint) = value("TENANT_BACKUP_S3_ENDPOINT", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL") {
            settings.s3.endpoint = try SettingsValidation.endpoint(endpoint) { message in
                .environment(variable: name, message: message)
            }
        }
        if let (_, prefix) = value("TENANT_BACKUP_S3_PREFIX") { settings.s3.prefix = prefix }
        if let (name, style) = value("TENANT_BACKUP_S3_ADDRESSING_STYLE") {
            guard let parsed = S3AddressingStyle(rawValue: style) else {
                throw .environment(variable: name, message: SettingsValidation.notOneOf(style, S3AddressingStyle.self))
            }
            settings.s3.addressingStyle = parsed
        }
        if let (name, sse) = value("TENANT_BACKUP_S3_SSE") {
            settings.s3.serverSideEncryption = try SettingsValidation.serverSideEncryption(sse, keyId: value("TENANT_BACKUP_S3_KMS_KEY_ID")?.value) { message in
                .environment(variable: name, message: message)
            }
        }
        if let (_, storageClass) = value("TENANT_BACKUP_S3_STORAGE_CLASS") { settings.s3.storageClass = storageClass }
        if let (name, path) = value("TENANT_BACKUP_S3_CA_BUNDLE", "AWS_CA_BUNDLE") {
            settings.s3.caBundle = try SettingsValidation.caBundle(path) { message in .environment(variable: name, message: message) }
        }
        if let (name, compression) = value("TENANT_BACKUP_COMPRESSION") {
            guard let parsed = Compression(rawValue: compression) else {
                throw .environment(variable: name, message: SettingsValidation.notOneOf(compression, Compression.self))
            }
            settings.backup.compression = parsed
        }
        if let (name, concurrency) = value("TENANT_BACKUP_TENANT_CONCURRENCY") {
            guard let number = Int(concurrency), number >= 1, number <= 64 else {
                throw .environment(variable: name, message: "'\(concurrency)' must be a number from 1 to 64")
            }
            settings.backup.tenantConcurrency = number
        }
        // The zone and the expression are independent: either may come alone (the other from the file or the default).
        var zone = settings.daemon.schedule.timeZone
        if let (zoneName, identifier) = value("TENANT_BACKUP_TIME_ZONE") {
            guard let parsed = TimeZone(identifier: identifier) else {
                throw .environment(variable: zoneName, message: "'\(identifier)' is not a time zone such as Europe/Madrid")
            }
            zone = parsed
        }
        let expression = value("TENANT_BACKUP_SCHEDULE")
        if expression != nil || zone != settings.daemon.schedule.timeZone {
            do {
                settings.daemon.schedule = try CronSchedule(expression?.value ?? settings.daemon.schedule.expression, timeZone: zone)
            } catch {
                throw .environment(variable: expression?.name ?? "TENANT_BACKUP_SCHEDULE", message: error.message)
            }
            if let expression, settings.daemon.schedule.next(after: Date()) == nil {
                throw .environment(variable: expression.name, message: SettingsValidation.neverRunsMessage(expression.value))
            }
        }
        if let (name, listen) = value("TENANT_BACKUP_API_LISTEN") {
            settings.api.listen = try SettingsValidation.listenAddress(listen) { message in .environment(variable: name, message: message) }
            if let address = settings.api.listen, !SettingsValidation.isLoopback(address.host) {
                throw .environment(variable: name, message: SettingsValidation.apiLoopbackMessage(listen))
            }
        }
        if let (name, query) = value("TENANT_BACKUP_API_TOKEN_QUERY") {
            guard query.contains("$1") else { throw .environment(variable: name, message: "the query must use $1 for the presented token") }
            settings.api.tokenQuery = query
        }
        if let (name, flag) = value("TENANT_BACKUP_API_TENANT_FROM_HOST") {
            guard let parsed = SettingsValidation.boolean(flag) else { throw .environment(variable: name, message: "'\(flag)' is not true or false") }
            settings.api.tenantFromHost = parsed
        }
        if let (name, query) = value("TENANT_BACKUP_API_DOMAIN_QUERY") {
            guard query.contains("$1") else { throw .environment(variable: name, message: "the query must use $1 for the request's host name") }
            settings.api.domainQuery = query
        }
        if let (_, proxies) = value("TENANT_BACKUP_API_TRUSTED_PROXIES") {
            settings.api.trustedProxies = proxies.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        }
        if let (name, header) = value("TENANT_BACKUP_API_FORWARDED_HOST_HEADER") {
            guard SettingsValidation.isHeaderName(header) else { throw .environment(variable: name, message: "'\(header)' is not an HTTP header name") }
            settings.api.forwardedHostHeader = header
        }
        if let (name, policy) = value("TENANT_BACKUP_API_DELETE_POLICY") {
            guard let parsed = APISettings.DeletePolicy(rawValue: policy) else {
                throw .environment(variable: name, message: SettingsValidation.deletePolicyMessage(policy))
            }
            settings.api.deletePolicy = parsed
        }
        if let (name, grace) = value("TENANT_BACKUP_API_DELETE_GRACE") {
            switch SettingsValidation.parseDuration(grace, example: "30d") {
            case .success(let duration) where duration >= .zero: settings.api.deleteGrace = duration
            case .success: throw .environment(variable: name, message: "'\(grace)' must not be negative")
            case .failure(let problem): throw .environment(variable: name, message: problem.message)
            }
        }
        if let (name, path) = value("TENANT_BACKUP_API_TOKENS_FILE") {
            guard path.hasPrefix("/") else { throw .environment(variable: name, message: "'\(path)' must be an absolute path") }
            settings.api.tokensFile = path
        }
        if let (name, days) = value("TENANT_BACKUP_AUDIT_RETENTION_DAYS") {
            guard let parsed = SettingsValidation.auditRetentionDays(days) else {
                throw .environment(variable: name, message: SettingsValidation.auditRetentionDaysMessage(days))
            }
            settings.audit.retentionDays = parsed
        }
        if let (_, expression) = value("TENANT_BACKUP_DRILL_CRON"), ["off", "none", "false"].contains(expression.lowercased()) {
            settings.drill.schedule = nil
        } else if let (name, expression) = value("TENANT_BACKUP_DRILL_CRON") {
            do {
                settings.drill.schedule = try CronSchedule(expression, timeZone: settings.daemon.schedule.timeZone)
            } catch {
                throw .environment(variable: name, message: error.message)
            }
            if settings.drill.schedule?.next(after: Date()) == nil { throw .environment(variable: name, message: SettingsValidation.neverRunsMessage(expression)) }
        }
        if let (name, listen) = value("TENANT_BACKUP_METRICS_LISTEN") {
            settings.metrics.listen = try SettingsValidation.listenAddress(listen) { message in .environment(variable: name, message: message) }
        }
        if let (name, path) = value("TENANT_BACKUP_SIGNING_KEY_FILE") {
            guard path.hasPrefix("/") else { throw .environment(variable: name, message: "'\(path)' must be an absolute path") }
            settings.signing.keyFile = path
        }
        if let (name, keys) = value("TENANT_BACKUP_SIGNING_PUBLIC_KEYS") {
            let parsed = keys.split(whereSeparator: { $0 == "," || $0 == " " }).map(String.init)
            for key in parsed where TrustedKey(text: key) == nil {
                throw .environment(variable: name, message: SigningError.badPublicKey(key).description)
            }
            settings.signing.publicKeys = parsed
        }
        if let (name, path) = value("TENANT_BACKUP_SPOOL_DIRECTORY") {
            guard path.hasPrefix("/") else { throw .environment(variable: name, message: "'\(path)' must be an absolute path") }
            settings.restore.spoolDirectory = path
        }
        if let (name, limit) = value("TENANT_BACKUP_SPOOL_LIMIT") {
            guard let bytes = SettingsValidation.byteSize(limit).map(Int64.init), bytes > 0 else {
                throw .environment(variable: name, message: "'\(limit)' is not a size such as 64GiB or 500MiB")
            }
            settings.restore.spoolLimit = bytes
        }
        if let (name, format) = value("TENANT_BACKUP_LOG_FORMAT") {
            guard let parsed = LoggingSettings.Format(rawValue: format) else {
                throw .environment(variable: name, message: SettingsValidation.notOneOf(format, LoggingSettings.Format.self))
            }
            settings.logging.format = parsed
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
        if let url = try read("database-url") { settings.postgres.connectionString = url }
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
        ["127.0.0.1", "::1", "[::1]", "localhost"].contains(host.lowercased()) || host.hasPrefix("127.")
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
