import Crypto
import Foundation

/// One API token as stored: never the token itself, only its SHA-256, with the tenant it opens.
public struct APIToken: Codable, Sendable, Equatable {
    /// A short random id: what `token list`, `token revoke` and the audit trail name it by.
    public let id: String
    public let tenant: String
    public let note: String?
    public let createdAt: Date
    /// Hex SHA-256 of the token.
    public let sha256: String
    public var lastUsedAt: Date?

    enum CodingKeys: String, CodingKey {
        case id, tenant, note, sha256
        case createdAt = "created_at"
        case lastUsedAt = "last_used_at"
    }
}

/// Why the tokens file could not be used.
public struct TokenFileError: Error, Equatable, CustomStringConvertible {
    public let path: String
    public let reason: String
    public var description: String { "tokens file \(path): \(reason)" }
}

/// `api.tokens_file`: the API's own tokens, one tenant each, as a JSON document readable by its owner only
/// (0600). Written whole to a temporary file and renamed, under an advisory lock, so the daemon and
/// `token create`/`revoke` never lose each other's changes. The daemon never rewrites it: each token's last
/// use goes to a small file beside it (`<tokens_file>.last-used`), so a use costs the same with one token or
/// a hundred thousand, and the daemon never has to read the tokens again because it wrote them.
public struct TokenFile: Sendable {
    public let path: String

    public init(path: String) {
        self.path = path
    }

    struct Document: Codable {
        var tokens: [APIToken]
    }

    /// Every token; none when the file does not exist yet. A file others may read or write is refused, as
    /// ssh refuses such a key: whoever can write it can add a token of their own.
    public func load() throws(TokenFileError) -> [APIToken] {
        var info = stat()
        guard stat(path, &info) == 0 else { return [] }
        if info.st_mode & 0o077 != 0 {
            throw TokenFileError(
                path: path,
                reason: "others may read or write it (mode \(String(info.st_mode & 0o777, radix: 8))): chmod 600 it; its tokens are refused until then")
        }
        do {
            let data = try Data(contentsOf: URL(fileURLWithPath: path))
            let decoder = JSONDecoder()
            decoder.dateDecodingStrategy = .iso8601
            return try decoder.decode(Document.self, from: data).tokens
        } catch {
            throw TokenFileError(path: path, reason: "cannot be read as a tokens file (\(error)); restore it from a backup or remove it and create new tokens")
        }
    }

    /// A new random token (256 bits, base64url, prefixed `tbk_`) for `tenant`; only its hash is stored.
    /// Returns the token, to be shown once, and its record.
    public func create(tenant: String, note: String?, now: Date = Date()) throws(TokenFileError) -> (token: String, record: APIToken) {
        var bytes = [UInt8](repeating: 0, count: 32)
        var generator = SystemRandomNumberGenerator()
        for index in bytes.indices { bytes[index] = UInt8.random(in: 0...255, using: &generator) }
        let token = "tbk_" + Data(bytes).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
        let created = Date(timeIntervalSince1970: now.timeIntervalSince1970.rounded(.down))  // as the file keeps it
        let record = APIToken(id: AuditRecord.newId().prefix(12).description, tenant: tenant, note: note, createdAt: created, sha256: Self.hash(token), lastUsedAt: nil)
        try update { $0.append(record) }
        return (token, record)
    }

    /// Removes a token; returns it, or `nil` when no token has that id.
    @discardableResult
    public func revoke(id: String) throws(TokenFileError) -> APIToken? {
        var removed: APIToken?
        try update { tokens in
            if let index = tokens.firstIndex(where: { $0.id == id }) { removed = tokens.remove(at: index) }
        }
        return removed
    }

    /// The tokens by their SHA-256 (hex), for a lookup that costs the same with one token or a hundred thousand.
    public static func index(_ tokens: [APIToken]) -> [String: APIToken] {
        Dictionary(tokens.map { ($0.sha256.lowercased(), $0) }, uniquingKeysWith: { first, _ in first })
    }

    /// The token `presented` is, looked up by its SHA-256 in ``index(_:)``; `nil` for an unknown one. (A hash
    /// lookup tells a guesser nothing: what it compares is a digest nobody can choose.)
    public static func match(_ presented: String, in index: [String: APIToken]) -> APIToken? {
        index[hash(presented)]
    }

    /// Hex SHA-256 of a token.
    public static func hash(_ token: String) -> String {
        SHA256.hash(data: Data(token.utf8)).map { String(format: "%02x", $0) }.joined()
    }

    /// `<path>.last-used`: each token's last use, by id.
    public var lastUsedPath: String { path + ".last-used" }

    /// Every token with its last use (from ``lastUsedPath``, or as older files kept it inside the tokens file).
    public func loadWithLastUse() throws(TokenFileError) -> [APIToken] {
        let uses = lastUses()
        return try load().map { token in
            var token = token
            if let used = uses[token.id], used > (token.lastUsedAt ?? .distantPast) { token.lastUsedAt = used }
            return token
        }
    }

    /// The last uses recorded beside the file; none when there is no such file or it cannot be read.
    public func lastUses() -> [String: Date] {
        guard let data = FileManager.default.contents(atPath: lastUsedPath) else { return [:] }
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return (try? decoder.decode([String: Date].self, from: data)) ?? [:]
    }

    /// Records that the token `id` was used at `time`, in ``lastUsedPath`` (under the file's lock, as 0600).
    public func recordLastUse(of id: String, at time: Date) throws(TokenFileError) {
        try locked { () throws(TokenFileError) in
            var uses = lastUses()
            uses[id] = Date(timeIntervalSince1970: time.timeIntervalSince1970.rounded(.down))
            try write(uses, to: lastUsedPath)
        }
    }

    /// Reads, changes and writes the file whole under `<path>.lock`, as 0600.
    public func update(_ change: (inout [APIToken]) -> Void) throws(TokenFileError) {
        try locked { () throws(TokenFileError) in
            var tokens = try load()
            change(&tokens)
            try write(Document(tokens: tokens), to: path)
        }
    }

    private func locked(_ body: () throws(TokenFileError) -> Void) throws(TokenFileError) {
        let lockPath = path + ".lock"
        let descriptor = open(lockPath, O_CREAT | O_RDWR | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { throw TokenFileError(path: path, reason: "cannot open \(lockPath): \(String(cString: strerror(errno)))") }
        defer { close(descriptor) }
        guard flock(descriptor, LOCK_EX) == 0 else { throw TokenFileError(path: path, reason: "cannot lock \(lockPath): \(String(cString: strerror(errno)))") }
        defer { flock(descriptor, LOCK_UN) }
        try body()
    }

    /// Writes `value` as JSON to a temporary file (0600) and renames it over `target`.
    private func write(_ value: some Encodable, to target: String) throws(TokenFileError) {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .iso8601
        let data: Data
        do {
            data = try encoder.encode(value)
        } catch {
            throw TokenFileError(path: path, reason: "cannot encode: \(error)")
        }
        let temporary = target + ".tmp-\(AuditRecord.newId())"
        guard FileManager.default.createFile(atPath: temporary, contents: data, attributes: [.posixPermissions: 0o600]) else {
            throw TokenFileError(path: path, reason: "cannot write \(temporary): \(String(cString: strerror(errno)))")
        }
        guard rename(temporary, target) == 0 else {
            let reason = String(cString: strerror(errno))
            try? FileManager.default.removeItem(atPath: temporary)
            throw TokenFileError(path: path, reason: "cannot replace \(target): \(reason)")
        }
    }
}
