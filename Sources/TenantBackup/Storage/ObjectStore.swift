import NIOCore

/// What the backup catalog and retention need of a bucket: list, read, delete, and sweep incomplete uploads.
/// ``S3Client`` is the real one; `TenantBackupTesting` has one in memory, so the brakes and the cycle's
/// decisions are unit-tested without an endpoint (as Hummingbird pairs `PersistDriver` with
/// `MemoryPersistDriver`).
public protocol ObjectStore: Sendable {
    /// Every object under `prefix`, in key order; at most `limit` when given.
    func list(prefix: String, limit: Int?) async throws(S3Error) -> [S3ObjectSummary]
    /// An object's bytes, refusing more than `limit`.
    func get(key: String, limit: Int) async throws(S3Error) -> ByteBuffer
    /// Deletes keys; a key that does not exist counts as deleted.
    func delete(keys: [String]) async throws(S3Error) -> S3DeleteResult
    /// Multipart uploads in progress under `prefix`.
    func incompleteUploads(prefix: String) async throws(S3Error) -> [S3MultipartUpload]
    /// Aborts one; an upload already gone counts as aborted.
    func abortUpload(key: String, uploadId: String) async throws(S3Error)
    /// Stores a small object only if the key is free (`If-None-Match: *`); an existing key fails with 412.
    func create(key: String, body: ByteBuffer, contentType: String) async throws(S3Error)
}

extension S3Client: ObjectStore {
    public func list(prefix: String, limit: Int?) async throws(S3Error) -> [S3ObjectSummary] {
        guard let limit else { return try await listObjects(prefix: prefix).collect() }
        var found: [S3ObjectSummary] = []
        var listing = listObjects(prefix: prefix, pageSize: max(1, min(limit, 1000))).makeAsyncIterator()
        while found.count < limit, let object = try await listing.next() { found.append(object) }
        return found
    }

    public func get(key: String, limit: Int) async throws(S3Error) -> ByteBuffer {
        try await getObject(key: key, limit: limit)
    }

    public func delete(keys: [String]) async throws(S3Error) -> S3DeleteResult {
        try await deleteObjects(keys: keys)
    }

    public func incompleteUploads(prefix: String) async throws(S3Error) -> [S3MultipartUpload] {
        try await listMultipartUploads(prefix: prefix)
    }

    public func abortUpload(key: String, uploadId: String) async throws(S3Error) {
        try await abortMultipartUpload(key: key, uploadId: uploadId)
    }

    public func create(key: String, body: ByteBuffer, contentType: String) async throws(S3Error) {
        var client = self
        client.configuration.preventOverwrites = true
        try await client.putObject(key: key, body: body, options: S3WriteOptions(contentType: contentType))
    }
}
