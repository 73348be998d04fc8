import Foundation
import Logging
import Synchronization

/// Who a presented API token is: the one tenant it opens, and the actor its accesses are audited as.
public struct Authenticated: Sendable, Equatable {
    public let tenant: String
    /// `token:<id>` for our own tokens; for the platform's, `platform-token:<first 12 hex of its SHA-256>`, or
    /// `platform:<user> (token <hash>)` when the token query names the user in a second column.
    public let actor: String

    public init(tenant: String, actor: String) {
        self.tenant = tenant
        self.actor = actor
    }
}

/// Turns an `Authorization: Token <token>` into a tenant, from either source:
/// - our tokens file (``TokenFile``): reread whenever its modification time changes, so `token revoke` takes
///   effect with the next request, without a restart; looked up by the token's SHA-256;
/// - the platform's own tokens: `api.token_query` (`$1` = the presented token) run against the clinic
///   database, which must return exactly one row, the tenant's schema name. Zero or several rows: unknown.
///
/// The tenant always comes from the token, never from the request.
public final class TokenAuthenticator: Sendable {
    /// The running settings (a reload swaps them): the tokens file, the token query and the database are
    /// read from them at each request.
    let settings: @Sendable () -> Settings
    var file: TokenFile { TokenFile(path: settings().api.tokensFile) }
    let environment: [String: String]
    let logger: Logger
    private let cache = Mutex<(path: String, modified: Date?, size: Int, tokens: [String: APIToken])>(("", nil, -1, [:]))
    /// When each token's last use was last written to the file.
    private let lastWritten = Mutex<[String: Date]>([:])

    public convenience init(settings: Settings, environment: [String: String], logger: Logger) {
        self.init(settings: { settings }, environment: environment, logger: logger)
    }

    public init(settings: @escaping @Sendable () -> Settings, environment: [String: String], logger: Logger) {
        self.settings = settings
        self.environment = environment
        self.logger = logger
    }

    /// The value of an `Authorization` header as DRF's TokenAuthentication writes it: `Token <token>`.
    public static func token(fromHeader header: String?) -> String? {
        guard let header else { return nil }
        let parts = header.split(separator: " ", omittingEmptySubsequences: true)
        guard parts.count == 2, parts[0].lowercased() == "token", !parts[1].isEmpty, parts[1].count <= 512 else { return nil }
        return String(parts[1])
    }

    /// Our tokens by their SHA-256, reread when the file changed (by its modification time and size).
    func currentTokens() -> [String: APIToken] {
        let file = self.file
        let attributes = try? FileManager.default.attributesOfItem(atPath: file.path)
        let modified = attributes?[.modificationDate] as? Date
        let size = (attributes?[.size] as? NSNumber)?.intValue ?? -1
        if let cached = cache.withLock({ $0.path == file.path && $0.modified == modified && $0.size == size ? $0.tokens : nil }) { return cached }
        let tokens: [String: APIToken]
        do {
            tokens = TokenFile.index(try file.load())
        } catch {
            logger.error("the API tokens file cannot be used; its tokens are refused until it is fixed", metadata: ["error": "\(error)"])
            tokens = [:]
        }
        cache.withLock { $0 = (file.path, modified, size, tokens) }
        return tokens
    }

    /// Writes a token's last use beside the file (``TokenFile/lastUsedPath``), at most once a minute per token
    /// (`token list` shows it). A place the daemon may not write (no StateDirectory) costs a warning, never a
    /// request.
    func recordUse(of id: String, now: Date = Date()) {
        let due = lastWritten.withLock { written -> Bool in
            if let last = written[id], now.timeIntervalSince(last) < 60 { return false }
            written[id] = now
            return true
        }
        guard due else { return }
        let file = self.file
        let logger = self.logger
        Task.detached {
            do {
                try file.recordLastUse(of: id, at: now)
            } catch {
                logger.warning("a token's last use could not be written", metadata: ["token_id": "\(id)", "error": "\(error)"])
            }
        }
    }

    /// The tenant `presented` opens, or `nil` (unknown, revoked, or the platform's query found no single row).
    public func authenticate(_ presented: String, queryingDatabase: Bool = true) async -> Authenticated? {
        if let token = fileToken(presented) { return Authenticated(tenant: token.tenant, actor: "token:\(token.id)") }
        guard let tokenQuery = settings().api.tokenQuery, queryingDatabase,
              let rows = await query(tokenQuery, [presented], purpose: "api.token_query"), let schema = Self.single(rows)
        else { return nil }
        return Self.platform(presented, tenant: schema, row: rows[0])
    }

    /// How a token stands with the clinic a request's host name maps to (`api.tenant_from_host`).
    public enum ClinicAuthentication: Sendable, Equatable {
        /// Valid for this clinic.
        case authenticated(Authenticated)
        /// No such token (or revoked, or its user inactive): 401.
        case unknown
        /// A valid token, but not for this clinic (another clinic's, or not an admin here): 403.
        case notForThisClinic(actor: String)
    }

    /// ``authenticate(_:queryingDatabase:)`` for the clinic `schema` the request's host maps to: one of our
    /// tokens must be that clinic's; the platform's token query runs with `$1` = the token and `$2` = the
    /// schema and must return exactly one row (the token's active user): its first column the schema when the
    /// user may manage this clinic's backups, `NULL` when not (403); no row is an unknown token (401).
    public func authenticate(_ presented: String, for schema: String, queryingDatabase: Bool = true) async -> ClinicAuthentication {
        if let token = fileToken(presented) {
            let actor = "token:\(token.id)"
            return token.tenant == schema ? .authenticated(Authenticated(tenant: schema, actor: actor)) : .notForThisClinic(actor: actor)
        }
        guard let tokenQuery = settings().api.tokenQuery, queryingDatabase,
              let rows = await query(tokenQuery, [presented, schema], purpose: "api.token_query"), rows.count == 1
        else { return .unknown }
        let who = Self.platform(presented, tenant: schema, row: rows[0])
        return rows[0].first == schema ? .authenticated(who) : .notForThisClinic(actor: who.actor)
    }

