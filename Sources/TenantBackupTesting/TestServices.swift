import Foundation
import Logging
import TenantBackup

/// The real services the integration tests run against, as `scripts/dev-services env` describes them.
public struct TestServices: Sendable {
    /// Raised when the services' environment is missing: the tests need real PostgreSQL and S3.
    public struct NotConfigured: Error, CustomStringConvertible {
        public let variable: String
        public var description: String {
            "\(variable) is not set: start the test services with `scripts/dev-services start` and "
                + "`eval \"$(scripts/dev-services env)\"`, or run the tests with `scripts/test`"
        }
    }

    public let environment: [String: String]
    public let s3Endpoint: URL
    public let region: String
    public let credentials: S3Credentials
    /// Credentials with a session token, accepted by the verifying proxy.
    public let sessionCredentials: S3Credentials
    /// The verifying proxy's base URL (its control API is under `/__proxy/`).
    public let proxyURL: URL
    /// `scripts/fixture.sql`: the sample clinic database.
    public let fixturePath: String
    /// The stand-in EC2 instance metadata service, serving ``sessionCredentials``.
    public let instanceMetadataURL: URL

    public init(environment: [String: String] = ProcessInfo.processInfo.environment) throws {
        func required(_ name: String) throws -> String {
            guard let value = environment[name], !value.isEmpty else { throw NotConfigured(variable: name) }
            return value
        }
        self.environment = environment
        _ = try required("PGHOST")
        _ = try required("PGPORT")
        self.s3Endpoint = URL(string: try required("AWS_ENDPOINT_URL_S3"))!
        self.region = environment["AWS_S3_REGION_NAME"] ?? "us-east-1"
        self.credentials = S3Credentials(accessKeyId: try required("AWS_ACCESS_KEY_ID"), secretAccessKey: try required("AWS_SECRET_ACCESS_KEY"))
        self.sessionCredentials = S3Credentials(
            accessKeyId: try required("TENANT_BACKUP_TEST_SESSION_ACCESS_KEY_ID"),
            secretAccessKey: try required("TENANT_BACKUP_TEST_SESSION_SECRET_ACCESS_KEY"),
            sessionToken: try required("TENANT_BACKUP_TEST_SESSION_TOKEN"))
        self.proxyURL = URL(string: try required("TENANT_BACKUP_TEST_PROXY_URL"))!
        self.fixturePath = try required("TENANT_BACKUP_TEST_FIXTURE")
        self.instanceMetadataURL = URL(string: try required("TENANT_BACKUP_TEST_IMDS_URL"))!
    }

    /// The environment a command of the built executable runs with against `database` and `bucket`, logging
    /// logfmt lines.
    public func commandEnvironment(database: TestDatabase, bucket: String) -> [String: String] {
        var environment = self.environment
        environment["PGDATABASE"] = database.name
        environment["AWS_STORAGE_BUCKET_NAME"] = bucket
        environment["TENANT_BACKUP_LOG_FORMAT"] = "logfmt"
        return environment
    }

    /// S3 settings pointing at the test endpoint and `bucket`.
    public func s3Settings(bucket: String, credentials: S3Credentials? = nil) -> S3Settings {
        var settings = S3Settings(bucket: bucket, region: region, endpoint: s3Endpoint, credentials: credentials ?? self.credentials)
        // Every suite of the test process runs at once through one connection pool: streamed parts each hold a
        // connection while they fill, and a request that waits longer than the connect timeout for one fails
        // (AsyncHTTPClient). A daemon's pool is sized from its own settings; the tests' from all of them.
        settings.maximumConnections = 512
        return settings
    }

    /// A client for `bucket` on the test endpoint, with quick retries so fault tests stay fast.
    public func s3Client(
        bucket: String,
        credentials: S3Credentials? = nil,
        configuration: S3ClientConfiguration = TestServices.clientConfiguration,
        logger: Logger = .quiet,
        now: @escaping @Sendable () -> Date = { Date() }
    ) -> S3Client {
        S3Client(
            settings: s3Settings(bucket: bucket), bucket: bucket, credentials: credentials ?? self.credentials,
            configuration: configuration, logger: logger, now: now)
    }

    /// Retries as in production, but with short waits.
    public static let clientConfiguration = S3ClientConfiguration(
        requestTimeout: .seconds(30),
        retry: RetryPolicy(maximumAttempts: 5, baseDelay: .milliseconds(20), maximumDelay: .milliseconds(200)))

    /// A client that writes to moto directly, bypassing the verifying proxy, with keys of its own: anyone who
    /// holds write access to the bucket (the old web app's keys, a compromised host), as the trust model says.
    public func attackerClient(bucket: String) throws -> S3Client {
        guard let text = environment["TENANT_BACKUP_TEST_MOTO_URL"], let url = URL(string: text) else {
            throw NotConfigured(variable: "TENANT_BACKUP_TEST_MOTO_URL")
        }
        var settings = s3Settings(bucket: bucket)
        settings.endpoint = url
        settings.serverSideEncryption = .none
        let attacker = S3Credentials(accessKeyId: "AKIAATTACKER", secretAccessKey: UUID().uuidString)
        // An attacker overwrites: no If-None-Match, so a replacement never races a delayed write of our own.
        var configuration = Self.clientConfiguration
        configuration.preventOverwrites = false
        return S3Client(settings: settings, bucket: bucket, credentials: attacker, configuration: configuration, logger: .quiet)
    }

    /// The verifying proxy's control API.
    public var proxy: ProxyControl { ProxyControl(baseURL: proxyURL) }

    /// The verifying proxy's HTTPS listener (a certificate of the throwaway CA), when the services serve it.
    public var proxyHTTPSURL: URL? { environment["TENANT_BACKUP_TEST_PROXY_HTTPS_URL"].flatMap { URL(string: $0) } }
    /// The throwaway CA that signed the test services' certificates.
    public var caBundle: String? { environment["TENANT_BACKUP_TEST_CA_BUNDLE"] }
    /// Ceph RGW, the second real S3 (plain HTTP and HTTPS), when the services run it.
    public var rgwURL: URL? { environment["TENANT_BACKUP_TEST_RGW_URL"].flatMap { URL(string: $0) } }
    public var rgwHTTPSURL: URL? { environment["TENANT_BACKUP_TEST_RGW_HTTPS_URL"].flatMap { URL(string: $0) } }
    /// Set in CI: a missing RGW fails the compatibility suite instead of leaving it to moto alone.
    public var requiresRGW: Bool { environment["TENANT_BACKUP_TEST_REQUIRE_RGW"] == "1" }

    /// A client for `bucket` at another endpoint of the test services (RGW, the HTTPS listener).
    public func s3Client(bucket: String, endpoint: URL, serverSideEncryption: ServerSideEncryption, caBundle: String? = nil) -> S3Client {
        var settings = s3Settings(bucket: bucket)
        settings.endpoint = endpoint
        settings.serverSideEncryption = serverSideEncryption
        settings.caBundle = caBundle
        var configuration = Self.clientConfiguration
        configuration.serverSideEncryption = serverSideEncryption
        return S3Client(settings: settings, bucket: bucket, credentials: credentials, configuration: configuration, logger: .quiet)
    }

    /// A name no other test uses: `prefix-<random>`, lower case, valid for buckets and databases.
    public static func uniqueName(_ prefix: String) -> String {
        "\(prefix)-\(UUID().uuidString.lowercased().prefix(12))"
    }
}
