import Foundation

/// A failed S3 request: which operation on which key, and what S3 (or the network) said.
///
/// Never carries credentials, signatures or presigned URLs: only the operation, bucket, key and S3's own
/// error code, message and request id.
public struct S3Error: Error, Equatable, CustomStringConvertible {
    public enum Cause: Equatable, Sendable {
        /// S3 answered with an error status; `code` is S3's error code (`NoSuchKey`, `SignatureDoesNotMatch`).
        case service(status: Int, code: String?, message: String?, requestId: String?)
        /// No answer: connection refused or reset, DNS, TLS.
        case transport(String)
        /// The TLS handshake with `host` failed (a certificate that does not verify, no TLS on the port): no
        /// retry mends it.
        case tls(host: String, reason: String)
        /// The store answered success but did not do what it was asked, or what it says it holds is not what
        /// was sent (encryption not applied, an ETag or size that differs).
        case unconfirmed(String)
        /// No answer in time: our request or connect deadline passed (AsyncHTTPClient's words in the message).
        case timeout(String)
        /// An answer that cannot be understood.
        case invalidResponse(String)
        /// No credentials could be obtained to sign the request.
        case credentials(String)
        /// The request was not sent because it is invalid (too many keys, bad expiry...).
        case invalidRequest(String)
    }

    public let operation: String
    public let bucket: String
    public let key: String?
    public let cause: Cause
    /// How many attempts were made (retries included).
    public var attempts: Int
    /// The server's clock, when S3 answered `RequestTimeTooSkewed`: used to correct ours.
    public var serverDate: Date?

    public init(operation: String, bucket: String, key: String?, cause: Cause, attempts: Int = 1) {
        self.operation = operation
        self.bucket = bucket
        self.key = key
        self.cause = cause
        self.attempts = attempts
    }

    /// S3's error code, when S3 answered.
    public var code: String? {
        if case .service(_, let code, _, _) = cause { return code }
        return nil
    }

    /// The HTTP status, when S3 answered.
    public var status: Int? {
        if case .service(let status, _, _, _) = cause { return status }
        return nil
    }

    /// Whether the request ran out of time: our deadline, or S3 closing a connection that sent nothing for a
    /// while (`RequestTimeout`).
    public var isTimeout: Bool {
        switch cause {
        case .timeout: return true
        case .service(_, let code, _, _): return code == "RequestTimeout"
        default: return false
        }
    }

    /// Whether trying the same request again may succeed: throttling, server errors, timeouts, resets.
    public var isTransient: Bool {
        switch cause {
        case .transport, .timeout: return true
        case .service(let status, let code, _, _):
            if [500, 502, 503, 504].contains(status) { return true }
            return ["SlowDown", "RequestTimeout", "InternalError", "ServiceUnavailable", "Throttling", "ThrottlingException"]
                .contains(code ?? "")
        case .invalidResponse, .credentials, .invalidRequest, .tls, .unconfirmed: return false
        }
    }

    public var description: String {
        let target = key.map { "s3://\(bucket)/\($0)" } ?? "s3://\(bucket)"
        let tries = attempts > 1 ? " after \(attempts) attempts" : ""
        switch cause {
        case .service(let status, let code, let message, let requestId):
            var text = "S3 \(operation) \(target) failed\(tries): HTTP \(status)"
            if let code { text += " \(code)" }
            if let message, !message.isEmpty { text += ": \(message)" }
            if let hint { text += " (\(hint))" }
            if let requestId { text += " [request id \(requestId)]" }
            return text
        case .transport(let message):
            return "S3 \(operation) \(target) failed\(tries): no answer from the endpoint: \(message)"
        case .timeout(let message):
            return "S3 \(operation) \(target) failed\(tries): no answer from the endpoint: timed out: \(message)"
        case .tls(let host, let reason):
            return "S3 \(operation) \(target) failed: TLS with \(host): \(reason); give the CA that signed the endpoint's certificate with s3.ca_bundle (or AWS_CA_BUNDLE), or fix the certificate"
        case .unconfirmed(let message):
            return "S3 \(operation) \(target) failed: \(message)"
        case .invalidResponse(let message):
            return "S3 \(operation) \(target) failed: unexpected answer: \(message)"
        case .credentials(let message):
            return "S3 \(operation) \(target) not sent: \(message)"
        case .invalidRequest(let message):
            return "S3 \(operation) \(target) not sent: \(message)"
        }
    }

    /// What an operator can do about the common errors.
    public var hint: String? {
        switch code {
        case "SignatureDoesNotMatch": return "the secret access key is wrong for this access key id"
        case "InvalidAccessKeyId": return "the access key id is unknown to this endpoint"
        case "InvalidToken", "ExpiredToken": return "the session token is invalid or expired"
        case "NoSuchBucket": return "check s3.bucket and s3.region"
        case "AccessDenied": return "the credentials lack permission for this operation"
        case "RequestTimeTooSkewed": return "this machine's clock is off; check NTP"
        case "AuthorizationHeaderMalformed": return "check s3.region"
        case "SlowDown": return "the endpoint is throttling requests"
        case "InvalidRequest":
            return "some stores (Ceph RGW with rgw_crypt_require_ssl) refuse the server-side encryption header over plain HTTP: use an https:// endpoint, or s3.server_side_encryption: none if the store encrypts at rest by itself"
        default: return nil
        }
    }
}
