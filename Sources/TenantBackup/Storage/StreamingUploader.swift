import Crypto
import Foundation
import Logging
import NIOCore
import Synchronization

/// Puts a stream of bytes into one S3 object with bounded memory: small streams as one PutObject, larger
/// ones as a multipart upload with a fixed part size and at most `partsInFlight` parts uploading at once.
///
/// The object only appears when ``complete()`` is called, so a caller that finds its source failed calls
/// ``abort()`` instead and nothing is left: no object, no multipart upload in progress.
///
/// Each part is kept in memory until S3 has confirmed it, so a failed upload is resent from memory. With
/// `streamParts`, a part also goes to S3 while it fills (aws-chunked, every chunk signed), so S3 confirms it
/// moments after its last byte instead of a whole upload later, and a long dump holds about one part, like
/// a short one. A streamed attempt that fails, for whatever reason, is followed by the buffered upload with
/// its retries; an endpoint that refuses aws-chunked bodies, or a part that times out while it fills (the dump
/// paused), makes the rest of the upload send buffered parts.
///
/// Memory: one part being filled plus `partsInFlight` parts uploading, each `partSize` bytes.
public final class StreamingUploader {
    public let client: S3Client
    public let key: String
    public let partSize: Int
    public let partsInFlight: Int
    public let streamParts: Bool
    let options: S3WriteOptions
    let logger: Logger
    /// The pieces a part is kept in and streamed as: 1 MiB, each its own mapping (see ``MemoryTuning``).
    let chunkSize: Int

    /// The part being filled: its sealed chunks, and the chunk being filled.
    private var sealed: [ByteBuffer] = []
    private var sealedBytes = 0
    private var open: ByteBuffer
    /// The streamed request of the part being filled, once it has started, and the bytes handed to it.
    private var streaming: StreamedPart?
    private var streamedBytes = 0
    /// The upload's decisions, shared with the streamed requests' tasks (which may stop streaming).
    private let decisions: SharedDecisions
    private var uploadId: String?
    /// Whether starting the upload took a second attempt (the first may have started an upload of its own).
    private var createRetried = false
    private var inFlight: [Task<ShippedPart, any Error>] = []
    private var completedParts: [S3CompletedPart] = []
    /// The MD5 of each confirmed part, in part order: the completed object's ETag is computed from them.
    private var partMD5s: [Data] = []
    private var hasher = SHA256()
    private var byteCount: Int64 = 0
    private var finished = false

    /// A part's aws-chunked request: its bytes go in through `chunks` as they are sealed.
    private struct StreamedPart {
        let chunks: AsyncStream<ByteBuffer>.Continuation
        let request: Task<S3CompletedPart, any Error>

        /// Stops the request, which then fails (the body is short), and waits for it to end.
        func cancel() async {
            request.cancel()
            chunks.finish()
            _ = try? await request.value
        }
    }

    /// A part the store confirmed, with the MD5 of what was sent.
    private struct ShippedPart: Sendable {
        let part: S3CompletedPart
        let md5: Data
    }

    /// What was stored.
    public struct Result: Sendable, Equatable {
        public let key: String
        public let bytes: Int64
        /// Hex SHA-256 of the stored bytes.
        public let sha256: String
        /// 0 for a single PutObject.
        public let parts: Int
        /// The server-side encryption the store confirmed (`AES256`, `aws:kms`); `nil` when none was asked.
        public var serverSideEncryption: String?
        /// Bytes handed to streamed requests that stored nothing and were sent again from memory: the part the
        /// dump ended in (when it had streamed), and parts whose streamed request failed.
        public var resentBytes: Int64 = 0

        public init(key: String, bytes: Int64, sha256: String, parts: Int, serverSideEncryption: String?, resentBytes: Int64 = 0) {
            self.key = key
            self.bytes = bytes
            self.sha256 = sha256
            self.parts = parts
            self.serverSideEncryption = serverSideEncryption
            self.resentBytes = resentBytes
        }
    }

