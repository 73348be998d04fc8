import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import NIOFoundationCompat
import ServiceLifecycle
import Synchronization
import TenantBackup

/// The clinic platform's backup endpoints, served by the daemon: the same paths and JSON as the system this
/// replaces, each a thin caller of ``BackupAccess``. The tenant always comes from the token
/// (`Authorization: Token <token>`), never from the request; errors are `{"error": "..."}` with the status
/// the platform expects, never a stack trace, another clinic's name or a secret.
public struct BackupAPI: Sendable {
    /// The running context (a reload swaps it).
    let context: @Sendable () -> BackupContext
    let authenticator: TokenAuthenticator
    let throttle: AuthenticationThrottle
    let ready: @Sendable () -> Bool
    let logger: Logger

    public init(
        context: @escaping @Sendable () -> BackupContext, authenticator: TokenAuthenticator, throttle: AuthenticationThrottle = AuthenticationThrottle(),
        ready: @escaping @Sendable () -> Bool = { true }, logger: Logger
    ) {
        self.context = context
        self.authenticator = authenticator
        self.throttle = throttle
        self.ready = ready
        self.logger = logger
    }

    /// Every path served and its method, for 405 answers to the others.
    static let routes: [String: String] = [
        "/healthz": "GET", "/api/backups/create": "POST", "/api/backups/cloud/list": "GET", "/api/backups/cloud/download": "POST",
        "/api/backups/cloud/delete": "DELETE", "/api/backups/cloud/get-url": "POST", "/api/auditlog": "GET",
    ]

    /// The largest request body accepted (413 beyond).
    public static let maximumBody = 64 * 1024

    /// The HTTP application, listening on `host:port` (the daemon adds it to its service group). An address
    /// it cannot listen on fails the daemon with an error naming `api.listen`.
    public func application(host: String, port: Int) -> some Service {
        let listening = ListeningFlag()
        // A client that never finishes its request (slow headers) is cut off after 30 s without one; a
        // response being written (a long download) is not idle.
        let application = Application(
            router: router(), server: .http1(configuration: .init(idleTimeout: .seconds(30))),
            configuration: .init(address: .hostname(host, port: port), serverName: nil),
            onServerRunning: { _ in listening.value.withLock { $0 = true } }, logger: logger)
        return ListeningApplication(application: application, address: "\(host):\(port)", listening: listening)
    }

    func router() -> Router<APIRequestContext> {
        let router = Router(context: APIRequestContext.self)
        router.middlewares.add(JSONErrorMiddleware(logger: logger))
        router.get("healthz") { _, _ -> Response in
            ready() ? json(OldAPI.HealthAnswer(status: "ok")) : json(OldAPI.HealthAnswer(status: "starting"), status: .serviceUnavailable)
        }
        router.post("api/backups/create") { request, context in try await authenticated(request, context) { access, tenant in
            try await create(request, access: access, tenant: tenant)
        } }
        router.get("api/backups/cloud/list") { request, context in try await authenticated(request, context) { access, tenant in
            try await list(access: access, tenant: tenant)
        } }
        router.post("api/backups/cloud/download") { request, context in try await authenticated(request, context) { access, tenant in
            let key = try await Self.key(from: request, context: context, access: access)
            return try await download(access: access, tenant: tenant, key: key, format: try Self.format(request))
        } }
        router.delete("api/backups/cloud/delete") { request, context in try await authenticated(request, context) { access, tenant in
            let key = try await Self.key(from: request, context: context, access: access)
            let api = access.context.settings.api
            let deletion = try await Self.calling { () throws(AccessError) in
                try await access.softDelete(tenant: tenant, key: key, policy: api.deletePolicy, grace: api.deleteGrace)
            }
            return json(OldAPI.DeleteAnswer(message: "Backup deleted", s3Key: deletion.key, purgeAfter: BackupAccess.oldAPITime(deletion.purgeAfter)))
        } }
        router.post("api/backups/cloud/get-url") { request, context in try await authenticated(request, context) { access, tenant in
            let body = try await Self.object(from: request, context: context)
            let key = try Self.wellFormedKey(try Self.string(body, "s3_key"), prefix: access.context.settings.s3.prefix)
            let expiration = try Self.expiration(body["expiration"])
            let presigned = try await Self.calling { () throws(AccessError) in
                try await access.presign(tenant: tenant, .key(key), expiresIn: expiration, vouchedOnly: true)
            }
            return json(presigned.oldAPIAnswer)
        } }
        router.get("api/auditlog") { request, context in try await authenticated(request, context) { access, tenant in
            try await auditLog(request, access: access, tenant: tenant)
        } }
        return router
    }

