import AsyncHTTPClient
import Crypto
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import NIOSSL
import Synchronization

/// How the S3 client behaves: timeouts, retries and what it asks of S3 on writes.
public struct S3ClientConfiguration: Sendable {
    /// How long one request may take, body included.
    public var requestTimeout: TimeAmount
    public var retry: RetryPolicy
    public var serverSideEncryption: ServerSideEncryption
    /// `STANDARD`, `STANDARD_IA`, ...; `nil` leaves the bucket's default.
    public var storageClass: String?
    /// Send `If-None-Match: *` on final writes so two writers can never overwrite a key.
    public var preventOverwrites: Bool
    /// Told the operation's name each time a request is sent again (a retry, or a streamed part resent from
    /// memory): the application counts them; the client stays free of its metrics.
    public var onRetry: @Sendable (_ operation: String) -> Void = { _ in }

    public init(
        requestTimeout: TimeAmount = .seconds(120),
        retry: RetryPolicy = RetryPolicy(),
        serverSideEncryption: ServerSideEncryption = .aes256,
        storageClass: String? = nil,
        preventOverwrites: Bool = true
    ) {
        self.requestTimeout = requestTimeout
        self.retry = retry
        self.serverSideEncryption = serverSideEncryption
        self.storageClass = storageClass
        self.preventOverwrites = preventOverwrites
    }
}

/// A small S3 client on AsyncHTTPClient for one bucket: every request SigV4-signed with credentials from a
/// ``CredentialsProvider``, transient failures retried with backoff (idempotent requests only), every
/// failure an ``S3Error`` naming the operation and key. Nothing secret is ever logged.
public struct S3Client: Sendable {
    public let endpoint: S3Endpoint
    public let region: String
    public let credentialsProvider: any CredentialsProvider
    public var configuration: S3ClientConfiguration
    let httpClient: HTTPClient
    let logger: Logger
    /// The clock requests are signed with.
    let now: @Sendable () -> Date
    /// Seconds to add to the local clock, learnt from `RequestTimeTooSkewed` answers.
    let clockOffset: ClockOffset

    /// Shared by copies of a client, so a correction learnt by one request helps the next ones.
    final class ClockOffset: Sendable {
        let seconds = Mutex<TimeInterval>(0)
    }

    /// - Parameters:
    ///   - httpClient: defaults to the process-wide ``S3HTTPClient`` for the settings' connect timeout and
    ///     the pool size, which needs no shutdown.
    ///   - maximumConnections: the pool size when the settings do not fix one (64 when neither does).
    public init(
        settings: S3Settings,
        bucket: String,
        credentials: any CredentialsProvider,
        configuration: S3ClientConfiguration = S3ClientConfiguration(),
        httpClient: HTTPClient? = nil,
        maximumConnections: Int? = nil,
        logger: Logger,
        now: @escaping @Sendable () -> Date = { Date() }
    ) {
        self.endpoint = S3Endpoint(settings: settings, bucket: bucket)
        self.region = settings.region
        self.credentialsProvider = credentials
        self.configuration = configuration
        self.httpClient = httpClient ?? S3HTTPClient.client(
            connectTimeout: settings.connectTimeout, maximumConnections: settings.maximumConnections ?? maximumConnections ?? 64,
            caBundle: settings.caBundle)
        self.logger = logger
        self.now = now
        self.clockOffset = ClockOffset()
    }

    /// A client with fixed credentials.
    public init(
        settings: S3Settings,
        bucket: String,
        credentials: S3Credentials,
        configuration: S3ClientConfiguration = S3ClientConfiguration(),
        httpClient: HTTPClient? = nil,
        logger: Logger,
        now: @escaping @Sendable () -> Date = { Date() }
    ) {
        self.init(
            settings: settings, bucket: bucket, credentials: StaticCredentialsProvider(credentials),
            configuration: configuration, httpClient: httpClient, logger: logger, now: now)
    }

    public var bucket: String { endpoint.bucket }

    /// The current time as S3 sees it (local clock plus any learnt skew).
    var signingDate: Date { now().addingTimeInterval(clockOffset.seconds.withLock { $0 }) }

    // MARK: - Sending

    /// The body of a request.
    enum RequestBody {
        case empty
        /// Buffered: hashed once, signed, and resent as it is on retries.
        case buffer(ByteBuffer)
        /// Buffered in pieces (a part kept as it was produced), sent one after the other.
        case buffers([ByteBuffer])
    }

