import Crypto
import Foundation
import Logging
import NIOCore
import Synchronization
import TenantBackup

/// An ``ObjectStore`` in memory, for unit tests of the catalog, retention and the cycle's decisions: keys
/// listed in byte order as S3 lists them, incomplete uploads with their start time, and every deletion
/// recorded. `ObjectStoreConformanceTests` runs the same cases against it and against the real stores of the
/// test services, so it answers as they do.
public final class MemoryObjectStore: ObjectStore {
    private struct State {
        var objects: [String: ByteBuffer] = [:]
        var modified: [String: Date] = [:]
        var uploads: [S3MultipartUpload] = []
        var deletedKeys: [String] = []
        var reads: [String] = []
        /// Keys whose single writes (``put(key:body:contentType:)``) fail with a 500.
        var failingWrites: Set<String> = []
        /// Uploads started, completed and aborted, by key.
        var uploadsStarted: [String] = []
        var uploadsAborted: [String] = []
    }

    private let state = Mutex(State())

    public init() {}

    /// Stores an object (replacing one with that key).
    public func put(_ key: String, _ text: String = "bytes") {
        state.withLock { $0.objects[key] = ByteBuffer(string: text) }
    }

    /// Stores an object with these bytes; `lastModified` is what listings say of it (`nil`: they say nothing,
    /// as some stores do).
    public func put(_ key: String, bytes: ByteBuffer, lastModified: Date? = nil) {
        state.withLock {
            $0.objects[key] = bytes
            $0.modified[key] = lastModified
        }
    }

    /// An incomplete multipart upload started at `initiated`.
    public func startUpload(key: String, initiated: Date) {
        state.withLock { $0.uploads.append(S3MultipartUpload(key: key, uploadId: UUID().uuidString, initiated: initiated)) }
    }

    /// Every key, in byte order.
    public var keys: [String] { state.withLock { $0.objects.keys.sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) } } }
    /// Keys deleted so far, in order.
    public var deletedKeys: [String] { state.withLock { $0.deletedKeys } }
    /// Keys read so far, in order.
    public var reads: [String] { state.withLock { $0.reads } }
    /// Uploads still in progress.
    public var uploads: [S3MultipartUpload] { state.withLock { $0.uploads } }

    /// A single PUT's ETag, as S3 lists it: the hex MD5 of the body.
    static func eTag(_ body: ByteBuffer) -> String {
        Insecure.MD5.hash(data: body.readableBytesView).map { String(format: "%02x", $0) }.joined()
    }

    public func list(prefix: String, limit: Int?) async throws(S3Error) -> [S3ObjectSummary] {
        let matching = state.withLock { state in
            state.objects.filter { $0.key.hasPrefix(prefix) }
                .map { S3ObjectSummary(key: $0.key, size: Int64($0.value.readableBytes), eTag: Self.eTag($0.value), lastModified: state.modified[$0.key]) }
        }.sorted { Array($0.key.utf8).lexicographicallyPrecedes(Array($1.key.utf8)) }
        return limit.map { Array(matching.prefix($0)) } ?? matching
    }

    public func get(key: String, limit: Int) async throws(S3Error) -> ByteBuffer {
        let found: ByteBuffer? = state.withLock { state in
            state.reads.append(key)
            return state.objects[key]
        }
        guard let found else {
            throw S3Error(operation: "GetObject", bucket: "memory", key: key, cause: .service(status: 404, code: "NoSuchKey", message: nil, requestId: nil))
        }
        guard found.readableBytes <= limit else {
            throw S3Error(operation: "GetObject", bucket: "memory", key: key, cause: .invalidResponse("larger than \(limit) bytes"))
        }
        return found
    }

    public func delete(keys: [String]) async throws(S3Error) -> S3DeleteResult {
        state.withLock { state in
            for key in keys {
                state.objects[key] = nil
                state.deletedKeys.append(key)
            }
        }
        var result = S3DeleteResult()
        result.deleted = keys
        return result
    }

    public func incompleteUploads(prefix: String) async throws(S3Error) -> [S3MultipartUpload] {
        state.withLock { $0.uploads.filter { $0.key.hasPrefix(prefix) } }
    }

    public func abortUpload(key: String, uploadId: String) async throws(S3Error) {
        state.withLock { $0.uploads.removeAll { $0.uploadId == uploadId } }
    }

    public func create(key: String, body: ByteBuffer, contentType: String) async throws(S3Error) {
        let created = state.withLock { state -> Bool in
            guard state.objects[key] == nil else { return false }
            state.objects[key] = body
            state.modified[key] = Date()
            return true
        }
        guard created else {
            throw S3Error(operation: "PutObject", bucket: "memory", key: key, cause: .service(status: 412, code: "PreconditionFailed", message: nil, requestId: nil))
        }
    }
}

