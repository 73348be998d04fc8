import Crypto
import Foundation
import Logging
import NIOCore

/// Puts a stream of bytes into one S3 object with bounded memory: small streams as one PutObject, larger
/// ones as a multipart upload with a fixed part size and at most `partsInFlight` parts uploading at once.
///
/// The object only appears when ``complete()`` is called, so a caller that finds its source failed calls
/// ``abort()`` instead and nothing is left: no object, no multipart upload in progress.
///
/// Memory: one part being filled plus `partsInFlight` parts uploading, each `partSize` bytes.
public final class StreamingUploader {
    public let client: S3Client
    public let key: String
    public let partSize: Int
    public let partsInFlight: Int
    let options: S3WriteOptions
    let logger: Logger

    private var current: ByteBuffer
    private var uploadId: String?
    private var nextPartNumber = 1
    private var inFlight: [Task<S3CompletedPart, any Error>] = []
    private var completedParts: [S3CompletedPart] = []
    private var hasher = SHA256()
    private var byteCount: Int64 = 0
    private var finished = false

    /// What was stored.
    public struct Result: Sendable, Equatable {
        public let key: String
        public let bytes: Int64
        /// Hex SHA-256 of the stored bytes.
        public let sha256: String
        /// 0 for a single PutObject.
        public let parts: Int
    }

    public init(client: S3Client, key: String, partSize: Int, partsInFlight: Int, options: S3WriteOptions, logger: Logger) {
        self.client = client
        self.key = key
        self.partSize = partSize
        self.partsInFlight = max(1, partsInFlight)
        self.options = options
        self.logger = logger
        self.current = ByteBuffer()
        self.current.reserveCapacity(partSize)
    }

    /// Bytes written so far.
    public var bytesWritten: Int64 { byteCount }

    /// Appends bytes; ships a part each time one is full, waiting while `partsInFlight` are uploading.
    public func write(_ bytes: ByteBuffer) async throws {
        precondition(!finished, "write after complete or abort")
        guard bytes.readableBytes > 0 else { return }
        hasher.update(data: bytes.readableBytesView)
        byteCount += Int64(bytes.readableBytes)
        var remaining = bytes
        while remaining.readableBytes > 0 {
            let room = partSize - current.readableBytes
            let take = min(room, remaining.readableBytes)
            var slice = remaining.readSlice(length: take)!
            current.writeBuffer(&slice)
            if current.readableBytes == partSize {
                try await shipCurrentPart()
            }
        }
    }

    private func shipCurrentPart() async throws {
        if uploadId == nil {
            uploadId = try await client.createMultipartUpload(key: key, options: options)
            logger.debug("multipart upload started", metadata: ["s3_key": "\(key)", "part_size": "\(partSize)"])
        }
        guard nextPartNumber <= S3Client.maximumParts else {
            throw UploadLimitError(key: key, partSize: partSize)
        }
        while inFlight.count >= partsInFlight {
            completedParts.append(try await inFlight.removeFirst().value)
        }
        let part = current
        current = ByteBuffer()
        current.reserveCapacity(partSize)
        let number = nextPartNumber
        nextPartNumber += 1
        let client = self.client
        let key = self.key
        let uploadId = self.uploadId!
        inFlight.append(Task {
            try await client.uploadPart(key: key, uploadId: uploadId, partNumber: number, body: part)
        })
    }

    /// Stores what remains and makes the object visible. Call only once the source is known to be good.
    public func complete() async throws -> Result {
        precondition(!finished, "complete called twice")
        finished = true
        let digest = SigV4Signer.hex(hasher.finalize())
        if uploadId == nil {
            try await client.putObject(key: key, body: current, options: options)
            current = ByteBuffer()
            return Result(key: key, bytes: byteCount, sha256: digest, parts: 0)
        }
        do {
            if current.readableBytes > 0 {
                try await shipCurrentPart()
            }
            for task in inFlight { completedParts.append(try await task.value) }
            inFlight.removeAll()
            try await client.completeMultipartUpload(key: key, uploadId: uploadId!, parts: completedParts)
        } catch {
            await abortUpload()
            throw error
        }
        return Result(key: key, bytes: byteCount, sha256: digest, parts: completedParts.count)
    }

    /// Cancels parts in flight and aborts the multipart upload, so nothing of this object remains.
    public func abort() async {
        finished = true
        await abortUpload()
    }

    private func abortUpload() async {
        for task in inFlight { task.cancel() }
        for task in inFlight { _ = try? await task.value }
        inFlight.removeAll()
        current = ByteBuffer()
        guard let uploadId else { return }
        self.uploadId = nil
        // Abort even when the caller is being cancelled: an abandoned upload keeps its parts (and costs) forever.
        let client = self.client
        let key = self.key
        let logger = self.logger
        await Task {
            do {
                try await client.abortMultipartUpload(key: key, uploadId: uploadId)
                logger.info("multipart upload aborted", metadata: ["s3_key": "\(key)"])
            } catch {
                logger.error(
                    "multipart upload could not be aborted; it will be cleaned by retention's grace-period sweep",
                    metadata: ["s3_key": "\(key)", "error": "\(error)"])
            }
        }.value
    }
}

/// A stream larger than 10,000 parts of the chosen size.
public struct UploadLimitError: Error, CustomStringConvertible {
    public let key: String
    public let partSize: Int
    public var description: String {
        "\(key): the dump outgrew S3's 10,000 parts of \(partSize) bytes; raise backup.part_size (the estimate of the schema's size was too low)"
    }
}
