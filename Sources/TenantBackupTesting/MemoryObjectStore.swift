import Crypto
import Foundation
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