    /// The clinic (schema) the host name maps to through `api.domain_query`, or `nil` (none, several, or the
    /// query failed).
    public func clinic(forHost host: String) async -> String? {
        guard let rows = await query(settings().api.domainQuery, [host], purpose: "api.domain_query") else { return nil }
        return Self.single(rows)
    }

    /// One of our tokens, its use recorded; `nil` for a token the file does not hold.
    func fileToken(_ presented: String) -> APIToken? {
        guard let token = TokenFile.match(presented, in: currentTokens()) else { return nil }
        recordUse(of: token.id)
        return token
    }

    /// The first column of a query's only row, when there is exactly one row and that value is not empty.
    static func single(_ rows: [[String?]]) -> String? {
        guard rows.count == 1, let value = rows[0].first ?? nil, !value.isEmpty else { return nil }
        return value
    }

    /// A platform token's actor: a stable, non-secret name for the token (two people's accesses can be told
    /// apart), with the user's name when the query's second column gives it.
    static func platform(_ presented: String, tenant: String, row: [String?]) -> Authenticated {
        let id = String(TokenFile.hash(presented).prefix(12))
        if row.count > 1, let user = row[1], !user.isEmpty {
            return Authenticated(tenant: tenant, actor: "platform:\(user) (token \(id))")
        }
        return Authenticated(tenant: tenant, actor: "platform-token:\(id)")
    }

    /// Runs one of the API's queries against the clinic database; `nil` when it fails (logged: the request is
    /// refused).
    func query(_ sql: String, _ parameters: [String], purpose: String) async -> [[String?]]? {
        let running = settings()
        let (connectionString, environment) = (running.postgres.connectionString, self.environment)
        do {
            return try await Blocking.run { () throws -> [[String?]] in
                try PostgresConnection(connectionString: connectionString, applicationName: "tenant-backup api", environment: environment)
                    .query(sql, parameters, purpose: purpose).rows
            }
        } catch {
            logger.error("\(purpose) failed; the request is refused", metadata: ["error": "\(error)"])
            return nil
        }
    }

    /// The host name a request asked for: from `forwarded` (the first of its comma-separated values) when the
    /// request comes from a trusted proxy, else from the `Host` header; lower case, without port or final dot.
    /// `nil` when there is none, or it is not a host name.
    public static func requestHost(host: String?, forwarded: String?, remoteAddress: String, trustedProxies: [String]) -> String? {
        let fromProxy = trustedProxies.contains(remoteAddress)
        let forwardedHost = fromProxy ? forwarded?.split(separator: ",").first.map { $0.trimmingCharacters(in: .whitespaces) } : nil
        guard var name = (forwardedHost?.isEmpty == false ? forwardedHost : host)?.lowercased() else { return nil }
        if name.hasPrefix("[") {
            // An IPv6 literal, [::1]:8080: no clinic has one as its domain, but it is a host.
            guard let end = name.firstIndex(of: "]") else { return nil }
            name = String(name[...end])
        } else if let colon = name.lastIndex(of: ":") {
            guard name[name.index(after: colon)...].allSatisfy(\.isNumber) else { return nil }
            name = String(name[..<colon])
        }
        while name.hasSuffix(".") { name.removeLast() }
        guard !name.isEmpty, name.utf8.count <= 253,
              name.unicodeScalars.allSatisfy({ $0.isASCII && (CharacterSet.alphanumerics.contains($0) || "-.[]:_".unicodeScalars.contains($0)) })
        else { return nil }
        return name
    }
}

/// Failed authentications per client address: after `limit` failures within `window`, that address gets 429
/// until the window has passed. A success does not clear it (no oracle for guessing).
public final class AuthenticationThrottle: Sendable {
    /// The running limit (`api.failed_authentications_per_minute`; a reload may change it).
    public var limit: Int { currentLimit() }
    public let window: TimeInterval
    private let currentLimit: @Sendable () -> Int
    private let failures = Mutex<[String: [Date]]>([:])

    public convenience init(limit: Int = 10, window: TimeInterval = 60) {
        self.init(limit: { limit }, window: window)
    }

    public init(limit: @escaping @Sendable () -> Int, window: TimeInterval = 60) {
        self.currentLimit = limit
        self.window = window
    }

    /// Whether `address` is locked out now.
    public func isLimited(_ address: String, now: Date = Date()) -> Bool {
        let limit = self.limit
        return failures.withLock { table in
            let recent = (table[address] ?? []).filter { now.timeIntervalSince($0) < window }
            table[address] = recent.isEmpty ? nil : recent
            return recent.count >= limit
        }
    }

    /// Records a failed authentication from `address`.
    public func recordFailure(_ address: String, now: Date = Date()) {
        let limit = self.limit
        failures.withLock { table in
            var recent = (table[address] ?? []).filter { now.timeIntervalSince($0) < window }
            recent.append(now)
            table[address] = Array(recent.suffix(limit * 2))
            // Bound the table: a scan from many addresses must not grow it forever.
            if table.count > 10_000 { table = table.filter { !$0.value.isEmpty && now.timeIntervalSince($0.value.last!) < window } }
        }
    }
}
