import AsyncHTTPClient
import Testing

@testable import TenantBackup

@Suite struct S3ErrorTests {
    @Test(arguments: [HTTPClientError.deadlineExceeded, .readTimeout, .connectTimeout, .writeTimeout])
    func ourOwnTimeoutsAreACauseOfTheirOwn(error: HTTPClientError) {
        let cause = S3Client.cause(of: error)
        guard case .timeout = cause else {
            Issue.record("\(error) is \(cause), not a timeout")
            return
        }
        let failure = S3Error(operation: "UploadPart", bucket: "b", key: "k", cause: cause)
        #expect(failure.isTimeout && failure.isTransient)
        #expect(failure.description.contains("no answer from the endpoint: timed out"))
    }

    @Test func aRefusedConnectionIsTransportNotTimeout() {
        let failure = S3Error(operation: "PutObject", bucket: "b", key: "k", cause: S3Client.cause(of: HTTPClientError.remoteConnectionClosed))
        #expect(!failure.isTimeout && failure.isTransient)
        // A message that merely starts like a timeout is not one: the cause decides, not the text.
        #expect(!S3Error(operation: "GetObject", bucket: "b", key: "k", cause: .transport("timed out somewhere else")).isTimeout)
    }

    @Test func s3sOwnRequestTimeoutIsATimeout() {
        let failure = S3Error(operation: "UploadPart", bucket: "b", key: "k", cause: .service(status: 400, code: "RequestTimeout", message: nil, requestId: nil))
        #expect(failure.isTimeout)
    }
}
