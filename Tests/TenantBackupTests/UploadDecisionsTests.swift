import Testing

@testable import TenantBackup

/// The uploader's decisions, case by case, without an endpoint.
@Suite struct UploadDecisionsTests {
    let part = 8 << 20

    @Test func theFirstPartStartsStreamingAtHalfAPartSoASmallObjectStaysOnePut() {
        var decisions = UploadDecisions(partSize: part, streamParts: true)
        #expect(decisions.chunkSealed(sealedBytes: 1 << 20, streaming: false) == .keep)
        #expect(decisions.chunkSealed(sealedBytes: 3 << 20, streaming: false) == .keep)
        #expect(!decisions.multipartStarted)
        #expect(decisions.chunkSealed(sealedBytes: 4 << 20, streaming: false) == .startStream)
        #expect(decisions.multipartStarted)
        #expect(decisions.chunkSealed(sealedBytes: 5 << 20, streaming: true) == .appendToStream)
    }

    @Test func laterPartsAlsoWaitForHalfAPartSoADumpEndingEarlyInOneResendsNothing() {
        var decisions = UploadDecisions(partSize: part, streamParts: true)
        #expect(decisions.partReady() == .ship(partNumber: 1))
        #expect(decisions.chunkSealed(sealedBytes: 1 << 20, streaming: false) == .keep)
        #expect(decisions.chunkSealed(sealedBytes: 3 << 20, streaming: false) == .keep)
        #expect(decisions.completion(sealedBytes: 3 << 20) == .completeMultipart(shipLastPart: true))
        #expect(decisions.chunkSealed(sealedBytes: 4 << 20, streaming: false) == .startStream)
    }

    @Test func withStreamingOffEveryPartIsKeptUntilFull() {
        var decisions = UploadDecisions(partSize: part, streamParts: false)
        #expect(decisions.chunkSealed(sealedBytes: part, streaming: false) == .keep)
        #expect(decisions.partReady() == .ship(partNumber: 1))
        #expect(decisions.chunkSealed(sealedBytes: 1 << 20, streaming: false) == .keep)
    }

    @Test func partsAreNumberedInOrderUpToTheLimitAndThenRefused() {
        var decisions = UploadDecisions(partSize: part, streamParts: true, maximumParts: 3)
        #expect(decisions.partReady() == .ship(partNumber: 1))
        #expect(decisions.partReady() == .ship(partNumber: 2))
        #expect(decisions.partReady() == .ship(partNumber: 3))
        // No streamed request for a part past the limit, and the part itself is refused.
        #expect(decisions.chunkSealed(sealedBytes: 1 << 20, streaming: false) == .keep)
        #expect(decisions.partReady() == .tooManyParts)
        #expect(decisions.nextPartNumber == 4)
    }

    @Test func anEndpointThatRefusesAwsChunkedStopsStreamingOnce() {
        let notImplemented = S3Error(operation: "UploadPart", bucket: "b", key: "k", cause: .service(status: 501, code: "NotImplemented", message: nil, requestId: nil))
        let badRequest = S3Error(operation: "UploadPart", bucket: "b", key: "k", cause: .service(status: 400, code: "InvalidRequest", message: nil, requestId: nil))
        #expect(UploadDecisions.streamedPartFailed(notImplemented, cancelled: false) == .resendAndStopStreaming(.refused))
        #expect(UploadDecisions.streamedPartFailed(badRequest, cancelled: false) == .resendAndStopStreaming(.refused))
        var decisions = UploadDecisions(partSize: part, streamParts: true)
        _ = decisions.partReady()
        let first = decisions.stopStreaming(.refused)
        let second = decisions.stopStreaming(.timedOut)
        #expect(first && !second, "reported once")
        #expect(decisions.streamingStopped == .refused)
        #expect(decisions.chunkSealed(sealedBytes: part, streaming: false) == .keep)
    }

    @Test func aTimeoutWhileFillingStopsStreamingButAPassingFailureOnlyResends() {
        let timeout = S3Error(operation: "UploadPart", bucket: "b", key: "k", cause: .timeout("deadlineExceeded"))
        let idle = S3Error(operation: "UploadPart", bucket: "b", key: "k", cause: .service(status: 400, code: "RequestTimeout", message: nil, requestId: nil))
        let serverError = S3Error(operation: "UploadPart", bucket: "b", key: "k", cause: .service(status: 500, code: "InternalError", message: nil, requestId: nil))
        let reset = S3Error(operation: "UploadPart", bucket: "b", key: "k", cause: .transport("connection reset"))
        let skew = S3Error(operation: "UploadPart", bucket: "b", key: "k", cause: .service(status: 403, code: "RequestTimeTooSkewed", message: nil, requestId: nil))
        #expect(UploadDecisions.streamedPartFailed(timeout, cancelled: false) == .resendAndStopStreaming(.timedOut))
        #expect(UploadDecisions.streamedPartFailed(idle, cancelled: false) == .resendAndStopStreaming(.timedOut))
        #expect(UploadDecisions.streamedPartFailed(serverError, cancelled: false) == .resend)
        #expect(UploadDecisions.streamedPartFailed(reset, cancelled: false) == .resend)
        #expect(UploadDecisions.streamedPartFailed(skew, cancelled: false) == .resend)
        #expect(UploadDecisions.streamedPartFailed(timeout, cancelled: true) == .none)
    }

    @Test func anObjectSmallerThanOnePartIsOnePutAbortingAnyUploadStreamingStarted() {
        var small = UploadDecisions(partSize: part, streamParts: true)
        #expect(small.completion(sealedBytes: 1 << 20) == .putObject(abortStartedUpload: false))
        _ = small.chunkSealed(sealedBytes: 5 << 20, streaming: false)  // past half a part: streaming started
        #expect(small.completion(sealedBytes: 6 << 20) == .putObject(abortStartedUpload: true))
    }

    @Test func aLargerObjectCompletesItsMultipartUploadShippingTheShortLastPart() {
        var decisions = UploadDecisions(partSize: part, streamParts: false)
        _ = decisions.partReady()
        #expect(decisions.completion(sealedBytes: 123) == .completeMultipart(shipLastPart: true))
        #expect(decisions.completion(sealedBytes: 0) == .completeMultipart(shipLastPart: false))
    }
}
