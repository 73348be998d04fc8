import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import NIOFoundationCompat
import TenantBackup
import Testing

@testable import TenantBackupAPI

/// The API's statuses and bodies in process (Hummingbird's router tests): everything decided before a
/// tenant's backups are touched — authentication as DRF answers it, throttling, request parsing, unknown
/// paths and methods — decoded with the same `Codable` types the API answers with. The live daemon over real
/// HTTP, S3 and PostgreSQL is `IntegrationTests/HTTPAPITests` (and schemathesis, `Tests/API`).
@Suite struct RouterTests {
    struct Fixture {
        let api: BackupAPI
        let token: String
        let tokensFile: String
    }

    func withAPI(limit: Int = 10, ready: Bool = true, _ body: (Fixture) async throws -> Void) async throws {
        let tokensFile = FileManager.default.temporaryDirectory.appendingPathComponent("router-tokens-\(UUID().uuidString).json").path
        defer { for suffix in ["", ".lock", ".last-used"] { try? FileManager.default.removeItem(atPath: tokensFile + suffix) } }
        let token = try TokenFile(path: tokensFile).create(tenant: "bienestar", note: "router test").token
        let settings = try SettingsLoader(environment: ["TENANT_BACKUP_API_TOKENS_FILE": tokensFile], defaultConfigPath: "/nonexistent").load(yaml: "")
        let logger = Logger(label: "router-tests")
        let context = BackupContext(settings: settings, environment: [:], logger: logger)
        let api = BackupAPI(
            context: { context }, authenticator: TokenAuthenticator(settings: { settings }, environment: [:], logger: logger),
            throttle: AuthenticationThrottle(limit: { limit }), ready: { ready }, logger: logger)
        try await body(Fixture(api: api, token: token, tokensFile: tokensFile))
    }

    func test(_ fixture: Fixture, _ body: @Sendable (any TestClientProtocol) async throws -> Void) async throws {
        let app = Application(router: fixture.api.router())
        try await app.test(.router, body)
    }

    static func decode<T: Decodable>(_ type: T.Type, _ response: TestResponse) throws -> T {
        try JSONDecoder().decode(T.self, from: Data(buffer: response.body))
    }

    @Test func healthzSaysWhetherTheDaemonIsReady() async throws {
        for ready in [true, false] {
            try await withAPI(ready: ready) { fixture in
                try await test(fixture) { client in
                    let response = try await client.execute(uri: "/healthz", method: .get)
                    #expect(response.status == (ready ? .ok : .serviceUnavailable))
                    #expect(try Self.decode(OldAPI.HealthAnswer.self, response).status == (ready ? "ok" : "starting"))
                    #expect(response.headers[.contentType] == "application/json")
                }
            }
        }
    }

    @Test func authenticationFailsAsDjangoRESTFrameworkAnswers() async throws {
        try await withAPI { fixture in
            try await test(fixture) { client in
                for (headers, detail) in [
                    (HTTPFields(), "Authentication credentials were not provided."), ([.authorization: "Bearer abc"], "Invalid token header."),
                    ([.authorization: "Token"], "Invalid token header."), ([.authorization: "Token not-a-token"], "Invalid token."),
                ] as [(HTTPFields, String)] {
                    let response = try await client.execute(uri: "/api/backups/cloud/list/", method: .get, headers: headers)
                    #expect(response.status == .unauthorized)
                    #expect(response.headers[.wwwAuthenticate] == "Token")
                    #expect(try Self.decode(OldAPI.DetailAnswer.self, response).detail == detail)
                }
            }
        }
    }

    @Test func aGuesserIsThrottledAndAValidTokenStillPasses() async throws {
        try await withAPI(limit: 3) { fixture in
            let token = fixture.token
            try await test(fixture) { client in
                var statuses: [HTTPResponse.Status] = []
                for guess in 0..<5 {
                    statuses.append(try await client.execute(uri: "/api/auditlog/?page=x", method: .get, headers: [.authorization: "Token guess-\(guess)"]).status)
                }
                #expect(statuses.prefix(3).allSatisfy { $0 == .unauthorized } && statuses.suffix(2).allSatisfy { $0 == .tooManyRequests }, "\(statuses)")
                let throttled = try await client.execute(uri: "/api/auditlog/?page=x", method: .get, headers: [.authorization: "Token guess-again"])
                #expect(throttled.headers[.retryAfter] == "60")
                #expect(try Self.decode(OldAPI.DetailAnswer.self, throttled).detail == "Request was throttled. Expected available in 60 seconds.")
                // The valid token passes authentication (and its bad page number is then a 400 of ours).
                let valid = try await client.execute(uri: "/api/auditlog/?page=x", method: .get, headers: [.authorization: "Token \(token)"])
                let validError = try Self.decode(OldAPI.ErrorAnswer.self, valid).error
                #expect(valid.status == .badRequest && validError == "page must be a whole number from 1")
            }
        }
    }

