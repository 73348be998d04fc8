import Foundation

/// The AWS shared credentials file: `$AWS_SHARED_CREDENTIALS_FILE` or `~/.aws/credentials`, profile
/// `$AWS_PROFILE` or `default`.
public struct SharedCredentialsFileProvider: CredentialsProvider {
    public let path: String
    public let profile: String

    public init(path: String, profile: String) {
        self.path = path
        self.profile = profile
    }

    public init(environment: [String: String]) {
        let home = environment["HOME"] ?? NSHomeDirectory()
        self.init(
            path: environment["AWS_SHARED_CREDENTIALS_FILE"] ?? "\(home)/.aws/credentials",
            profile: environment["AWS_PROFILE"] ?? environment["AWS_DEFAULT_PROFILE"] ?? "default")
    }

    public var sourceDescription: String { "\(path) [\(profile)]" }

    public func credentials() async throws(CredentialsError) -> S3Credentials? {
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw .malformed(source: sourceDescription, message: "cannot be read")
        }
        guard let values = Self.parse(text)[profile] else { return nil }
        switch (values["aws_access_key_id"], values["aws_secret_access_key"]) {
        case (let key?, let secret?):
            return S3Credentials(accessKeyId: key, secretAccessKey: secret, sessionToken: values["aws_session_token"])
        case (nil, nil):
            return nil
        default:
            throw .malformed(source: sourceDescription, message: "the profile has only one of aws_access_key_id and aws_secret_access_key")
        }
    }

    /// Profiles of an INI file: `[name]` sections of `key = value` lines; `#` and `;` start comments.
    static func parse(_ text: String) -> [String: [String: String]] {
        var profiles: [String: [String: String]] = [:]
        var current: String?
        for rawLine in text.split(whereSeparator: \.isNewline) {
            let line = rawLine.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") || line.hasPrefix(";") { continue }
            if line.hasPrefix("["), line.hasSuffix("]") {
                var name = line.dropFirst().dropLast().trimmingCharacters(in: .whitespaces)
                if name.hasPrefix("profile ") { name = String(name.dropFirst("profile ".count)).trimmingCharacters(in: .whitespaces) }
                current = name
                profiles[name, default: [:]] = profiles[name, default: [:]]
                continue
            }
            guard let current, let equals = line.firstIndex(of: "=") else { continue }
            let key = line[..<equals].trimmingCharacters(in: .whitespaces).lowercased()
            let value = line[line.index(after: equals)...].trimmingCharacters(in: .whitespaces)
            profiles[current]?[key] = value
        }
        return profiles
    }
}
