import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import TenantBackup

/// An answer other than success: a status and a message for the platform, sent as `{"error": "..."}`, or
/// as Django REST framework words its authentication and throttling answers, `{"detail": "..."}`.
struct APIError: Error {
    let status: HTTPResponse.Status
    let message: String
    var headers: HTTPFields = [:]
    /// Sent as `{"detail": ...}`, DRF's shape.
    var drf = false

    init(_ status: HTTPResponse.Status, _ message: String, headers: HTTPFields = [:], drf: Bool = false) {
        self.status = status
        self.message = message
        self.headers = headers
        self.drf = drf
    }

    /// DRF's `NotAuthenticated` / `AuthenticationFailed` with `TokenAuthentication`: 401 and `WWW-Authenticate: Token`.
    static func notAuthenticated(_ detail: String) -> APIError {
        APIError(.unauthorized, detail, headers: [.wwwAuthenticate: "Token"], drf: true)
    }

    /// DRF's `PermissionDenied`: authenticated, but not allowed here.
    static let permissionDenied = APIError(.forbidden, "You do not have permission to perform this action.", drf: true)

    /// DRF's `Throttled`.
    static func throttled(seconds: Int) -> APIError {
        APIError(.tooManyRequests, "Request was throttled. Expected available in \(seconds) seconds.", headers: [.retryAfter: "\(seconds)"], drf: true)
    }

    /// An access that did not happen, worded for the API: the key the client sent is never repeated (it may
    /// name another clinic), nor is anything of the bucket's layout beyond the client's own folder.
    init(_ error: AccessError) {
        switch error.kind {
        // Any string that names no backup of this clinic (another shape, `..`, a manifest, outside s3.prefix) is not found.
        case .invalidKey: self.init(.notFound, "no such backup")
        case .foreignKey: self.init(.forbidden, "s3_key is not one of this clinic's backups")
        case .noSuchBackup, .noBackups: self.init(.notFound, "no such backup")
        case .unknownTenant: self.init(.notFound, "this clinic has no backups")
        case .protectedBackup(_, let newestVerified):
            self.init(.conflict, newestVerified ? "the newest verified backup is kept" : "the newest backup is kept")
        case .tenantBusy: self.init(.conflict, "a backup, prune or delete of this clinic is already running; try again when it is done")
        case .invalidExpiry: self.init(.badRequest, "expiration must be a whole number of seconds from 1 to \(BackupAccess.maximumExpiry)")
        // A backup that fails its check is not verified: 403, as every backup the API does not serve.
        case .verificationFailed:
            self.init(.forbidden, "the stored backup does not match its manifest: it is not served; the operator can check it with tenant-backup verify")
        case .keptByFloor(_, let rules):
            self.init(
                .conflict,
                "this backup is kept by the retention policy (\(rules.map(\.rawValue).joined(separator: ", "))): the clinic cannot delete it; ask the operator")
        case .deletesNotAllowed: self.init(.forbidden, "backups are not deleted through the API here; ask the operator")
        case .notDeleted: self.init(.notFound, "no such backup")
        case .notServed:
            self.init(.forbidden, "this backup is not verified (no trusted signature, or found broken): it is not served; the operator can check it with tenant-backup verify")
        case .auditFailed, .storage, .database, .configuration, .codec, .output, .restoreRefused, .restoreFailed, .backupFailed:
            self.init(.serviceUnavailable, "the backup service cannot do this now; try again later")
        }
    }
}

/// Every failure becomes a JSON body with its status; anything unexpected is a 500 with no detail, logged.
struct JSONErrorMiddleware: RouterMiddleware {
    typealias Context = APIRequestContext
    let logger: Logger

    func handle(_ request: Request, context: APIRequestContext, next: (Request, APIRequestContext) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as APIError {
            var answer = error.drf ? json(OldAPI.DetailAnswer(detail: error.message), status: error.status) : json(OldAPI.ErrorAnswer(error: error.message), status: error.status)
            for field in error.headers { answer.headers.append(field) }
            return answer
        } catch let error as any HTTPResponseError {
            var path = request.uri.path
            while path.count > 1, path.hasSuffix("/") { path.removeLast() }
            if error.status == .notFound, let allowed = BackupAPI.routes[path] {
                var answer = json(OldAPI.ErrorAnswer(error: "method not allowed; use \(allowed)"), status: .methodNotAllowed)
                answer.headers[.allow] = allowed
                return answer
            }
            let status = error.status
            let message: String
            switch status {
            case .notFound: message = "no such endpoint"
            case .methodNotAllowed: message = "method not allowed"
            case .contentTooLarge: message = "the body is larger than \(BackupAPI.maximumBody / 1024) KiB"
            default: message = status.reasonPhrase.isEmpty ? "request refused" : status.reasonPhrase.lowercased()
            }
            return json(OldAPI.ErrorAnswer(error: message), status: status.code >= 500 ? .internalServerError : status)
        } catch {
            logger.error("API request failed", metadata: ["path": "\(request.uri.path)", "error": "\(error)"])
            return json(OldAPI.ErrorAnswer(error: "internal error"), status: .internalServerError)
        }
    }
}

/// The request context: the client's address, and the 64 KiB body limit.
struct APIRequestContext: RequestContext {
    var coreContext: CoreRequestContextStorage
    let remoteAddress: String

    init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        remoteAddress = source.channel.remoteAddress?.ipAddress ?? "unknown"
    }

    var maxUploadSize: Int { BackupAPI.maximumBody }
}
