import Crypto
import Foundation

/// The signature a backup host puts on each manifest it writes, with a key the bucket does not hold: anyone
/// who can write to the bucket can replace an object and its manifest, but not sign the pair.
///
/// The signed message is ``BackupManifest/signingText``, a line-by-line rendering of every field that this
/// code builds itself (not a JSON encoder's output), so a manifest signed today verifies with any later
/// version of the tool.
public struct ManifestSignature: Codable, Sendable, Equatable {
    /// `ed25519`.
    public var algorithm: String
    /// The first 16 hex digits of the SHA-256 of the public key: which trusted key must verify it.
    public var keyId: String
    /// Base64 of the 64-byte Ed25519 signature.
    public var value: String

    enum CodingKeys: String, CodingKey {
        case algorithm
        case keyId = "key_id"
        case value
    }
}

/// An Ed25519 public key trusted to sign manifests: `ed25519:<base64 of the 32 raw bytes>`.
public struct TrustedKey: Sendable, Equatable, CustomStringConvertible {
    public let key: Curve25519.Signing.PublicKey

    public init(_ key: Curve25519.Signing.PublicKey) {
        self.key = key
    }

    /// Parses `ed25519:<base64>`.
    public init?(text: String) {
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard trimmed.hasPrefix("ed25519:"), let raw = Data(base64Encoded: String(trimmed.dropFirst("ed25519:".count))),
              let key = try? Curve25519.Signing.PublicKey(rawRepresentation: raw)
        else { return nil }
        self.key = key
    }

    public var description: String { "ed25519:" + key.rawRepresentation.base64EncodedString() }

    /// The key's id in signatures and messages.
    public var id: String { Self.id(of: key) }

    static func id(of key: Curve25519.Signing.PublicKey) -> String {
        SHA256.hash(data: key.rawRepresentation).prefix(8).map { String(format: "%02x", $0) }.joined()
    }

    public static func == (lhs: TrustedKey, rhs: TrustedKey) -> Bool { lhs.key.rawRepresentation == rhs.key.rawRepresentation }
}

/// The backup host's private signing key, kept in a file of its own (0600; systemd's `LoadCredential=`).
public struct SigningKey: Sendable {
    public let key: Curve25519.Signing.PrivateKey

    public init(_ key: Curve25519.Signing.PrivateKey) {
        self.key = key
    }

    public var publicKey: TrustedKey { TrustedKey(key.publicKey) }

    static let header = "# tenant-backup manifest signing key (Ed25519, private). Never copy it to the bucket or to drill hosts."
    static let prefix = "ed25519-private:"

    /// The file's text.
    public var fileText: String {
        "\(Self.header)\n# public key: \(publicKey)\n\(Self.prefix)\(key.rawRepresentation.base64EncodedString())\n"
    }

    /// Reads a key file written by ``fileText``.
    public init(fileText text: String) throws(SigningError) {
        guard let line = text.split(whereSeparator: \.isNewline).first(where: { $0.hasPrefix(Self.prefix) }),
              let raw = Data(base64Encoded: String(line.dropFirst(Self.prefix.count)).trimmingCharacters(in: .whitespaces)),
              let key = try? Curve25519.Signing.PrivateKey(rawRepresentation: raw)
        else { throw .unreadableKey("it holds no ed25519-private: line (make one with tenant-backup signing-key generate)") }
        self.key = key
    }

    /// Reads the key at `path`; refuses a file others may read.
    public static func load(path: String) throws(SigningError) -> SigningKey {
        var info = stat()
        guard stat(path, &info) == 0 else { throw .missingKey(path: path) }
        if info.st_mode & 0o077 != 0 {
            throw .unsafeKeyFile(path: path, mode: String(info.st_mode & 0o777, radix: 8))
        }
        guard let data = FileManager.default.contents(atPath: path) else { throw .unreadableKeyFile(path: path) }
        do throws(SigningError) {
            return try SigningKey(fileText: String(decoding: data, as: UTF8.self))
        } catch {
            throw .unreadableKeyFile(path: path)
        }
    }

