/// The decisions of one upload, as a value that takes events and returns what to do, free of I/O (the way
/// async-http-client's `HTTPRequestStateMachine` keeps its transitions apart from its channel): whether a
/// part streams while it fills, whether a failed streamed part ends streaming for the upload, S3's
/// 10,000-part limit, and whether the object ends as one PutObject or a completed multipart upload.
///
/// ``StreamingUploader`` feeds it and carries out its answers; the unit tests walk every branch.
struct UploadDecisions: Sendable, Equatable {
    let partSize: Int
    let streamParts: Bool
    let maximumParts: Int

    /// The number the next shipped part gets (1-based).
    private(set) var nextPartNumber = 1
    /// Whether a multipart upload was created (for streaming, or for the first full part).
    private(set) var multipartStarted = false
    /// Whether streaming ended for the rest of this upload, and why.
    private(set) var streamingStopped: StreamingStopReason?

    init(partSize: Int, streamParts: Bool, maximumParts: Int = S3Client.maximumParts) {
        self.partSize = partSize
        self.streamParts = streamParts
        self.maximumParts = maximumParts
    }

    /// Why a streamed part's failure ends streaming for the upload.
    enum StreamingStopReason: Sendable, Equatable {
        /// The endpoint does not take aws-chunked bodies (501, or a 4xx about the request).
        case refused
        /// The part filled more slowly than a request may stay open: the dump paused.
        case timedOut
    }

    // MARK: - A chunk of the part being filled was sealed

    enum ChunkAction: Sendable, Equatable {
        /// Hand the chunk to the part's streamed request.
        case appendToStream
        /// Start the part's streamed request now (creating the multipart upload first if needed), with every
        /// chunk sealed so far.
        case startStream
        /// Keep the chunk in memory only; the part goes up once full.
        case keep
    }

    /// - Parameters:
    ///   - sealedBytes: the part's bytes sealed so far, this chunk included.
    ///   - streaming: whether this part's streamed request is already running.
    mutating func chunkSealed(sealedBytes: Int, streaming: Bool) -> ChunkAction {
        if streaming { return .appendToStream }
        // Every part waits for half a part before it streams. A streamed request is made for a whole part, so
        // the part the dump ends in cannot finish and is sent again from memory: waiting means a dump that ends
        // in the first half of a part resends nothing (and a small object stays one PutObject), and one that
        // ends past it resends less than one part. Half, because the burst sent at the start then takes no
        // longer than the second half takes to fill wherever the link is at least as fast as the dump, so a
        // part is still confirmed moments after its last byte. No streamed request for a part past S3's limit
        // (the dump fails there anyway).
        guard streamParts, streamingStopped == nil, nextPartNumber <= maximumParts, sealedBytes >= partSize / 2 else {
            return .keep
        }
        multipartStarted = true
        return .startStream
    }

    // MARK: - The part being filled is full (or, at the end, is the last one)

    enum PartAction: Sendable, Equatable {
        /// Upload it as this part number (creating the multipart upload first if needed).
        case ship(partNumber: Int)
        /// The stream outgrew S3's parts: fail the upload.
        case tooManyParts
    }

    mutating func partReady() -> PartAction {
        guard nextPartNumber <= maximumParts else { return .tooManyParts }
        multipartStarted = true
        defer { nextPartNumber += 1 }
        return .ship(partNumber: nextPartNumber)
    }

    // MARK: - A streamed part failed

    enum StreamedFailureAction: Sendable, Equatable {
        /// Resend the part from memory; streaming goes on for the next parts.
        case resend
        /// Resend it, and send every later part of this upload once full; say why, once.
        case resendAndStopStreaming(StreamingStopReason)
        /// The upload is being cancelled: nothing to resend.
        case none
    }

    /// What a streamed part's failure means for the upload. Safe to ask from the part's own task: it changes
    /// nothing; record a stop with ``stopStreaming(_:)``.
    static func streamedPartFailed(_ error: any Error, cancelled: Bool) -> StreamedFailureAction {
        if cancelled { return .none }
        if error.isRefusalOfStreaming { return .resendAndStopStreaming(.refused) }
        if (error as? S3Error)?.isTimeout == true { return .resendAndStopStreaming(.timedOut) }
        return .resend
    }

    /// Records that streaming stopped; `true` the first time (the one to report).
    mutating func stopStreaming(_ reason: StreamingStopReason) -> Bool {
        guard streamingStopped == nil else { return false }
        streamingStopped = reason
        return true
    }

    // MARK: - The source ended well

    enum CompletionAction: Sendable, Equatable {
        /// Smaller than one part: one PutObject; abort the multipart upload streaming created, if any.
        case putObject(abortStartedUpload: Bool)
        /// Ship the short last part (if it holds bytes), wait for every part, complete the upload.
        case completeMultipart(shipLastPart: Bool)
    }

    func completion(sealedBytes: Int) -> CompletionAction {
        if nextPartNumber == 1 { return .putObject(abortStartedUpload: multipartStarted) }
        return .completeMultipart(shipLastPart: sealedBytes > 0)
    }
}