    @Test func malformedRequestsOfAValidTokenAreFourHundredsOfOurOwn() async throws {
        try await withAPI { fixture in
            let auth: HTTPFields = [.authorization: "Token \(fixture.token)", .contentType: "application/json"]
            try await test(fixture) { client in
                let cases: [(String, HTTPRequest.Method, String?, HTTPResponse.Status, String)] = [
                    ("/api/backups/cloud/download/", .post, "not json", .badRequest, "the body must be a JSON object"),
                    ("/api/backups/cloud/download/", .post, nil, .badRequest, "the body must be a JSON object"),
                    ("/api/backups/cloud/download/", .post, "{}", .badRequest, "s3_key is required"),
                    ("/api/backups/cloud/download/", .post, "{\"s3_key\": 1}", .badRequest, "s3_key must be a string"),
                    ("/api/backups/cloud/download/", .post, "{\"s3_key\": \"\"}", .badRequest, "s3_key must not be empty"),
                    ("/api/backups/cloud/download/", .post, "{\"s3_key\": \"a\\nb\"}", .badRequest,
                     "s3_key is not a backup key (backups/<clinic>/backup-sql-<clinic>-YYYY-MM-DD-HHMMSS.sql.zst)"),
                    ("/api/backups/cloud/download/?format=zip", .post, "{\"s3_key\": \"x\"}", .badRequest, "format must be sql or stored"),
                    ("/api/backups/cloud/get-url/", .post, "{\"s3_key\": \"x\", \"expiration\": 0}", .badRequest,
                     "expiration must be a whole number of seconds from 1 to 604800"),
                    ("/api/backups/cloud/get-url/", .post, "{\"s3_key\": \"x\", \"expiration\": \"60\"}", .badRequest, "expiration must be a whole number of seconds"),
                    ("/api/backups/create/?download=maybe", .post, nil, .badRequest, "download must be true or false"),
                    ("/api/auditlog/?page=0", .get, nil, .badRequest, "page must be a whole number from 1"),
                ]
                for (uri, method, body, status, error) in cases {
                    let response = try await client.execute(uri: uri, method: method, headers: auth, body: body.map { ByteBuffer(string: $0) })
                    #expect(response.status == status, "\(method) \(uri) \(body ?? ""): \(response.status)")
                    #expect((try? Self.decode(OldAPI.ErrorAnswer.self, response).error) == error, "\(method) \(uri) \(body ?? "")")
                }
                let big = try await client.execute(
                    uri: "/api/backups/cloud/download/", method: .post, headers: auth, body: ByteBuffer(string: String(repeating: "x", count: 70 * 1024)))
                #expect(big.status == .contentTooLarge)
            }
        }
    }

    @Test func unknownPathsAndMethodsAreJSONToo() async throws {
        try await withAPI { fixture in
            try await test(fixture) { client in
                let missing = try await client.execute(uri: "/api/backups/cloud/nothing/", method: .get)
                let missingError = try Self.decode(OldAPI.ErrorAnswer.self, missing).error
                #expect(missing.status == .notFound && missingError == "no such endpoint")
                let wrong = try await client.execute(uri: "/api/backups/cloud/list/", method: .delete)
                #expect(wrong.status == .methodNotAllowed && wrong.headers[.allow] == "GET")
                #expect(try Self.decode(OldAPI.ErrorAnswer.self, wrong).error == "method not allowed; use GET")
            }
        }
    }

    /// The answers' JSON is the old system's: `null`s written, keys as it spelled them.
    @Test func theAnswersEncodeAsTheOldSystemsJSON() throws {
        let listing = OldAPI.ListAnswer(
            count: 1, schema: "bienestar",
            backups: [OldAPI.Backup(filename: "f.sql.zst", s3Key: "backups/bienestar/f.sql.zst", size: 3, lastModified: nil, storageClass: "STANDARD", url: "http://x/f", state: "verified")])
        #expect(String(decoding: try OldAPI.encoded(listing), as: UTF8.self)
            == #"{"backups":[{"filename":"f.sql.zst","last_modified":null,"s3_key":"backups/bienestar/f.sql.zst","size":3,"state":"verified","storage_class":"STANDARD","url":"http://x/f"}],"count":1,"schema":"bienestar"}"#)
        let page = OldAPI.AuditLogAnswer(count: 0, page: 1, pageSize: 50, next: nil, previous: nil, results: [])
        #expect(String(decoding: try OldAPI.encoded(page), as: UTF8.self) == #"{"count":0,"next":null,"page":1,"page_size":50,"previous":null,"results":[]}"#)
        let decoded = try JSONDecoder().decode(OldAPI.ListAnswer.self, from: try OldAPI.encoded(listing))
        #expect(decoded == listing)
    }
}