    /// Reads the key at `path`, or creates one there (0600, its directory 0700 when made here) when there is
    /// none: what a default install and the README's demo sign with. Two processes racing both end with the
    /// same key (the file appears whole, by `link`, or not at all).
    public static func loadOrCreate(path: String) throws(SigningError) -> (key: SigningKey, created: Bool) {
        if FileManager.default.fileExists(atPath: path) { return (try load(path: path), false) }
        let directory = (path as NSString).deletingLastPathComponent
        if !directory.isEmpty, !FileManager.default.fileExists(atPath: directory) {
            do {
                try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            } catch {
                throw .cannotCreate(path: path, reason: "\(error.localizedDescription)")
            }
        }
        let key = SigningKey(Curve25519.Signing.PrivateKey())
        let temporary = "\(path).\(getpid()).\(UUID().uuidString.prefix(8)).tmp"
        let descriptor = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { throw .cannotCreate(path: path, reason: String(cString: strerror(errno))) }
        let bytes = Array(key.fileText.utf8)
        let written = bytes.withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
        fsync(descriptor)
        close(descriptor)
        defer { unlink(temporary) }
        guard written == bytes.count else { throw .cannotCreate(path: path, reason: "short write") }
        if link(temporary, path) != 0 {
            if errno == EEXIST { return (try load(path: path), false) }
            throw .cannotCreate(path: path, reason: String(cString: strerror(errno)))
        }
        return (key, true)
    }

    /// A signature over `text`.
    public func signature(for text: String) throws -> ManifestSignature {
        ManifestSignature(algorithm: "ed25519", keyId: publicKey.id, value: try key.signature(for: Data(text.utf8)).base64EncodedString())
    }

    /// Signs `manifest` (its ``BackupManifest/signingText``).
    public func sign(_ manifest: BackupManifest) throws -> BackupManifest {
        // Through its own JSON first: the dates are then whole seconds, as every reader decodes them.
        var signed = try BackupManifest.decode(manifest.encoded())
        signed.signature = nil
        let signature = try key.signature(for: Data(signed.signingText.utf8))
        signed.signature = ManifestSignature(algorithm: "ed25519", keyId: publicKey.id, value: signature.base64EncodedString())
        return signed
    }
}

/// What a manifest's signature says about it.
public enum SignatureVerdict: Sendable, Equatable {
    /// Signed by a trusted key (its id).
    case signed(keyId: String)
    /// No signature (written before signing existed, or adopted without a key).
    case unsigned
    /// Signed by a key no setting trusts.
    case unknownKey(keyId: String)
    /// A signature that does not verify: the manifest was changed after it was signed.
    case invalid(keyId: String)

    public var isTrusted: Bool { if case .signed = self { true } else { false } }

    /// For list, verify and errors: "signed by 1a2b…", "unsigned", ...
    public var summary: String {
        switch self {
        case .signed(let id): "signed by key \(id)"
        case .unsigned: "unsigned"
        case .unknownKey(let id): "signed by key \(id), which is not trusted here (signing.public_keys)"
        case .invalid(let id): "its signature (key \(id)) does not verify: the manifest was changed after it was signed"
        }
    }
}

/// The keys that may sign manifests: the host's own, and the public keys configured for rotation and for
/// restore and drill hosts.
public struct ManifestTrust: Sendable {
    public let keys: [TrustedKey]

    public init(keys: [TrustedKey]) {
        var unique: [TrustedKey] = []
        for key in keys where !unique.contains(key) { unique.append(key) }
        self.keys = unique
    }

    /// Whether `signature` over `text` is a trusted key's.
    public func verifies(_ signature: ManifestSignature, of text: String) -> Bool {
        guard signature.algorithm == "ed25519", let key = keys.first(where: { $0.id == signature.keyId }),
              let raw = Data(base64Encoded: signature.value)
        else { return false }
        return key.key.isValidSignature(raw, for: Data(text.utf8))
    }