    public init(
        client: S3Client, key: String, partSize: Int, partsInFlight: Int, streamParts: Bool = true,
        options: S3WriteOptions, logger: Logger
    ) {
        self.client = client
        self.key = key
        self.partSize = partSize
        self.partsInFlight = max(1, partsInFlight)
        self.streamParts = streamParts
        self.options = options
        self.logger = logger
        self.chunkSize = min(1 << 20, partSize)
        self.open = ByteBuffer()
        self.decisions = SharedDecisions(UploadDecisions(partSize: partSize, streamParts: streamParts))
    }

    /// Bytes written so far.
    public var bytesWritten: Int64 { byteCount }

    /// What was written so far, described as a stored object: for an upload that S3 completed although our
    /// request to complete it was cut off (the parts count is the confirmed parts').
    public var writtenSoFar: Result {
        // The store's confirmation of this object was never seen: claim no encryption.
        Result(key: key, bytes: byteCount, sha256: SigV4Signer.hex(hasher.finalize()), parts: completedParts.count, serverSideEncryption: nil)
    }

    /// Appends bytes; ships a part each time one is full, waiting while `partsInFlight` are uploading.
    public func write(_ bytes: ByteBuffer) async throws {
        precondition(!finished, "write after complete or abort")
        guard bytes.readableBytes > 0 else { return }
        hasher.update(data: bytes.readableBytesView)
        byteCount += Int64(bytes.readableBytes)
        var remaining = bytes
        while remaining.readableBytes > 0 {
            if open.capacity == 0 { open.reserveCapacity(chunkSize) }
            let take = min(chunkSize - open.readableBytes, partSize - sealedBytes - open.readableBytes, remaining.readableBytes)
            var slice = remaining.readSlice(length: take)!
            open.writeBuffer(&slice)
            let partFull = sealedBytes + open.readableBytes == partSize
            if open.readableBytes == chunkSize || partFull {
                try await sealChunk()
            }
            if partFull {
                try await shipCurrentPart()
            }
        }
    }

    /// Moves the open chunk to the part's sealed chunks and on to the part's streamed request, starting that
    /// request once the part is worth streaming.
    private func sealChunk() async throws {
        let chunk = open
        open = ByteBuffer()
        sealed.append(chunk)
        sealedBytes += chunk.readableBytes
        let sealedBytes = self.sealedBytes
        let isStreaming = streaming != nil
        switch decisions.state.withLock({ $0.chunkSealed(sealedBytes: sealedBytes, streaming: isStreaming) }) {
        case .appendToStream:
            streaming?.chunks.yield(chunk)
            streamedBytes += chunk.readableBytes
        case .startStream: try await startStreaming()
        case .keep: break
        }
    }

    private func startStreaming() async throws {
        let uploadId = try await startedUpload()
        let (stream, continuation) = AsyncStream.makeStream(of: ByteBuffer.self)
        for chunk in sealed { continuation.yield(chunk) }
        streamedBytes = sealedBytes
        let client = self.client
        let key = self.key
        let number = decisions.state.withLock { $0.nextPartNumber }
        let length = partSize
        let chunkSize = self.chunkSize
        let decisions = self.decisions
        let logger = self.logger
        let request = Task {
            do {
                return try await client.uploadPartStreaming(
                    key: key, uploadId: uploadId, partNumber: number, length: length, chunkSize: chunkSize, chunks: stream)
            } catch {
                if case .resendAndStopStreaming(let reason) = UploadDecisions.streamedPartFailed(error, cancelled: Task.isCancelled),
                   decisions.state.withLock({ $0.stopStreaming(reason) }) {
                    switch reason {
                    case .refused:
                        logger.warning(
                            "the S3 endpoint refused a part sent aws-chunked; the rest of this upload sends parts buffered",
                            metadata: ["s3_key": "\(key)", "error": "\(error.briefDescription)"])
                    case .timedOut:
                        // The dump paused (a lock, a slow table) longer than a request may stay open: parts that
                        // fill this slowly gain nothing from streaming and would each be sent twice.
                        logger.info(
                            "a part sent while it filled timed out; the rest of this upload sends parts once full",
                            metadata: ["s3_key": "\(key)", "error": "\(error.briefDescription)"])
                    }
                }
                throw error
            }
        }
        streaming = StreamedPart(chunks: continuation, request: request)
    }