    // MARK: - Authentication

    /// Runs `body` for the token's tenant, as that token; 401 without a known token (DRF's words), 429 once
    /// failures pile up.
    ///
    /// A valid token always works, from any source: behind the reverse proxy every clinic comes from one
    /// address, and a guesser must not lock the others out. So failures are counted three ways: requests
    /// without a token per address (apart), bad tokens per address, and bad tokens per token prefix (its first
    /// 8 characters). An address over its limit still has its tokens checked (a valid one passes; a bad one
    /// gets 429, not 401); only a prefix over its limit, someone retrying one bad token, skips the platform's
    /// token query (a database round trip), and our own tokens are still checked.
    func authenticated(
        _ request: Request, _ context: APIRequestContext, _ body: (BackupAccess, String) async throws -> Response
    ) async throws -> Response {
        let address = context.remoteAddress
        guard let presented = TokenAuthenticator.token(fromHeader: request.headers[.authorization]) else {
            let anonymous = "anonymous " + address
            let limited = throttle.isLimited(anonymous)
            throttle.recordFailure(anonymous)
            if limited { throw APIError.throttled(seconds: Int(throttle.window)) }
            throw APIError.notAuthenticated(request.headers[.authorization] == nil ? "Authentication credentials were not provided." : "Invalid token header.")
        }
        let prefix = "prefix " + presented.prefix(8)
        let prefixLimited = throttle.isLimited(prefix)
        func invalid() -> APIError {
            let addressLimited = throttle.isLimited(address)
            throttle.recordFailure(address)
            throttle.recordFailure(prefix)
            if addressLimited || prefixLimited { return APIError.throttled(seconds: Int(throttle.window)) }
            return APIError.notAuthenticated("Invalid token.")
        }
        let running = self.context()
        let who: Authenticated
        if running.settings.api.tenantFromHost {
            // As django-tenants: the clinic is the host's; the token must be valid for that clinic.
            let api = running.settings.api
            let forwarded = HTTPField.Name(api.forwardedHostHeader).flatMap { request.headers[$0] }
            guard let host = TokenAuthenticator.requestHost(
                host: request.head.authority, forwarded: forwarded, remoteAddress: address, trustedProxies: api.trustedProxies),
                let clinic = await authenticator.clinic(forHost: host)
            else {
                throw APIError(.notFound, "no clinic at this host name")
            }
            switch await authenticator.authenticate(presented, for: clinic, queryingDatabase: !prefixLimited) {
            case .authenticated(let authenticated): who = authenticated
            case .unknown: throw invalid()
            case .notForThisClinic(let actor):
                logger.notice("API token refused: valid, but not for the clinic of this host", metadata: ["tenant": "\(clinic)", "actor": "\(actor)"])
                throw APIError.permissionDenied
            }
        } else {
            guard let authenticated = await authenticator.authenticate(presented, queryingDatabase: !prefixLimited) else { throw invalid() }
            who = authenticated
        }
        var access = BackupAccess(context: running, actor: who.actor)
        access.audience = .clinic
        return try await body(access, who.tenant)
    }

    // MARK: - Endpoints

    func create(_ request: Request, access: BackupAccess, tenant: String) async throws -> Response {
        let download = try Self.flag(request.uri.queryParameters.get("download"), name: "download") ?? false
        let cloudOnly = try Self.flag(request.uri.queryParameters.get("cloud_only"), name: "cloud_only") ?? true
        let format = try Self.format(request)
        let stored = try await Self.calling { () throws(AccessError) in try await access.backupNow(tenant: tenant) }
        if download || !cloudOnly {
            return try await self.download(access: access, tenant: tenant, key: stored.key, format: format)
        }
        return json(OldAPI.CreateAnswer(
            message: "Backup created",
            backupInfo: .init(filename: stored.fileName, s3Key: stored.key, size: stored.size, bucket: stored.bucket, url: stored.url)))
    }

