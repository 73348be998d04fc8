import Foundation
import NIOCore

/// What an S3 endpoint does with what the tool asks of it, found by trying each thing on throwaway objects
/// under a test prefix, never assumed: encryption applied, `If-None-Match: *` honoured on PutObject and on
/// CompleteMultipartUpload, a part sent aws-chunked stored byte for byte, DeleteObjects (with Content-MD5).
///
/// Stores differ exactly there (Ceph RGW accepts the encryption header and stores plaintext, and ignores
/// `If-None-Match` on Complete), and each difference is a promise the tool could otherwise break silently.
public struct S3StoreProbe: Sendable {
    /// One capability: what was found, and the setting or behaviour that fits.
    public struct Finding: Sendable, Equatable {
        public enum Outcome: Sendable, Equatable {
            /// The store does it.
            case supported
            /// The store does not, and the tool works around it (said in `detail`).
            case notSupported
            /// The store does not, and backups cannot keep their promise.
            case failed
            /// The probe itself failed (a refused or lost request), so it could not tell.
            case unknown
        }

        public let name: String
        public let outcome: Outcome
        public let detail: String
        public let hint: String?
    }

    public static let encryption = "S3 encryption applied"
    public static let conditionalPut = "S3 conditional PutObject"
    public static let conditionalComplete = "S3 conditional CompleteMultipartUpload"
    public static let awsChunked = "S3 aws-chunked parts"
    public static let multiDelete = "S3 multi-object delete"

    public let client: S3Client
    /// Where the probe's objects go (`<prefix>test/`); every one is deleted at the end.
    public let prefix: String

    public init(client: S3Client, prefix: String) {
        self.client = client
        self.prefix = prefix
    }

    /// Runs every probe, in order.
    public func run() async -> [Finding] {
        let id = UUID().uuidString.lowercased()
        let first = "\(prefix)probe-\(id)-put"
        let second = "\(prefix)probe-\(id)-chunked"
        var findings: [Finding] = []
        findings.append(await probeEncryption(key: first))
        findings.append(await probeConditionalPut(key: first))
        findings.append(await probeAWSChunked(key: second))
        findings.append(await probeConditionalComplete(key: first))
        findings.append(await probeMultiDelete(keys: [first, second]))
        // Whatever a probe left (a failed one may leave its object): gone, one by one.
        for key in [first, second] { try? await client.deleteObject(key: key) }
        return findings
    }

    /// A small body that says what it is.
    private func body(_ label: String) -> ByteBuffer {
        ByteBuffer(string: "tenant-backup store probe (\(label)) \(Date().timeIntervalSince1970)\n")
    }

    private func probeEncryption(key: String) async -> Finding {
        let asked = client.configuration.serverSideEncryption.confirmationValue
        var headers = client.writeHeaders(S3WriteOptions(contentType: "text/plain"))
        headers.append(("If-None-Match", "*"))
        let answer: S3Client.Response
        do {
            answer = try await client.send("PutObject", method: .PUT, key: key, headers: headers, body: .buffer(body("encryption")), retry: .never)
        } catch {
            if asked != nil, error.code == "InvalidRequest" {
                return Finding(
                    name: Self.encryption, outcome: .failed,
                    detail: "the store refused a write asking for server-side encryption: \(error); every backup fails until this is fixed",
                    hint: error.hint)
            }
            return Finding(
                name: Self.encryption, outcome: .unknown, detail: "a test write with the settings' headers failed: \(error)",
                hint: error.hint ?? "the credentials need s3:PutObject on \(prefix)*")
        }
        guard let asked else {
            return Finding(
                name: Self.encryption, outcome: .notSupported,
                detail: "not requested (s3.server_side_encryption: none): backups are encrypted at rest only if the store does it by itself",
                hint: "set s3.server_side_encryption: AES256 where the store applies it")
        }
        let answered = answer.headers.first(name: "x-amz-server-side-encryption")
        guard answered == asked else {
            return Finding(
                name: Self.encryption, outcome: .failed,
                detail: "encryption requested but not applied by this store: asked for \(asked), "
                    + (answered.map { "the answer says \($0)" } ?? "the answer carries no x-amz-server-side-encryption header")
                    + "; every backup fails until this is fixed",
                hint: "configure the store's server-side encryption (Ceph RGW: rgw crypt sse s3 backend or rgw crypt default encryption key), "
                    + "or set s3.server_side_encryption: none if the store encrypts at rest by itself")
        }
        return Finding(name: Self.encryption, outcome: .supported, detail: "the store confirmed \(asked) on a test write", hint: nil)
    }

