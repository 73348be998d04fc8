import Foundation
import NIOFoundationCompat

/// A small signed JSON file beside a backup object that changes how the backup is treated: a
/// ``BackupMark`` (proved broken or foreign) or a ``DeletionMark`` (deleted through the API, purged later).
///
/// The bucket is not trusted, so a sidecar counts only when a trusted key signed it and it names the object
/// beside it (its key and size): a bucket writer's sidecar is ignored, and one does not carry over to
/// another object put at the same key.
public protocol SignedSidecar: Codable, Sendable {
    /// The backup object it is about, and that object's size.
    var key: String { get }
    var bytes: Int64 { get }
    var signature: ManifestSignature? { get set }
    /// The text the signature covers (the fields, one per line, under a versioned first line).
    var signingText: String { get }
    /// What follows a backup's key to name this sidecar.
    static var suffix: String { get }
}

extension SignedSidecar {
    public func encoded() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .iso8601
        return try encoder.encode(self)
    }

    public static func decode(_ data: Data) throws -> Self {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return try decoder.decode(Self.self, from: data)
    }

    /// This sidecar, signed.
    public func signed(with signingKey: SigningKey) throws -> Self {
        var copy = self
        copy.signature = nil
        copy.signature = try signingKey.signature(for: copy.signingText)
        return copy
    }

    /// Whether a trusted key signed it and it names `key` of `size` bytes.
    public func counts(for key: String, size: Int64, trust: ManifestTrust) -> Bool {
        guard self.key == key, bytes == size, let signature else { return false }
        var unsigned = self
        unsigned.signature = nil
        return trust.verifies(signature, of: unsigned.signingText)
    }

    /// The sidecar of `backup` at `<key><suffix>` that counts, or `nil` (unreadable as one, unsigned, or not
    /// this object's). It is listed, so the store's failure to answer (any error) is thrown rather than read as
    /// "none": what retention decides on. The marks' lenient `read(for:from:trust:)` turn it into `nil`.
    static func checkedRead(_ backupKey: BackupKey, size: Int64, from store: any ObjectStore, trust: ManifestTrust) async throws(S3Error) -> Self? {
        let data = try await store.get(key: backupKey.key + suffix, limit: 1 << 20)
        guard let sidecar = try? decode(Data(buffer: data)), sidecar.counts(for: backupKey.key, size: size, trust: trust) else { return nil }
        return sidecar
    }

    /// A field's value for ``signingText``: `%`, line feed and carriage return escaped, so no value can
    /// forge another line.
    static func escaped(_ text: String) -> String {
        text.replacingOccurrences(of: "%", with: "%25").replacingOccurrences(of: "\n", with: "%0A").replacingOccurrences(of: "\r", with: "%0D")
    }
}