    func list(access: BackupAccess, tenant: String) async throws -> Response {
        let listing = try await Self.calling { () throws(AccessError) in try await access.list(tenant: tenant) }
        return json(listing.oldAPIAnswer)
    }

    /// The backup as the body, streamed (bounded memory), with its length and name: the plain SQL dump, as the
    /// old system served it, or with `?format=stored` the stored object and its SHA-256. The end of the body
    /// is held back until the object verified.
    func download(access: BackupAccess, tenant: String, key: String, format: BackupAccess.DownloadFormat) async throws -> Response {
        let prepared = try await Self.calling { () throws(AccessError) in try await access.prepareDownload(tenant: tenant, .key(key), format: format) }
        var headers: HTTPFields = [
            .contentType: prepared.plain ? "application/sql" : "application/octet-stream", .contentDisposition: "attachment; filename=\"\(prepared.fileName)\"",
        ]
        if !prepared.plain { headers[Self.checksumHeader] = prepared.sha256 }
        let logger = self.logger
        let body = ResponseBody(contentLength: Int(prepared.size)) { writer in
            do {
                try await prepared.stream { buffer in try await writer.write(buffer) }
                try await writer.finish(nil)
            } catch {
                // The headers are gone: all that is left is to cut the connection short, so the client never
                // takes a partial or unverified body for the backup.
                logger.error("download failed after its headers were sent", metadata: ["tenant": "\(tenant)", "s3_key": "\(prepared.key)", "error": "\(error)"])
                throw error
            }
        }
        return Response(status: .ok, headers: headers, body: body)
    }

    func auditLog(_ request: Request, access: BackupAccess, tenant: String) async throws -> Response {
        let pageText = request.uri.queryParameters.get("page").flatMap { $0.isEmpty ? nil : $0 } ?? "1"
        guard pageText.allSatisfy({ $0.isASCII && $0.isNumber }), let page = Int(pageText), page >= 1, page <= 1_000_000 else {
            throw APIError(.badRequest, "page must be a whole number from 1")
        }
        let size = 50
        let (count, records) = try await Self.calling { () throws(AccessError) in try await access.auditPage(tenant: tenant, page: page, size: size) }
        if page > 1, (page - 1) * size >= count { throw APIError(.notFound, "invalid page") }
        let prefix = access.context.settings.s3.prefix
        return json(OldAPI.AuditLogAnswer(
            count: count, page: page, pageSize: size, next: page * size < count ? page + 1 : nil, previous: page > 1 ? page - 1 : nil,
            results: records.map { OldAPI.AuditLogAnswer.Entry($0.clinicView(prefix: prefix)) }))
    }

    // MARK: - Request parsing

    static let checksumHeader = HTTPField.Name("X-Backup-SHA256")!

    /// The JSON object of the body (at most 64 KiB).
    static func object(from request: Request, context: APIRequestContext) async throws -> [String: Any] {
        var request = request
        let buffer: ByteBuffer
        do {
            buffer = try await request.collectBody(upTo: maximumBody)
        } catch {
            throw APIError(.contentTooLarge, "the body is larger than \(maximumBody / 1024) KiB")
        }
        guard buffer.readableBytes > 0 else { throw APIError(.badRequest, "the body must be a JSON object") }
        guard let object = (try? JSONSerialization.jsonObject(with: Data(buffer: buffer), options: [])) as? [String: Any] else {
            throw APIError(.badRequest, "the body must be a JSON object")
        }
        return object
    }

    static func key(from request: Request, context: APIRequestContext, access: BackupAccess) async throws -> String {
        try wellFormedKey(try string(try await object(from: request, context: context), "s3_key"), prefix: access.context.settings.s3.prefix)
    }

