import Testing

@testable import TenantBackup

@Suite struct RetryPolicyTests {
    @Test func delaysGrowExponentiallyUpToTheCap() {
        let policy = RetryPolicy(maximumAttempts: 10, baseDelay: .milliseconds(100), maximumDelay: .seconds(1))
        #expect(policy.ceiling(forRetry: 1) == .milliseconds(100))
        #expect(policy.ceiling(forRetry: 2) == .milliseconds(200))
        #expect(policy.ceiling(forRetry: 4) == .milliseconds(800))
        #expect(policy.ceiling(forRetry: 5) == .seconds(1))
        #expect(policy.ceiling(forRetry: 60) == .seconds(1))
    }

    @Test func jitterStaysWithinTheCeiling() {
        let policy = RetryPolicy()
        var generator = SystemRandomNumberGenerator()
        for retry in 1...8 {
            for _ in 0..<50 {
                let delay = policy.delay(forRetry: retry, using: &generator)
                #expect(delay >= .zero && delay <= policy.ceiling(forRetry: retry))
            }
        }
    }

    @Test func transientErrorsAreTheRetryableOnes() {
        func error(_ status: Int, _ code: String?) -> S3Error {
            S3Error(operation: "Op", bucket: "b", key: "k", cause: .service(status: status, code: code, message: nil, requestId: nil))
        }
        #expect(error(503, "SlowDown").isTransient)
        #expect(error(500, "InternalError").isTransient)
        #expect(error(400, "RequestTimeout").isTransient)
        #expect(!error(403, "AccessDenied").isTransient)
        #expect(!error(403, "SignatureDoesNotMatch").isTransient)
        #expect(!error(404, "NoSuchKey").isTransient)
        #expect(S3Error(operation: "Op", bucket: "b", key: nil, cause: .transport("connection reset")).isTransient)
    }
}