    private func startedUpload() async throws -> String {
        if let uploadId { return uploadId }
        // Fail before the dump is sent when the key is taken: Complete checks again, for stores that ignore
        // `If-None-Match` there.
        if client.configuration.preventOverwrites { try await client.requireAbsent(key: key, before: "CreateMultipartUpload") }
        let started = try await client.startMultipartUpload(key: key, options: options)
        uploadId = started.uploadId
        createRetried = started.retried
        logger.debug("multipart upload started", metadata: ["s3_key": "\(key)", "part_size": "\(partSize)"])
        return started.uploadId
    }

    /// Hands the sealed chunks over as the next part: its streamed request finishes (falling back to a buffered
    /// upload if it fails), or a buffered upload starts.
    private func shipCurrentPart() async throws {
        let uploadId = try await startedUpload()
        guard case .ship(let number) = decisions.state.withLock({ $0.partReady() }) else {
            throw UploadLimitError(key: key, partSize: partSize)
        }
        // Wait for room first: if an earlier part failed, this part's streamed request is still ours to cancel.
        while inFlight.count >= partsInFlight {
            confirmed(try await inFlight.removeFirst().value)
        }
        let pieces = sealed
        let streamed = streaming
        let handedToStream = streamedBytes
        sealed = []
        sealedBytes = 0
        streaming = nil
        streamedBytes = 0
        let decisions = self.decisions
        streamed?.chunks.finish()
        let client = self.client
        let key = self.key
        let logger = self.logger
        let shipped = ContinuousClock.now
        inFlight.append(Task {
            // Computed while the part uploads, off the dump's path: the part's ETag must be it.
            let md5 = S3Client.md5(of: pieces)
            var streamedPart: S3CompletedPart?
            if let streamed {
                do {
                    streamedPart = try await withTaskCancellationHandler {
                        try await streamed.request.value
                    } onCancel: {
                        streamed.request.cancel()
                    }
                } catch {
                    try Task.checkCancellation()
                    decisions.resentBytes.withLock { $0 += Int64(handedToStream) }
                    client.configuration.onRetry("UploadPart")
                    logger.info(
                        "streamed part failed; sending it again from memory",
                        metadata: ["s3_key": "\(key)", "part": "\(number)", "error": "\(error.briefDescription)"])
                }
            }
            let part: S3CompletedPart
            if let streamedPart {
                try client.confirmPart(streamedPart, md5: md5, key: key)
                part = streamedPart
            } else {
                part = try await client.uploadPart(key: key, uploadId: uploadId, partNumber: number, pieces: pieces, md5: md5)
            }
            logger.debug(
                "part confirmed",
                metadata: [
                    "s3_key": "\(key)", "part": "\(number)", "streamed": "\(streamedPart != nil)",
                    "held_ms": "\((ContinuousClock.now - shipped).milliseconds)",
                ])
            return ShippedPart(part: part, md5: md5)
        })
    }

    private func confirmed(_ shipped: ShippedPart) {
        completedParts.append(shipped.part)
        partMD5s.append(shipped.md5)
    }