    public func verdict(for manifest: BackupManifest) -> SignatureVerdict {
        guard let signature = manifest.signature else { return .unsigned }
        guard signature.algorithm == "ed25519", let key = keys.first(where: { $0.id == signature.keyId }) else {
            return .unknownKey(keyId: signature.keyId)
        }
        var unsigned = manifest
        unsigned.signature = nil
        guard let raw = Data(base64Encoded: signature.value), key.key.isValidSignature(raw, for: Data(unsigned.signingText.utf8)) else {
            return .invalid(keyId: signature.keyId)
        }
        return .signed(keyId: signature.keyId)
    }
}

/// Why a signing key cannot be used.
public enum SigningError: Error, Equatable, CustomStringConvertible, Sendable {
    case missingKey(path: String)
    case unsafeKeyFile(path: String, mode: String)
    case unreadableKeyFile(path: String)
    case unreadableKey(String)
    case cannotCreate(path: String, reason: String)
    case badPublicKey(String)

    public var description: String {
        switch self {
        case .missingKey(let path): "the signing key \(path) does not exist; create it with tenant-backup signing-key generate --output \(path)"
        case .unsafeKeyFile(let path, let mode):
            "the signing key \(path) is readable by others (mode \(mode)); chmod 600 it (and treat it as leaked if others could read it)"
        case .unreadableKeyFile(let path): "the signing key \(path) cannot be read as one (tenant-backup signing-key generate writes one)"
        case .unreadableKey(let reason): "the signing key cannot be read: \(reason)"
        case .cannotCreate(let path, let reason): "cannot create the signing key \(path): \(reason); set signing.key_file to a writable place"
        case .badPublicKey(let text): "\(text.prefix(24))... is not a public key (ed25519:<base64>, as tenant-backup signing-key public prints)"
        }
    }
}

extension BackupManifest {
    /// The text a signature covers: every field, one per line, in a fixed order and escaping, built here so that
    /// it never changes with a JSON encoder's output.
    public var signingText: String {
        func escaped(_ text: String) -> String {
            var result = ""
            for scalar in text.unicodeScalars {
                if scalar == "%" || scalar == "\n" || scalar == "\r" || scalar == "=" || scalar.value < 0x20 {
                    for byte in String(scalar).utf8 { result += String(format: "%%%02X", byte) }
                } else {
                    result.unicodeScalars.append(scalar)
                }
            }
            return result
        }
        func time(_ date: Date) -> String { String(Int64(date.timeIntervalSince1970.rounded(.down))) }
        var lines = ["tenant-backup manifest signature v1"]
        lines.append("manifest_version=\(manifestVersion)")
        lines.append("area=\(escaped(area))")
        lines.append("schema=\(escaped(schema))")
        lines.append("key=\(escaped(key))")
        lines.append("bytes=\(bytes)")
        lines.append("sha256=\(escaped(sha256))")
        lines.append("dump_bytes=\(dumpBytes)")
        lines.append("compression=\(escaped(compression))")
        lines.append("encryption=\(encryption.map(escaped) ?? "-")")
        lines.append("format=\(escaped(format))")
        lines.append("pg_dump_version=\(escaped(pgDumpVersion))")
        lines.append("server_version=\(escaped(serverVersion))")
        lines.append("tool_version=\(escaped(toolVersion))")
        lines.append("started_at=\(time(startedAt))")
        lines.append("finished_at=\(time(finishedAt))")
        for shared in sharedBackups { lines.append("shared_backup=\(escaped(shared))") }
        if let tableRowCounts {
            lines.append("table_row_counts=\(tableRowCounts.count)")
            for (table, rows) in tableRowCounts.sorted(by: { Array($0.key.utf8).lexicographicallyPrecedes(Array($1.key.utf8)) }) {
                lines.append("table=\(escaped(table))=\(rows)")
            }
        } else {
            lines.append("table_row_counts=-")
        }
        lines.append("adopted=\(adopted.map { $0 ? "true" : "false" } ?? "-")")
        // Only when present, so manifests signed before the field existed still verify; once present it is
        // covered, so nobody can claim encryption the store did not confirm.
        if let serverSideEncryption { lines.append("server_side_encryption=\(escaped(serverSideEncryption))") }
        return lines.joined(separator: "\n") + "\n"
    }
}
