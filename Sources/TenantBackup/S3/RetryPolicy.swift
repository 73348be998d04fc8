/// Exponential backoff with full jitter (AWS's recommendation): attempt n waits a random time in
/// `0 ... min(maximumDelay, baseDelay × 2^(n-1))`.
public struct RetryPolicy: Sendable, Equatable {
    /// Attempts in all, the first one included.
    public var maximumAttempts: Int
    public var baseDelay: Duration
    public var maximumDelay: Duration

    public init(maximumAttempts: Int = 5, baseDelay: Duration = .milliseconds(200), maximumDelay: Duration = .seconds(20)) {
        self.maximumAttempts = max(1, maximumAttempts)
        self.baseDelay = baseDelay
        self.maximumDelay = maximumDelay
    }

    /// The longest wait before retry number `retry` (1 for the first retry).
    public func ceiling(forRetry retry: Int) -> Duration {
        let factor = 1 << min(max(retry - 1, 0), 30)
        let grown = baseDelay * factor
        return grown > maximumDelay ? maximumDelay : grown
    }

    /// A random wait before retry number `retry`.
    public func delay<R: RandomNumberGenerator>(forRetry retry: Int, using generator: inout R) -> Duration {
        let ceiling = ceiling(forRetry: retry)
        let (seconds, attoseconds) = ceiling.components
        let nanoseconds = seconds * 1_000_000_000 + attoseconds / 1_000_000_000
        guard nanoseconds > 0 else { return .zero }
        return .nanoseconds(Int64.random(in: 0...nanoseconds, using: &generator))
    }
}

/// Server-side encryption asked of S3 for every object written.
public enum ServerSideEncryption: Sendable, Equatable {
    /// No header: for S3-compatible stores that reject it.
    case none
    /// `x-amz-server-side-encryption: AES256` (SSE-S3).
    case aes256
    /// `aws:kms`, with a key id or the bucket's default KMS key.
    case kms(keyId: String?)

    /// The `x-amz-server-side-encryption` value a write's answer must carry; `nil` when none is asked.
    public var confirmationValue: String? {
        switch self {
        case .none: return nil
        case .aes256: return "AES256"
        case .kms: return "aws:kms"
        }
    }

    /// Whether ETags are the MD5 of the body (S3 documents they are not for SSE-KMS objects).
    var eTagIsMD5: Bool {
        if case .kms = self { return false }
        return true
    }

    var headers: [(name: String, value: String)] {
        switch self {
        case .none: return []
        case .aes256: return [("x-amz-server-side-encryption", "AES256")]
        case .kms(let keyId):
            var headers = [(name: "x-amz-server-side-encryption", value: "aws:kms")]
            if let keyId { headers.append(("x-amz-server-side-encryption-aws-kms-key-id", keyId)) }
            return headers
        }
    }
}