    private func probeConditionalPut(key: String) async -> Finding {
        // Only a write to a key that is taken tests the condition: the first write may have failed.
        do {
            _ = try await client.headObject(key: key)
        } catch {
            return Finding(
                name: Self.conditionalPut, outcome: .unknown,
                detail: "not tested: the probe's first object is not there to write over (\(error))", hint: error.hint)
        }
        do {
            _ = try await client.send(
                "PutObject", method: .PUT, key: key, headers: [("Content-Type", "text/plain"), ("If-None-Match", "*")] + client.configuration.serverSideEncryption.headers,
                body: .buffer(body("conditional put")), retry: .never)
        } catch {
            if error.status == 412 {
                return Finding(name: Self.conditionalPut, outcome: .supported, detail: "honoured: a second write to a taken key was refused (412)", hint: nil)
            }
            return Finding(name: Self.conditionalPut, outcome: .unknown, detail: "the probe failed: \(error)", hint: error.hint)
        }
        return Finding(
            name: Self.conditionalPut, outcome: .failed,
            detail: "ignored: the store replaced an existing object despite If-None-Match: *; a backup, manifest or audit record could be overwritten by another writer",
            hint: "use a store that honours conditional writes (Amazon S3, Ceph RGW, MinIO do), and give each backup host its own s3.prefix")
    }

    private func probeAWSChunked(key: String) async -> Finding {
        let payload = body("aws-chunked")
        let uploadId: String
        do {
            uploadId = try await rawCreate(key: key)
        } catch {
            return Finding(name: Self.awsChunked, outcome: .unknown, detail: "CreateMultipartUpload failed: \(error)", hint: error.hint)
        }
        do {
            let (stream, continuation) = AsyncStream.makeStream(of: ByteBuffer.self)
            continuation.yield(payload)
            continuation.finish()
            let part = try await client.uploadPartStreaming(
                key: key, uploadId: uploadId, partNumber: 1, length: payload.readableBytes, chunkSize: payload.readableBytes, chunks: stream)
            try await rawComplete(key: key, uploadId: uploadId, parts: [part], conditional: false)
        } catch {
            try? await client.abortMultipartUpload(key: key, uploadId: uploadId)
            return Finding(
                name: Self.awsChunked, outcome: .notSupported,
                detail: "a part sent aws-chunked was refused (\(error.shortCause)): an upload whose first streamed part is refused sends the rest buffered",
                hint: "set backup.stream_parts: false to skip the attempt")
        }
        do {
            let stored = try await client.getObject(key: key)
            guard stored == payload else {
                return Finding(
                    name: Self.awsChunked, outcome: .failed,
                    detail: "a part sent aws-chunked was stored as \(stored.readableBytes) bytes, not the \(payload.readableBytes) sent: the store keeps the chunk framing in the body",
                    hint: "set backup.stream_parts: false; every streamed backup made so far on this store is corrupt")
            }
        } catch {
            return Finding(name: Self.awsChunked, outcome: .unknown, detail: "reading the streamed part back failed: \(error)", hint: error.hint)
        }
        return Finding(name: Self.awsChunked, outcome: .supported, detail: "a part sent aws-chunked (signed chunks) was stored byte for byte", hint: nil)
    }

