import Logging
import NIOCore

/// One object written as it streams, visible only once completed: ``StreamingUploader`` in S3, a buffer in
/// `MemoryObjectStore`.
public protocol ObjectUpload: AnyObject {
    /// Bytes written so far.
    var bytesWritten: Int64 { get }
    /// What was written so far, described as a stored object (for an upload the store completed although our
    /// request to complete it was cut off).
    var writtenSoFar: StreamingUploader.Result { get }
    func write(_ bytes: ByteBuffer) async throws
    /// Makes the object visible; fails with a 412 when the key is taken (the store refuses to overwrite).
    func complete() async throws -> StreamingUploader.Result
    /// Drops what was written; nothing becomes visible.
    func abort() async
}

/// What one schema's backup asks of the store: a streaming upload of the dump, one small write for its
/// manifest, and the size of an object (after a stop cut off the answer to our completion).
public protocol BackupStore: Sendable {
    func upload(key: String, partSize: Int, backup: BackupSettings, options: S3WriteOptions, logger: Logger) -> any ObjectUpload
    /// Stores a small object with one write; returns its ETag as the store answered.
    func put(key: String, body: ByteBuffer, contentType: String) async throws(S3Error) -> String
    /// The stored object's size; a 404 when there is none.
    func size(of key: String) async throws(S3Error) -> Int64
}

extension StreamingUploader: ObjectUpload {}

extension S3Client: BackupStore {
    public func upload(key: String, partSize: Int, backup: BackupSettings, options: S3WriteOptions, logger: Logger) -> any ObjectUpload {
        StreamingUploader(
            client: self, key: key, partSize: partSize, partsInFlight: backup.partsInFlight, streamParts: backup.streamParts, options: options, logger: logger)
    }

    public func put(key: String, body: ByteBuffer, contentType: String) async throws(S3Error) -> String {
        try await putObject(key: key, body: body, options: S3WriteOptions(contentType: contentType))
    }

    public func size(of key: String) async throws(S3Error) -> Int64 {
        try await headObject(key: key).size
    }
}

/// Runs pg_dump as a ``PgDumpProcess`` describes it, handing its output over as it comes: the real process, or
/// in unit tests a dump that yields bytes, fails or never ends.
public protocol DumpLauncher: Sendable {
    func dump(_ process: PgDumpProcess, consume: (ByteBuffer) async throws -> Void) async throws(PgDumpFailure) -> PgDumpProcess.Outcome
}

/// pg_dump, for real.
public struct PgDumpLauncher: DumpLauncher {
    public init() {}

    public func dump(_ process: PgDumpProcess, consume: (ByteBuffer) async throws -> Void) async throws(PgDumpFailure) -> PgDumpProcess.Outcome {
        try await process.run(consume: consume)
    }
}