extension MemoryObjectStore: BackupStore {
    /// Single writes to `key` fail with a 500 from now on (a manifest the store will not take).
    public func failWrites(to key: String) {
        state.withLock { _ = $0.failingWrites.insert(key) }
    }

    /// The keys uploads were started for, and those aborted, in order.
    public var uploadsStarted: [String] { state.withLock { $0.uploadsStarted } }
    public var uploadsAborted: [String] { state.withLock { $0.uploadsAborted } }

    public func upload(key: String, partSize: Int, backup: BackupSettings, options: S3WriteOptions, logger: Logger) -> any ObjectUpload {
        state.withLock { $0.uploadsStarted.append(key) }
        return Upload(store: self, key: key)
    }

    public func put(key: String, body: ByteBuffer, contentType: String) async throws(S3Error) -> String {
        let refused = state.withLock { state -> Bool in
            guard !state.failingWrites.contains(key) else { return true }
            state.objects[key] = body
            state.modified[key] = Date()
            return false
        }
        if refused {
            throw S3Error(operation: "PutObject", bucket: "memory", key: key, cause: .service(status: 500, code: "InternalError", message: nil, requestId: nil))
        }
        return Self.eTag(body)
    }

    public func size(of key: String) async throws(S3Error) -> Int64 {
        guard let body = state.withLock({ $0.objects[key] }) else {
            throw S3Error(operation: "HeadObject", bucket: "memory", key: key, cause: .service(status: 404, code: "NotFound", message: nil, requestId: nil))
        }
        return Int64(body.readableBytes)
    }

    /// An upload in memory: the object appears whole at ``complete()``, and only if its key is free (as a
    /// store that refuses overwrites answers: 412).
    final class Upload: ObjectUpload {
        let store: MemoryObjectStore
        let key: String
        private var buffer = ByteBuffer()
        private var hasher = SHA256()

        init(store: MemoryObjectStore, key: String) {
            self.store = store
            self.key = key
        }

        var bytesWritten: Int64 { Int64(buffer.readableBytes) }

        var writtenSoFar: StreamingUploader.Result {
            StreamingUploader.Result(
                key: key, bytes: bytesWritten, sha256: hasher.finalize().map { String(format: "%02x", $0) }.joined(), parts: 0, serverSideEncryption: nil)
        }

        func write(_ bytes: ByteBuffer) async throws {
            var bytes = bytes
            hasher.update(data: bytes.readableBytesView)
            buffer.writeBuffer(&bytes)
        }

        func complete() async throws -> StreamingUploader.Result {
            // As a store that refuses overwrites: the object appears only if its key is free (412 otherwise).
            try await store.create(key: key, body: buffer, contentType: "application/octet-stream")
            return writtenSoFar
        }

        func abort() async {
            buffer.clear()
            store.state.withLock { $0.uploadsAborted.append(key) }
        }
    }
}

extension BackupManifest {
    /// The manifest the unit tests write beside a backup holding `body`: its key, area, schema and size, the
    /// rest fixed.
    public static func describing(_ backup: BackupKey, body: String, sharedBackups: [String] = []) -> BackupManifest {
        BackupManifest(
            area: backup.area == .tenant ? "tenant" : "shared", schema: backup.schema, key: backup.key, bytes: Int64(body.utf8.count), sha256: "00",
            dumpBytes: 1, compression: "zstd", encryption: nil, format: "plain", pgDumpVersion: "15", serverVersion: "15", toolVersion: "test",
            startedAt: backup.timestamp, finishedAt: backup.timestamp, sharedBackups: sharedBackups, tableRowCounts: [:])
    }
}

extension MemoryObjectStore {
    /// Stores `body` at `backup`'s key and ``BackupManifest/describing(_:body:sharedBackups:)`` beside it,
    /// signed by `signer` (unsigned when `nil`). Returns the manifest before signing.
    @discardableResult
    public func putBackup(_ backup: BackupKey, _ body: String, sharedBackups: [String] = [], signedBy signer: SigningKey?) throws -> BackupManifest {
        let manifest = BackupManifest.describing(backup, body: body, sharedBackups: sharedBackups)
        put(backup.key, body)
        put(backup.manifestKey, bytes: ByteBuffer(data: try (signer.map { try $0.sign(manifest) } ?? manifest).encoded()))
        return manifest
    }
}
