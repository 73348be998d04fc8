import Foundation
import NIOCore
import NIOHTTP1

/// What a store must confirm before a write counts: the encryption asked for, the body it holds, the key being
/// free. A store may accept a header and ignore it (Ceph RGW without an encryption backend accepts
/// `x-amz-server-side-encryption` and stores plaintext; it ignores `If-None-Match` on
/// CompleteMultipartUpload), so only its answers decide.
extension S3Client {
    /// The value `x-amz-server-side-encryption` carries in `headers`, checked against what was asked: a store
    /// that does not confirm it fails the write.
    ///
    /// - Returns: the confirmed value (`AES256`, `aws:kms`), `nil` when no encryption was asked.
    @discardableResult
    func confirmEncryption(_ headers: HTTPHeaders, operation: String, key: String) throws(S3Error) -> String? {
        guard let asked = configuration.serverSideEncryption.confirmationValue else { return nil }
        let answered = headers.first(name: "x-amz-server-side-encryption")
        guard answered == asked else {
            throw S3Error(operation: operation, bucket: bucket, key: key, cause: .unconfirmed(Self.encryptionNotApplied(asked: asked, answered: answered)))
        }
        return asked
    }

    /// The message of a store that did not confirm the encryption asked for: what it did, and the settings
    /// that fix it.
    static func encryptionNotApplied(asked: String, answered: String?) -> String {
        let what = answered.map { "the answer says \($0)" } ?? "the answer carries no x-amz-server-side-encryption header"
        return "encryption requested but not applied by this store: asked for server-side encryption \(asked), \(what) "
            + "(Ceph RGW without an encryption backend accepts the header and stores plaintext). The object was removed. "
            + "Configure the store's server-side encryption (RGW: rgw crypt sse s3 backend, or rgw crypt default encryption key), "
            + "or, if the store encrypts at rest by itself and you accept that, set s3.server_side_encryption: none (TENANT_BACKUP_S3_SSE=none)"
    }

    /// Whether an ETag can be compared with an MD5 we computed: the store's ETags are MD5s (not SSE-KMS) and
    /// this one has the shape of one (32 hex digits, `-<parts>` for multipart).
    func comparableETag(_ eTag: String) -> Bool {
        guard configuration.serverSideEncryption.eTagIsMD5 else { return false }
        let digest = eTag.split(separator: "-", maxSplits: 1).first ?? ""
        return digest.count == 32 && digest.allSatisfy(\.isHexDigit)
    }

    /// The ETag S3 gives an object completed from parts with these MD5s: the MD5 of the parts' MD5s, then
    /// `-<parts>`.
    static func multipartETag(partMD5s: [Data]) -> String {
        let joined = partMD5s.reduce(into: Data()) { $0.append($1) }
        return "\(SigV4Signer.hex(md5(of: [ByteBuffer(data: joined)])))-\(partMD5s.count)"
    }

    /// Fails when `key` already holds an object: for stores that may not honour `If-None-Match: *` (on
    /// CompleteMultipartUpload, RGW does not). Only a 404 means the key is free; any other failure is
    /// thrown, never read as "nothing there".
    func requireAbsent(key: String, before operation: String) async throws(S3Error) {
        let existing: S3ObjectMetadata
        do {
            existing = try await headObject(key: key)
        } catch {
            if error.status == 404 { return }
            throw error
        }
        throw S3Error(
            operation: operation, bucket: bucket, key: key,
            cause: .service(
                status: 412, code: "PreconditionFailed",
                message: "an object (\(existing.size) bytes, ETag \(existing.eTag)) already exists at this key; it is never replaced",
                requestId: nil))
    }

    /// Checks, with one HEAD, that a completed multipart object is what was sent: its size, its ETag against
    /// the one the parts' MD5s give, and its encryption. Anything else is removed and fails loudly, so
    /// nothing that looks like a good backup is left.
    ///
    /// - Returns: the confirmed encryption, `nil` when none was asked.
    @discardableResult
    func confirmStoredMultipart(key: String, bytes: Int64, partMD5s: [Data]) async throws(S3Error) -> String? {
        let stored = try await send("HeadObject", method: .HEAD, key: key)
        let metadata = Self.metadata(key: key, headers: stored.headers)
        var problem: String?
        // A HEAD without Content-Length says nothing about the size: never a reason to remove the object.
        if stored.headers.first(name: "Content-Length") != nil, metadata.size != bytes {
            problem = "the store holds \(metadata.size) bytes at this key, \(bytes) were sent"
        } else if comparableETag(metadata.eTag), metadata.eTag.contains("-") {
            let expected = Self.multipartETag(partMD5s: partMD5s)
            if metadata.eTag.lowercased() != expected {
                problem = "the store's ETag \(metadata.eTag) is not \(expected), the one the \(partMD5s.count) parts sent give: it holds other bytes than were sent"
            }
        }
        let confirmed: String?
        do throws(S3Error) {
            confirmed = try confirmEncryption(stored.headers, operation: "HeadObject", key: key)
        } catch {
            try? await deleteObject(key: key)
            throw error
        }
        if let problem {
            try? await deleteObject(key: key)
            throw S3Error(operation: "CompleteMultipartUpload", bucket: bucket, key: key, cause: .unconfirmed("\(problem). The object was removed"))
        }
        return confirmed
    }
}
