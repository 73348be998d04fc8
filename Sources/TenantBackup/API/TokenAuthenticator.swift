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

    /// Writes a token's last use to the file, at most once a minute per token (`token list` shows it). A file
    /// the daemon may not write (no StateDirectory) costs one warning, never a request.
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
                try file.update { tokens in
                    if let index = tokens.firstIndex(where: { $0.id == id }) { tokens[index].lastUsedAt = now }
                }
            } catch {
                logger.warning("a token's last use could not be written", metadata: ["token_id": "\(id)", "error": "\(error)"])
            }
        }
    }

    /// The tenant `presented` opens, or `nil` (unknown, revoked, or the platform's query found no single row).
    public func authenticate(_ presented: String, queryingDatabase: Bool = true) async -> Authenticated? {
        if let token = TokenFile.match(presented, in: currentTokens()) {
            recordUse(of: token.id)
            return Authenticated(tenant: token.tenant, actor: "token:\(token.id)")
        }
        let running = settings()
        guard let tokenQuery = running.api.tokenQuery, queryingDatabase else { return nil }
        let (connectionString, environment) = (running.postgres.connectionString, self.environment)
        do {
            let rows = try await Blocking.run { () throws -> [[String?]] in
                try PostgresConnection(connectionString: connectionString, applicationName: "tenant-backup api", environment: environment)
                    .query(tokenQuery, [presented], purpose: "api.token_query").rows
            }
            guard rows.count == 1, let schema = rows[0].first ?? nil, !schema.isEmpty else { return nil }
            // A stable, non-secret name for the token: two people's accesses can be told apart.
            let id = String(TokenFile.hash(presented).prefix(12))
            if rows[0].count > 1, let user = rows[0][1], !user.isEmpty {
                return Authenticated(tenant: schema, actor: "platform:\(user) (token \(id))")
            }
            return Authenticated(tenant: schema, actor: "platform-token:\(id)")
        } catch {
            logger.error("api.token_query failed; the token is refused", metadata: ["error": "\(error)"])
            return nil
        }
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