    /// Stores what remains and makes the object visible. Call only once the source is known to be good.
    public func complete() async throws -> Result {
        precondition(!finished, "complete called twice")
        finished = true
        let digest = SigV4Signer.hex(hasher.finalize())
        if open.readableBytes > 0 {
            sealed.append(open)
            sealedBytes += open.readableBytes
            open = ByteBuffer()
        }
        // The part being filled is short: its streamed request, made for a whole part, cannot finish, and what
        // it was handed goes again in the part sent from memory (less than a part: see UploadDecisions).
        if let streaming {
            decisions.resentBytes.withLock { $0 += Int64(streamedBytes) }
            logger.debug(
                "the dump ended in a part that was streaming; the part goes again from memory",
                metadata: ["s3_key": "\(key)", "bytes_streamed": "\(streamedBytes)", "part_bytes": "\(sealedBytes)"])
            await streaming.cancel()
        }
        streaming = nil
        streamedBytes = 0
        let resentBytes = decisions.resentBytes.withLock { $0 }
        let sealedBytes = self.sealedBytes
        let shipLastPart: Bool
        switch decisions.state.withLock({ $0.completion(sealedBytes: sealedBytes) }) {
        case .putObject(let abortStartedUpload):
            // Smaller than one part: a single PutObject, and the upload started for streaming goes.
            if abortStartedUpload { await abortUpload(because: "the object is smaller than one part") }
            _ = try await client.putObject(key: key, pieces: sealed, options: options)
            sealed = []
            return Result(
                key: key, bytes: byteCount, sha256: digest, parts: 0, serverSideEncryption: client.configuration.serverSideEncryption.confirmationValue,
                resentBytes: resentBytes)
        case .completeMultipart(let last):
            shipLastPart = last
        }
        do {
            if shipLastPart {
                try await shipCurrentPart()
            }
            for task in inFlight { confirmed(try await task.value) }
            inFlight.removeAll()
            try await client.completeMultipartUpload(key: key, uploadId: uploadId!, parts: completedParts)
        } catch {
            await abortUpload()
            throw error
        }
        // A Create whose answer was lost may have started an upload that only now reached the store.
        if createRetried { await client.abortOtherUploads(key: key, keeping: uploadId!) }
        // Complete's answer is not enough (RGW's carries no ETag): the stored object must be the one sent.
        let encryption = try await client.confirmStoredMultipart(key: key, bytes: byteCount, partMD5s: partMD5s)
        return Result(
            key: key, bytes: byteCount, sha256: digest, parts: completedParts.count, serverSideEncryption: encryption,
            resentBytes: decisions.resentBytes.withLock { $0 })
    }

    /// Cancels parts in flight and aborts the multipart upload, so nothing of this object remains.
    public func abort() async {
        finished = true
        await abortUpload()
    }

    private func abortUpload(because reason: String? = nil) async {
        await streaming?.cancel()
        streaming = nil
        for task in inFlight { task.cancel() }
        for task in inFlight { _ = try? await task.value }
        inFlight.removeAll()
        open = ByteBuffer()
        guard let uploadId else { return }
        self.uploadId = nil
        let retried = createRetried
        // Abort even when the caller is being cancelled: an abandoned upload keeps its parts (and costs) forever.
        let client = self.client
        let key = self.key
        let logger = self.logger
        await Task {
            do {
                if retried { await client.abortOtherUploads(key: key, keeping: uploadId) }
                try await client.abortMultipartUpload(key: key, uploadId: uploadId)
                if let reason {
                    logger.debug("multipart upload aborted", metadata: ["s3_key": "\(key)", "reason": "\(reason)"])
                } else {
                    logger.info("multipart upload aborted", metadata: ["s3_key": "\(key)"])
                }
            } catch {
                logger.error(
                    "multipart upload could not be aborted; it will be cleaned by retention's grace-period sweep",
                    metadata: ["s3_key": "\(key)", "error": "\(error)"])
            }
        }.value
    }
}

/// An upload's ``UploadDecisions``, and its count of bytes sent again, shared with its streamed requests' tasks.
final class SharedDecisions: Sendable {
    let state: Mutex<UploadDecisions>
    let resentBytes = Mutex<Int64>(0)

    init(_ decisions: UploadDecisions) {
        state = Mutex(decisions)
    }
}

extension Error {
    /// An answer that says the endpoint does not take aws-chunked bodies (rather than a passing failure):
    /// not implemented, or a 4xx about the request or its signature, other than a timeout.
    var isRefusalOfStreaming: Bool {
        guard let error = self as? S3Error, case .service(let status, let code, _, _) = error.cause else { return false }
        if status == 501 { return true }
        return (400..<500).contains(status) && code != "RequestTimeout" && code != "RequestTimeTooSkewed" && !error.isTransient
    }
}

extension Error {
    /// The cause of an S3 failure without its operation and key (the log line has them), or the error itself.
    var briefDescription: String { (self as? S3Error)?.shortCause ?? "\(self)" }
}

/// A stream larger than 10,000 parts of the chosen size.
public struct UploadLimitError: Error, CustomStringConvertible {
    public let key: String
    public let partSize: Int
    public var description: String {
        "\(key): the dump outgrew S3's 10,000 parts of \(partSize) bytes; raise backup.part_size (the estimate of the schema's size was too low)"
    }
}
