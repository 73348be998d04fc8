/// Something that can produce S3 credentials: a fixed pair, a file, the instance metadata service.
///
/// `credentials()` is called before each request; providers of temporary credentials cache them and
/// refresh before they expire.
public protocol CredentialsProvider: Sendable {
    /// The credentials to sign the next request with, or `nil` when this source has none (the chain then
    /// asks the next source). Throws when the source exists but is broken (a malformed file).
    func credentials() async throws(CredentialsError) -> S3Credentials?

    /// Where credentials come from, for messages: "environment", "~/.aws/credentials [default]"...
    var sourceDescription: String { get }
}

/// A source that exists but cannot give credentials, or a chain where no source had any.
public enum CredentialsError: Error, Equatable, CustomStringConvertible {
    case malformed(source: String, message: String)
    case unavailable(source: String, message: String)
    case noneFound(tried: [String])

    public var description: String {
        switch self {
        case .malformed(let source, let message):
            return "S3 credentials from \(source) are unusable: \(message)"
        case .unavailable(let source, let message):
            return "S3 credentials from \(source) could not be fetched: \(message)"
        case .noneFound(let tried):
            return "no S3 credentials found (tried \(tried.joined(separator: ", "))); set AWS_ACCESS_KEY_ID and "
                + "AWS_SECRET_ACCESS_KEY, provide s3-access-key-id and s3-secret-access-key with LoadCredential=, "
                + "or run on an instance with an IAM role"
        }
    }
}

/// A fixed pair: from the config file, the environment or `$CREDENTIALS_DIRECTORY` (already merged by the
/// settings loader in that order).
public struct StaticCredentialsProvider: CredentialsProvider {
    public let value: S3Credentials
    public let sourceDescription: String

    public init(_ value: S3Credentials, source: String = "the configuration") {
        self.value = value
        self.sourceDescription = source
    }

    public func credentials() async throws(CredentialsError) -> S3Credentials? { value }
}

/// Asks each provider in turn and remembers the first that had credentials.
public struct CredentialsChain: CredentialsProvider {
    public let providers: [any CredentialsProvider]

    public init(_ providers: [any CredentialsProvider]) {
        self.providers = providers
    }

    public var sourceDescription: String { providers.map(\.sourceDescription).joined(separator: " → ") }

    public func credentials() async throws(CredentialsError) -> S3Credentials? {
        for provider in providers {
            if let found = try await provider.credentials() { return found }
        }
        throw .noneFound(tried: providers.map(\.sourceDescription))
    }

    /// The standard chain, first match wins: explicit settings (config file, environment, credentials
    /// directory), the shared credentials file, then EC2 instance metadata (IMDSv2) unless
    /// `AWS_EC2_METADATA_DISABLED=true`.
    public static func standard(settings: S3Settings, environment: [String: String]) -> CredentialsChain {
        var providers: [any CredentialsProvider] = []
        if let explicit = settings.credentials { providers.append(StaticCredentialsProvider(explicit)) }
        providers.append(SharedCredentialsFileProvider(environment: environment))
        if environment["AWS_EC2_METADATA_DISABLED"]?.lowercased() != "true" {
            providers.append(InstanceMetadataCredentialsProvider(environment: environment))
        }
        return CredentialsChain(providers)
    }
}