    private func probeConditionalComplete(key: String) async -> Finding {
        let before: ByteBuffer
        let uploadId: String
        do {
            before = try await client.getObject(key: key)
            uploadId = try await rawCreate(key: key)
        } catch {
            return Finding(name: Self.conditionalComplete, outcome: .unknown, detail: "the probe could not start: \(error)", hint: error.hint)
        }
        do {
            let part = try await client.uploadPart(key: key, uploadId: uploadId, partNumber: 1, body: body("conditional complete"))
            try await rawComplete(key: key, uploadId: uploadId, parts: [part], conditional: true)
        } catch {
            try? await client.abortMultipartUpload(key: key, uploadId: uploadId)
            if error.status == 412 || error.code == "PreconditionFailed" {
                return Finding(
                    name: Self.conditionalComplete, outcome: .supported,
                    detail: "honoured: completing an upload at a taken key was refused (412)", hint: nil)
            }
            return Finding(name: Self.conditionalComplete, outcome: .unknown, detail: "the probe failed: \(error)", hint: error.hint)
        }
        let replaced = (try? await client.getObject(key: key)) != before
        return Finding(
            name: Self.conditionalComplete, outcome: .notSupported,
            detail: "ignored: completing an upload at a taken key " + (replaced ? "replaced the object" : "answered success")
                + "; multipart backups check the key with a HEAD before starting and again just before completing, under the tenant's lock, "
                + "so only another writer racing into that moment could be replaced",
            hint: "nothing to set; give each backup host its own s3.prefix so no other writer uses these keys")
    }

    private func probeMultiDelete(keys: [String]) async -> Finding {
        do throws(S3Error) {
            let result = try await client.deleteObjects(keys: keys)
            guard result.failures.isEmpty else {
                let failure = result.failures[0]
                return Finding(
                    name: Self.multiDelete, outcome: .failed,
                    detail: "DeleteObjects refused \(failure.key): \(failure.code) \(failure.message)",
                    hint: "the credentials need s3:DeleteObject; retention deletes with DeleteObjects")
            }
            for key in keys {
                do {
                    _ = try await client.headObject(key: key)
                    return Finding(
                        name: Self.multiDelete, outcome: .failed, detail: "DeleteObjects answered success and \(key) is still there",
                        hint: "retention cannot delete on this store")
                } catch {
                    guard error.status == 404 else { throw error }
                }
            }
        } catch {
            return Finding(
                name: Self.multiDelete, outcome: .failed, detail: "DeleteObjects (with Content-MD5) failed: \(error)",
                hint: error.hint ?? "retention deletes with DeleteObjects")
        }
        return Finding(name: Self.multiDelete, outcome: .supported, detail: "DeleteObjects with Content-MD5 removed \(keys.count) objects", hint: nil)
    }

    /// CreateMultipartUpload without the encryption check (the encryption probe reports it).
    private func rawCreate(key: String) async throws(S3Error) -> String {
        let response = try await client.send(
            "CreateMultipartUpload", method: .POST, key: key, query: [("uploads", "")],
            headers: client.writeHeaders(S3WriteOptions(contentType: "text/plain")))
        return try client.uploadId(in: response, key: key)
    }

    /// CompleteMultipartUpload as sent, without the client's own check that the key is free: the probe is
    /// whether the store refuses by itself.
    private func rawComplete(key: String, uploadId: String, parts: [S3CompletedPart], conditional: Bool) async throws(S3Error) {
        var headers: [(name: String, value: String)] = [("Content-Type", "application/xml")]
        if conditional { headers.append(("If-None-Match", "*")) }
        let response = try await client.send(
            "CompleteMultipartUpload", method: .POST, key: key, query: [("uploadId", uploadId)], headers: headers,
            body: .buffer(ByteBuffer(string: S3Client.completeBody(parts))), retry: .never)
        _ = try client.completedDocument(response, key: key)
    }
}
