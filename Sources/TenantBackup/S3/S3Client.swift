import AsyncHTTPClient
import Crypto
import Foundation
import Logging
import NIOCore
import NIOHTTP1

/// A small S3 client on AsyncHTTPClient: every request SigV4-signed, every failure an ``S3Error`` naming
/// the operation and key.
public struct S3Client: Sendable {
    public let endpoint: S3Endpoint
    public let signer: SigV4Signer
    let httpClient: HTTPClient
    let logger: Logger
    /// The clock requests are signed with (tests move it).
    let now: @Sendable () -> Date
    /// How long one request may take.
    public var requestTimeout: TimeAmount = .seconds(60)

    /// - Parameter httpClient: defaults to `HTTPClient.shared`, which needs no shutdown.
    public init(
        settings: S3Settings,
        bucket: String,
        credentials: S3Credentials,
        httpClient: HTTPClient = .shared,
        logger: Logger,
        now: @escaping @Sendable () -> Date = { Date() }
    ) {
        self.endpoint = S3Endpoint(settings: settings, bucket: bucket)
        self.signer = SigV4Signer(credentials: credentials, region: settings.region)
        self.httpClient = httpClient
        self.logger = logger
        self.now = now
    }

    public var bucket: String { endpoint.bucket }

    // MARK: - Operations

    /// Stores `body` at `key` with a single PUT (signed payload hash and Content-MD5, so S3 verifies every byte).
    public func putObject(key: String, body: ByteBuffer, contentType: String = "application/octet-stream") async throws(S3Error) {
        let md5 = Data(body.withUnsafeReadableBytes { Insecure.MD5.hash(data: $0) }).base64EncodedString()
        _ = try await send(
            "PutObject", method: .PUT, key: key,
            headers: [("Content-Type", contentType), ("Content-MD5", md5)],
            body: body)
    }

    /// Reads a whole object into memory; for small objects (at most `limit` bytes).
    public func getObject(key: String, limit: Int = 16 << 20) async throws(S3Error) -> ByteBuffer {
        try await send("GetObject", method: .GET, key: key, responseLimit: limit).body
    }

    /// Deletes one object. Deleting a key that does not exist succeeds, as in S3.
    public func deleteObject(key: String) async throws(S3Error) {
        _ = try await send("DeleteObject", method: .DELETE, key: key, expect: [200, 204])
    }

    /// The keys of up to `maxKeys` objects under `prefix` (one page): enough to prove the bucket is
    /// reachable and the credentials may list it.
    public func listKeys(prefix: String, maxKeys: Int = 1000) async throws(S3Error) -> [String] {
        let response = try await send(
            "ListObjectsV2", method: .GET, key: nil,
            query: [("list-type", "2"), ("prefix", prefix), ("max-keys", String(maxKeys))])
        let xml = String(buffer: response.body)
        var keys: [String] = []
        var rest = Substring(xml)
        while let open = rest.range(of: "<Key>"), let close = rest.range(of: "</Key>", range: open.upperBound..<rest.endIndex) {
            keys.append(S3XML.unescape(String(rest[open.upperBound..<close.lowerBound])))
            rest = rest[close.upperBound...]
        }
        return keys
    }

    /// Creates the bucket (tests and first-time setup).
    public func createBucket() async throws(S3Error) {
        var body: ByteBuffer? = nil
        if signer.region != "us-east-1" {
            body = ByteBuffer(string: "<CreateBucketConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><LocationConstraint>\(signer.region)</LocationConstraint></CreateBucketConfiguration>")
        }
        _ = try await send("CreateBucket", method: .PUT, key: nil, body: body)
    }

    /// Deletes the (empty) bucket.
    public func deleteBucket() async throws(S3Error) {
        _ = try await send("DeleteBucket", method: .DELETE, key: nil, expect: [200, 204])
    }

    // MARK: - Sending

    struct Response {
        let status: Int
        let headers: HTTPHeaders
        let body: ByteBuffer
    }

    func send(
        _ operation: String,
        method: HTTPMethod,
        key: String?,
        query: [(name: String, value: String)] = [],
        headers extraHeaders: [(name: String, value: String)] = [],
        body: ByteBuffer? = nil,
        expect: Set<Int> = [200],
        responseLimit: Int = 16 << 20
    ) async throws(S3Error) -> Response {
        let path = endpoint.path(key: key)
        let payloadHash = body.map { buffer in SigV4Signer.hex(buffer.withUnsafeReadableBytes { SHA256.hash(data: $0) }) } ?? SigV4Signer.emptyPayloadHash
        let toSign = SigV4Signer.Request(
            method: method.rawValue, host: endpoint.hostHeader, path: path, query: query, headers: extraHeaders)
        let signed = signer.signedHeaders(for: toSign, payloadHash: payloadHash, date: now())
        var request = HTTPClientRequest(url: endpoint.url(path: path, query: query))
        request.method = method
        request.headers.add(name: "Host", value: endpoint.hostHeader)
        for (name, value) in extraHeaders + signed { request.headers.add(name: name, value: value) }
        if let body {
            request.headers.add(name: "Content-Length", value: String(body.readableBytes))
            request.body = .bytes(body)
        } else if method == .PUT || method == .POST {
            request.headers.add(name: "Content-Length", value: "0")
        }
        let started = ContinuousClock.now
        let response: HTTPClientResponse
        let data: ByteBuffer
        do {
            response = try await httpClient.execute(request, timeout: requestTimeout)
            data = try await response.body.collect(upTo: responseLimit)
        } catch {
            logger.debug("s3 request failed", metadata: ["operation": "\(operation)", "s3_key": "\(key ?? "")", "error": "\(error)"])
            throw S3Error(operation: operation, bucket: bucket, key: key, cause: .transport(Self.describe(error)))
        }
        let status = Int(response.status.code)
        logger.trace(
            "s3 request",
            metadata: [
                "operation": "\(operation)", "s3_key": "\(key ?? "")", "status": "\(status)",
                "duration_ms": "\((ContinuousClock.now - started).milliseconds)",
            ])
        guard expect.contains(status) else {
            let xml = String(buffer: data)
            throw S3Error(
                operation: operation, bucket: bucket, key: key,
                cause: .service(
                    status: status,
                    code: S3XML.firstText("Code", in: xml) ?? (method == .HEAD && status == 404 ? "NotFound" : nil),
                    message: S3XML.firstText("Message", in: xml),
                    requestId: S3XML.firstText("RequestId", in: xml) ?? response.headers.first(name: "x-amz-request-id")))
        }
        return Response(status: status, headers: response.headers, body: data)
    }

    private static func describe(_ error: any Error) -> String {
        if let error = error as? HTTPClientError { return "\(error)" }
        return String(describing: error)
    }
}

extension Duration {
    /// Whole milliseconds, for log fields.
    var milliseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1000 + attoseconds / 1_000_000_000_000_000
    }
}