    /// What the API takes as `s3_key` before the library's resolver (``BackupAccess/resolve(_:tenant:prefix:)``)
    /// judges it: a string of at most 1024 characters without control characters (the OpenAPI document's
    /// `Key`), else 400. The resolver alone decides the rest, as for every other reader: a key of another
    /// clinic, a shared dump or an audit record is 403; anything that names no backup of this clinic (another
    /// shape, `..`, a manifest, a key outside `s3.prefix`) is 404. `prefix` is only for the message.
    static func wellFormedKey(_ key: String, prefix: String) throws -> String {
        guard key.unicodeScalars.count <= 1024, !key.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else {
            throw APIError(.badRequest, "s3_key is not a backup key (\(prefix)backups/<clinic>/backup-sql-<clinic>-YYYY-MM-DD-HHMMSS\(BackupFormat(dump: .plain, compression: .zstd).suffix))")
        }
        return key
    }

    static func string(_ object: [String: Any], _ field: String) throws -> String {
        guard let value = object[field] else { throw APIError(.badRequest, "\(field) is required") }
        guard let text = value as? String, !(value is NSNumber) else { throw APIError(.badRequest, "\(field) must be a string") }
        guard !text.isEmpty else { throw APIError(.badRequest, "\(field) must not be empty") }
        return text
    }

    /// `expiration`: absent (3600), or a whole number of seconds from 1 to 604800; a float, a string, a boolean
    /// or anything out of range is 400.
    static func expiration(_ value: Any?) throws -> Int {
        guard let value, !(value is NSNull) else { return 3600 }
        // JSON numbers arrive as NSNumber; a boolean is one too, and a float or 1e3 has objCType "d".
        guard let number = value as? NSNumber, !String(describing: type(of: value)).contains("Boolean"),
              ["i", "q", "l", "s", "I", "Q", "L", "S"].contains(String(cString: number.objCType))
        else { throw APIError(.badRequest, "expiration must be a whole number of seconds") }
        let seconds = number.int64Value
        guard BackupAccess.expiries.contains(Int(clamping: seconds)) else {
            throw APIError(.badRequest, "expiration must be a whole number of seconds from 1 to \(BackupAccess.maximumExpiry)")
        }
        return Int(seconds)
    }

    /// `?format=`: `sql` (the default: the plain dump) or `stored` (the object as stored, compressed).
    static func format(_ request: Request) throws -> BackupAccess.DownloadFormat {
        switch request.uri.queryParameters.get("format") {
        case nil, "sql": return .plain
        case "stored": return .stored
        default: throw APIError(.badRequest, "format must be sql or stored")
        }
    }

    static func flag(_ text: String?, name: String) throws -> Bool? {
        guard let text else { return nil }
        switch text.lowercased() {
        case "true", "1", "yes": return true
        case "false", "0", "no": return false
        default: throw APIError(.badRequest, "\(name) must be true or false")
        }
    }

    /// An access, with its refusals turned into statuses and words fit for the platform (no other clinic's
    /// name: the key the client sent is not repeated).
    static func calling<T>(_ body: () async throws(AccessError) -> T) async throws -> T {
        do {
            return try await body()
        } catch {
            throw APIError(error)
        }
    }
}

/// A JSON answer.
/// A JSON answer: one of the old API's types (``OldAPI``), as the CLI's `--json` prints it too.
func json(_ value: some Encodable, status: HTTPResponse.Status = .ok) -> Response {
    let data = (try? OldAPI.encoded(value)) ?? Data("{}".utf8)
    return Response(status: status, headers: [.contentType: "application/json"], body: ResponseBody(byteBuffer: ByteBuffer(data: data)))
}

/// The API's application as the daemon runs it: a failure before it listens (the port is taken, the address
/// is not this host's) says which setting to change.
struct ListeningApplication<Wrapped: ApplicationProtocol>: Service {
    let application: Wrapped
    let address: String
    let listening: ListeningFlag

    func run() async throws {
        do {
            try await application.run()
        } catch {
            if listening.value.withLock({ $0 }) { throw error }
            throw APIListenError(message: "cannot listen on \(address) for the API (\(error)); change api.listen (TENANT_BACKUP_API_LISTEN) or set it to off")
        }
    }
}

/// Whether the API's server is listening (set once it is).
final class ListeningFlag: Sendable {
    let value = Mutex(false)
}

/// The API could not start listening.
public struct APIListenError: Error, CustomStringConvertible {
    public let message: String
    public var description: String { message }
}
