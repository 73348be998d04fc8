import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1

/// Temporary credentials of the instance's IAM role from EC2 instance metadata, IMDSv2 only: a session
/// token is obtained with a PUT, then the role and its credentials are read with it. Credentials are cached
/// and fetched again five minutes before they expire.
public struct InstanceMetadataCredentialsProvider: CredentialsProvider {
    /// How long before expiry cached credentials are replaced.
    public static let refreshMargin: TimeInterval = 300

    public let endpoint: String
    let httpClient: HTTPClient
    let cache: Cache
    let now: @Sendable () -> Date

    /// - Parameter environment: `AWS_EC2_METADATA_SERVICE_ENDPOINT` overrides `http://169.254.169.254`.
    public init(environment: [String: String], httpClient: HTTPClient = .shared, now: @escaping @Sendable () -> Date = { Date() }) {
        var endpoint = environment["AWS_EC2_METADATA_SERVICE_ENDPOINT"] ?? "http://169.254.169.254"
        while endpoint.hasSuffix("/") { endpoint.removeLast() }
        self.endpoint = endpoint
        self.httpClient = httpClient
        self.cache = Cache()
        self.now = now
    }

    public var sourceDescription: String { "EC2 instance metadata (\(endpoint))" }

    actor Cache {
        var current: S3Credentials?
        var fetches = 0

        func valid(at date: Date) -> S3Credentials? {
            guard let current else { return nil }
            if let expiration = current.expiration, expiration.timeIntervalSince(date) < InstanceMetadataCredentialsProvider.refreshMargin {
                return nil
            }
            return current
        }

        func store(_ credentials: S3Credentials) {
            current = credentials
            fetches += 1
        }
    }

    /// How many times credentials were fetched (for tests of the refresh).
    public var fetchCount: Int { get async { await cache.fetches } }

    public func credentials() async throws(CredentialsError) -> S3Credentials? {
        if let cached = await cache.valid(at: now()) { return cached }
        guard let token = try await sessionToken() else { return nil }
        guard let roles = try await get("/latest/meta-data/iam/security-credentials/", token: token),
              let role = roles.split(whereSeparator: \.isNewline).first.map(String.init), !role.isEmpty
        else { return nil }
        guard let body = try await get("/latest/meta-data/iam/security-credentials/\(role)", token: token) else {
            throw .unavailable(source: sourceDescription, message: "role \(role) has no credentials")
        }
        struct Document: Decodable {
            let Code: String?
            let AccessKeyId: String?
            let SecretAccessKey: String?
            let Token: String?
            let Expiration: String?
        }
        guard let document = try? JSONDecoder().decode(Document.self, from: Data(body.utf8)) else {
            throw .malformed(source: sourceDescription, message: "the credentials document of role \(role) is not valid JSON")
        }
        guard document.Code == nil || document.Code == "Success", let key = document.AccessKeyId, let secret = document.SecretAccessKey else {
            throw .unavailable(source: sourceDescription, message: "role \(role) answered with code \(document.Code ?? "none")")
        }
        let expiration = document.Expiration.flatMap { try? Date($0, strategy: .iso8601) }
        let credentials = S3Credentials(accessKeyId: key, secretAccessKey: secret, sessionToken: document.Token, expiration: expiration)
        await cache.store(credentials)
        return credentials
    }

    /// The IMDSv2 session token, or `nil` when no metadata service answers (not on EC2).
    private func sessionToken() async throws(CredentialsError) -> String? {
        var request = HTTPClientRequest(url: endpoint + "/latest/api/token")
        request.method = .PUT
        request.headers.add(name: "X-aws-ec2-metadata-token-ttl-seconds", value: "21600")
        request.headers.add(name: "Content-Length", value: "0")
        do {
            let response = try await httpClient.execute(request, timeout: .seconds(2))
            let body = try await response.body.collect(upTo: 64 << 10)
            guard response.status == .ok else { return nil }
            return String(buffer: body)
        } catch {
            return nil
        }
    }

    private func get(_ path: String, token: String) async throws(CredentialsError) -> String? {
        var request = HTTPClientRequest(url: endpoint + path)
        request.headers.add(name: "X-aws-ec2-metadata-token", value: token)
        do {
            let response = try await httpClient.execute(request, timeout: .seconds(2))
            let body = try await response.body.collect(upTo: 64 << 10)
            if response.status == .notFound { return nil }
            guard response.status == .ok else {
                throw CredentialsError.unavailable(source: sourceDescription, message: "GET \(path) answered HTTP \(response.status.code)")
            }
            return String(buffer: body)
        } catch let error as CredentialsError {
            throw error
        } catch {
            throw .unavailable(source: sourceDescription, message: "GET \(path) failed: \(error)")
        }
    }
}