    struct Response {
        let status: Int
        let headers: HTTPHeaders
        let body: ByteBuffer
    }

    /// Whether a request may be sent again after an ambiguous failure.
    enum Retry {
        /// Sending it twice has the same effect as once (GET, HEAD, PUT of a part, DELETE...).
        case idempotent
        /// Never resent by `send`; the caller decides (Complete, conditional writes handle it themselves).
        case never
    }

    func send(
        _ operation: String,
        method: HTTPMethod,
        key: String?,
        query: [(name: String, value: String)] = [],
        headers extraHeaders: [(name: String, value: String)] = [],
        body: RequestBody = .empty,
        expect: Set<Int> = [200],
        retry: Retry = .idempotent,
        responseLimit: Int = 16 << 20
    ) async throws(S3Error) -> Response {
        var payloadHash = SigV4Signer.emptyPayloadHash
        var buffers: [ByteBuffer]?
        switch body {
        case .empty: break
        case .buffer(let bytes): buffers = [bytes]
        case .buffers(let pieces): buffers = pieces
        }
        if let buffers {
            var hasher = SHA256()
            for piece in buffers { piece.withUnsafeReadableBytes { hasher.update(bufferPointer: $0) } }
            payloadHash = SigV4Signer.hex(hasher.finalize())
        }
        let attempts = retry == .idempotent ? configuration.retry.maximumAttempts : 1
        return try await retrying(operation, key: key, attempts: attempts) { () async throws(S3Error) -> Response in
            try await sendOnce(
                operation, method: method, key: key, query: query, headers: extraHeaders, body: buffers,
                payloadHash: payloadHash, expect: expect, responseLimit: responseLimit)
        }
    }

    /// The one retry loop of the client: runs `body` up to `attempts` times while it fails transiently
    /// (throttling, 5xx, resets, timeouts), with the policy's jittered backoff, a log line and a metric per
    /// retry. Before giving up or retrying, `recover` may turn a failure into a result — a write whose
    /// answer was lost but which S3 did apply. A `RequestTimeTooSkewed` answer corrects the clock offset from
    /// the server's time and is retried once without counting as an attempt. Never retries once cancelled.
    func retrying<T>(
        _ operation: String, key: String?, attempts: Int? = nil,
        recover: (S3Error) async throws(S3Error) -> T? = { _ in nil },
        _ body: () async throws(S3Error) -> T
    ) async throws(S3Error) -> T {
        let maximum = attempts ?? configuration.retry.maximumAttempts
        var attempt = 0
        var correctedSkew = false
        var generator = SystemRandomNumberGenerator()
        while true {
            attempt += 1
            do {
                return try await body()
            } catch var error {
                error.attempts = attempt
                if error.code == "RequestTimeTooSkewed", !correctedSkew, let serverDate = error.serverDate {
                    correctedSkew = true
                    let offset = serverDate.timeIntervalSince(now())
                    clockOffset.seconds.withLock { $0 = offset }
                    logger.warning(
                        "s3 clock skew corrected",
                        metadata: ["operation": "\(operation)", "s3_key": "\(key ?? "")", "offset_s": "\(Int(offset))"])
                    attempt -= 1
                    continue
                }
                if let recovered = try await recover(error) { return recovered }
                guard error.isTransient, attempt < maximum, !Task.isCancelled else { throw error }
                let delay = configuration.retry.delay(forRetry: attempt, using: &generator)
                configuration.onRetry(operation)
                logger.warning(
                    "s3 request failed, retrying",
                    metadata: [
                        "operation": "\(operation)", "s3_key": "\(key ?? "")", "attempt": "\(attempt)",
                        "delay_ms": "\(delay.milliseconds)", "error": "\(error.shortCause)",
                    ])
                do {
                    try await Task.sleep(for: delay)
                } catch {
                    throw S3Error(operation: operation, bucket: bucket, key: key, cause: .transport("cancelled"), attempts: attempt)
                }
            }
        }
    }

    /// A request signed with the current credentials (header auth): `Host`, the extra headers, the
    /// `Authorization` and `x-amz-*` headers of SigV4.
    func signedRequest(
        _ operation: String, method: HTTPMethod, key: String?, query: [(name: String, value: String)],
        headers extraHeaders: [(name: String, value: String)], payloadHash: String
    ) async throws(S3Error) -> HTTPClientRequest {
        try await signedRequest(operation, method: method, key: key, query: query, headers: extraHeaders) { signer, toSign, date in
            signer.signedHeaders(for: toSign, payloadHash: payloadHash, date: date)
        }
    }

    /// A request signed by `sign`, which returns the headers to send besides `extraHeaders`.
    func signedRequest(
        _ operation: String, method: HTTPMethod, key: String?, query: [(name: String, value: String)],
        headers extraHeaders: [(name: String, value: String)],
        sign: (SigV4Signer, SigV4Signer.Request, Date) -> [(name: String, value: String)]
    ) async throws(S3Error) -> HTTPClientRequest {
        let credentials = try await currentCredentials(operation, key: key)
        let path = endpoint.path(key: key)
        let toSign = SigV4Signer.Request(method: method.rawValue, host: endpoint.hostHeader, path: path, query: query, headers: extraHeaders)
        let signed = sign(SigV4Signer(credentials: credentials, region: region), toSign, signingDate)
        var request = HTTPClientRequest(url: endpoint.url(path: path, query: query))
        request.method = method
        request.headers.add(name: "Host", value: endpoint.hostHeader)
        for (name, value) in extraHeaders + signed { request.headers.add(name: name, value: value) }
        return request
    }

    private func sendOnce(
        _ operation: String,
        method: HTTPMethod,
        key: String?,
        query: [(name: String, value: String)],
        headers extraHeaders: [(name: String, value: String)],
        body: [ByteBuffer]?,
        payloadHash: String,
        expect: Set<Int>,
        responseLimit: Int
    ) async throws(S3Error) -> Response {
        var request = try await signedRequest(operation, method: method, key: key, query: query, headers: extraHeaders, payloadHash: payloadHash)
        let length = body?.reduce(0) { $0 + $1.readableBytes } ?? 0
        if let body {
            request.headers.add(name: "Content-Length", value: String(length))
            request.body = body.count == 1 ? .bytes(body[0]) : .stream(BufferSequence(buffers: body), length: .known(Int64(length)))
        } else if method == .PUT || method == .POST {
            request.headers.add(name: "Content-Length", value: "0")
        }
        return try await execute(request, operation, method: method, key: key, bytesSent: length, expect: expect, responseLimit: responseLimit)
    }

    /// Sends one request, collects its answer and turns any failure or unexpected status into an ``S3Error``.
    func execute(
        _ request: HTTPClientRequest, _ operation: String, method: HTTPMethod, key: String?, bytesSent: Int,
        expect: Set<Int>, responseLimit: Int = 16 << 20, streamed: Bool = false
    ) async throws(S3Error) -> Response {
        let started = ContinuousClock.now
        logger.trace("s3 request starting", metadata: ["operation": "\(operation)", "s3_key": "\(key ?? "")", "bytes": "\(bytesSent)", "streamed": "\(streamed)"])
        let response: HTTPClientResponse
        let data: ByteBuffer
        do {
            response = try await httpClient.execute(request, timeout: configuration.requestTimeout)
            data = try await response.body.collect(upTo: responseLimit)
        } catch {
            throw S3Error(operation: operation, bucket: bucket, key: key, cause: cause(of: error))
        }
        let status = Int(response.status.code)
        logger.debug(
            "s3 request",
            metadata: [
                "operation": "\(operation)", "s3_key": "\(key ?? "")", "status": "\(status)",
                "bytes_sent": "\(bytesSent)", "duration_ms": "\((ContinuousClock.now - started).milliseconds)",
                "streamed": "\(streamed)",
            ])
        guard expect.contains(status) else {
            throw Self.serviceError(
                operation: operation, bucket: bucket, key: key, status: status, method: method, headers: response.headers, body: data)
        }
        return Response(status: status, headers: response.headers, body: data)
    }

    /// The credentials to sign the next request with, from the provider.
    func currentCredentials(_ operation: String, key: String?) async throws(S3Error) -> S3Credentials {
        do throws(CredentialsError) {
            guard let found = try await credentialsProvider.credentials() else {
                throw CredentialsError.noneFound(tried: [credentialsProvider.sourceDescription])
            }
            return found
        } catch {
            throw S3Error(operation: operation, bucket: bucket, key: key, cause: .credentials(error.description))
        }
    }

    /// Parses an HTTP date (`Fri, 24 May 2013 00:00:00 GMT`).
    static func httpDate(_ text: String) -> Date? {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss zzz"
        return formatter.date(from: text)
    }

    static func serviceError(
        operation: String, bucket: String, key: String?, status: Int, method: HTTPMethod, headers: HTTPHeaders, body: ByteBuffer
    ) -> S3Error {
        let xml = (try? S3XMLElement.parse(String(buffer: body)))
        var code = xml?["Code"]
        if code == nil, method == .HEAD {
            code = status == 404 ? "NotFound" : status == 403 ? "Forbidden" : nil
        }
        var error = S3Error(
            operation: operation, bucket: bucket, key: key,
            cause: .service(status: status, code: code, message: xml?["Message"], requestId: xml?["RequestId"] ?? headers.first(name: "x-amz-request-id")))
        if code == "RequestTimeTooSkewed" {
            error.serverDate = Self.serverDate(xml?["ServerTime"], header: headers.first(name: "Date"))
        }
        return error
    }

    static func serverDate(_ serverTime: String?, header: String?) -> Date? {
        if let serverTime, let date = try? Date(serverTime, strategy: .iso8601) { return date }
        return header.flatMap(httpDate)
    }

    /// What a failed request's error means: a timeout of ours is a cause of its own, a certificate or TLS
    /// handshake that fails is one that no retry mends, the rest is transport.
    func cause(of error: any Error) -> S3Error.Cause {
        if let tls = Self.tlsFailure(error) {
            return .tls(host: endpoint.host, reason: tls)
        }
        return Self.cause(of: error)
    }

    /// The reason, when `error` is a failed TLS handshake: a certificate that does not verify (an unknown CA,
    /// a name that does not match, an expired certificate) or a protocol the endpoint does not speak.
    static func tlsFailure(_ error: any Error) -> String? {
        // Only a handshake that fails: an HTTPS connection a load balancer drops (`uncleanShutdown`) is a
        // transport failure like any other, and retried.
        let text = String(reflecting: error)
        if text.contains("CERTIFICATE_VERIFY_FAILED") || text.contains("certificate verify failed") {
            return "the certificate does not verify against the trusted CAs (CERTIFICATE_VERIFY_FAILED)"
        }
        if text.contains("WRONG_VERSION_NUMBER") || text.contains("wrong version number") {
            return "the endpoint does not speak TLS on this port (WRONG_VERSION_NUMBER): check the scheme of s3.endpoint"
        }
        if error is NIOSSLExtraError || text.contains("failedToValidateHostname") {
            return "the certificate is not valid for this host name: \(text)"
        }
        if let ssl = error as? NIOSSLError, case .handshakeFailed = ssl {
            return "the TLS handshake failed: \(text)"
        }
        return nil
    }

    static func cause(of error: any Error) -> S3Error.Cause {
        if let error = error as? HTTPClientError {
            let timeouts: [HTTPClientError] = [.deadlineExceeded, .readTimeout, .connectTimeout, .writeTimeout]
            return timeouts.contains(error) ? .timeout("\(error)") : .transport("\(error)")
        }
        if error is CancellationError { return .transport("cancelled") }
        return .transport(String(describing: error))
    }
}

extension S3Error {
    /// The cause without the operation and key, for a retry log line.
    var shortCause: String {
        switch cause {
        case .service(let status, let code, _, _): return "HTTP \(status) \(code ?? "")"
        case .transport(let message): return message
        case .tls(let host, let reason): return "TLS with \(host): \(reason)"
        case .timeout(let message): return "timed out: \(message)"
        case .invalidResponse(let message), .credentials(let message), .invalidRequest(let message), .unconfirmed(let message): return message
        }
    }
}

extension Duration {
    /// Whole milliseconds, for log fields and reports.
    public var milliseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1000 + attoseconds / 1_000_000_000_000_000
    }
}

/// Buffers already in memory, as the stream body of a request.
struct BufferSequence: AsyncSequence, Sendable {
    typealias Element = ByteBuffer
    let buffers: [ByteBuffer]

    struct AsyncIterator: AsyncIteratorProtocol {
        var remaining: ArraySlice<ByteBuffer>
        mutating func next() async -> ByteBuffer? { remaining.popFirst() }
    }

    func makeAsyncIterator() -> AsyncIterator { AsyncIterator(remaining: buffers[...]) }
}
