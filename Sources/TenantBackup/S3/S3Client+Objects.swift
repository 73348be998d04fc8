import AsyncHTTPClient
import Crypto
import Foundation
import NIOCore
import NIOFoundationCompat
import NIOHTTP1

/// What S3 says about a stored object.
public struct S3ObjectMetadata: Sendable, Equatable {
    public let key: String
    public let size: Int64
    /// The ETag without quotes (the MD5 of a single-PUT object; `<md5>-<parts>` for multipart).
    public let eTag: String
    public let lastModified: Date?
    public let contentType: String?
    /// `x-amz-meta-*` values, by name without the prefix.
    public let userMetadata: [String: String]
}

/// The options of a write.
public struct S3WriteOptions: Sendable, Equatable {
    public var contentType: String
    /// Stored as `x-amz-meta-<name>`; names are lower-cased ASCII.
    public var userMetadata: [String: String]

    public init(contentType: String = "application/octet-stream", userMetadata: [String: String] = [:]) {
        self.contentType = contentType
        self.userMetadata = userMetadata
    }
}

extension S3Client {
    /// Headers every object write carries: content type, user metadata, encryption, storage class.
    func writeHeaders(_ options: S3WriteOptions) -> [(name: String, value: String)] {
        var headers: [(name: String, value: String)] = [("Content-Type", options.contentType)]
        for (name, value) in options.userMetadata.sorted(by: { $0.key < $1.key }) {
            headers.append(("x-amz-meta-\(name.lowercased())", value))
        }
        headers += configuration.serverSideEncryption.headers
        if let storageClass = configuration.storageClass { headers.append(("x-amz-storage-class", storageClass)) }
        return headers
    }

    /// Stores `body` at `key` with one PUT. The payload's SHA-256 is signed and its MD5 sent as Content-MD5,
    /// so S3 verifies every byte. With ``S3ClientConfiguration/preventOverwrites`` the write carries
    /// `If-None-Match: *` and fails with `PreconditionFailed` when the key exists — except when a retry
    /// finds the object it wrote itself on an earlier attempt.
    ///
    /// The answer must confirm what was asked (``confirmEncryption(_:operation:key:)``) and its ETag must be
    /// the MD5 of what was sent, where the store's ETags are MD5s: otherwise the object is removed and the
    /// write fails.
    ///
    /// - Returns: the object's ETag.
    @discardableResult
    public func putObject(key: String, body: ByteBuffer, options: S3WriteOptions = S3WriteOptions()) async throws(S3Error) -> String {
        try await putObject(key: key, pieces: [body], options: options)
    }

    /// Stores an object held in pieces, sent one after the other; see ``putObject(key:body:options:)``.
    @discardableResult
    public func putObject(key: String, pieces: [ByteBuffer], options: S3WriteOptions = S3WriteOptions()) async throws(S3Error) -> String {
        let md5 = Self.md5(of: pieces)
        let written = SigV4Signer.hex(md5)
        let body = RequestBody.buffers(pieces)
        var headers = writeHeaders(options)
        headers.append(("Content-MD5", md5.base64EncodedString()))
        let answer: HTTPHeaders
        if configuration.preventOverwrites {
            headers.append(("If-None-Match", "*"))
            // A retry after a lost answer may meet the object it wrote itself: that is success, not a conflict.
            answer = try await retrying("PutObject", key: key) { (error: S3Error) async throws(S3Error) -> HTTPHeaders? in
                guard error.attempts > 1, error.status == 412 || error.code == "PreconditionFailed" else { return nil }
                guard let existing = try? await send("HeadObject", method: .HEAD, key: key),
                      Self.eTag(existing.headers) == written
                else { return nil }
                return existing.headers
            } _: { () async throws(S3Error) -> HTTPHeaders in
                try await send("PutObject", method: .PUT, key: key, headers: headers, body: body, retry: .never).headers
            }
        } else {
            answer = try await send("PutObject", method: .PUT, key: key, headers: headers, body: body).headers
        }
        let eTag = Self.eTag(answer)
        do throws(S3Error) {
            try confirmEncryption(answer, operation: "PutObject", key: key)
            if comparableETag(eTag), eTag.lowercased() != written {
                throw S3Error(
                    operation: "PutObject", bucket: bucket, key: key,
                    cause: .unconfirmed("the store's ETag \(eTag) is not \(written), the MD5 of the \(pieces.reduce(0) { $0 + $1.readableBytes }) bytes sent: it holds other bytes than were sent. The object was removed"))
            }
        } catch {
            try? await deleteObject(key: key)
            throw error
        }
        return eTag
    }

    /// Metadata of an object; `NotFound` (404) when there is none.
    public func headObject(key: String) async throws(S3Error) -> S3ObjectMetadata {
        let response = try await send("HeadObject", method: .HEAD, key: key)
        return Self.metadata(key: key, headers: response.headers)
    }

    /// Reads a whole object (or `range` of it) into memory; for objects of at most `limit` bytes.
    public func getObject(key: String, range: ClosedRange<Int64>? = nil, limit: Int = 64 << 20) async throws(S3Error) -> ByteBuffer {
        var headers: [(name: String, value: String)] = []
        if let range { headers.append(("Range", "bytes=\(range.lowerBound)-\(range.upperBound)")) }
        return try await send("GetObject", method: .GET, key: key, headers: headers, expect: [200, 206], responseLimit: limit).body
    }

    /// Opens an object for streaming: its metadata and its bytes as they arrive, never all in memory.
    /// Only opening is retried; a failure while reading surfaces from the sequence.
    public func openObject(key: String, range: ClosedRange<Int64>? = nil) async throws(S3Error) -> S3ObjectStream {
        try await retrying("GetObject", key: key) { () async throws(S3Error) -> S3ObjectStream in
            try await openOnce(key: key, range: range)
        }
    }

    private func openOnce(key: String, range: ClosedRange<Int64>?) async throws(S3Error) -> S3ObjectStream {
        var extra: [(name: String, value: String)] = []
        if let range { extra.append(("Range", "bytes=\(range.lowerBound)-\(range.upperBound)")) }
        let request = try await signedRequest("GetObject", method: .GET, key: key, query: [], headers: extra, payloadHash: SigV4Signer.emptyPayloadHash)
        let response: HTTPClientResponse
        do {
            response = try await httpClient.execute(request, timeout: configuration.requestTimeout)
        } catch {
            throw S3Error(operation: "GetObject", bucket: bucket, key: key, cause: cause(of: error))
        }
        let status = Int(response.status.code)
        guard status == 200 || status == 206 else {
            let body = (try? await response.body.collect(upTo: 1 << 20)) ?? ByteBuffer()
            throw Self.serviceError(operation: "GetObject", bucket: bucket, key: key, status: status, method: .GET, headers: response.headers, body: body)
        }
        return S3ObjectStream(metadata: Self.metadata(key: key, headers: response.headers), body: response.body)
    }

    /// Deletes one object. Deleting a key that does not exist succeeds, as in S3.
    public func deleteObject(key: String) async throws(S3Error) {
        _ = try await send("DeleteObject", method: .DELETE, key: key, expect: [200, 204])
    }

    /// The most keys S3 accepts in one DeleteObjects request.
    public static let deleteObjectsBatchLimit = 1000

    /// Deletes many objects, at most 1,000 per request (S3's limit, enforced here since some endpoints do
    /// not), each request with the Content-MD5 S3 requires. Keys S3 refused are reported, not thrown.
    public func deleteObjects(keys: [String]) async throws(S3Error) -> S3DeleteResult {
        var result = S3DeleteResult()
        var start = 0
        while start < keys.count {
            let batch = Array(keys[start..<min(start + Self.deleteObjectsBatchLimit, keys.count)])
            start += batch.count
            let partial = try await deleteBatch(batch)
            result.deleted += partial.deleted
            result.failures += partial.failures
        }
        return result
    }

    func deleteBatch(_ keys: [String]) async throws(S3Error) -> S3DeleteResult {
        guard keys.count <= Self.deleteObjectsBatchLimit else {
            throw S3Error(operation: "DeleteObjects", bucket: bucket, key: nil, cause: .invalidRequest("\(keys.count) keys in one request; S3 accepts at most 1000"))
        }
        var xml = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Delete xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Quiet>true</Quiet>"
        for key in keys { xml += "<Object><Key>\(S3XML.escape(key))</Key></Object>" }
        xml += "</Delete>"
        let body = ByteBuffer(string: xml)
        let md5 = Data(Insecure.MD5.hash(data: body.readableBytesView)).base64EncodedString()
        let response = try await send(
            "DeleteObjects", method: .POST, key: nil, query: [("delete", "")],
            headers: [("Content-Type", "application/xml"), ("Content-MD5", md5)], body: .buffer(body))
        let document: S3XMLElement
        do throws(S3XMLElement.SyntaxError) {
            document = try S3XMLElement.parse(String(buffer: response.body))
        } catch {
            throw S3Error(operation: "DeleteObjects", bucket: bucket, key: nil, cause: .invalidResponse(error.description))
        }
        var result = S3DeleteResult()
        var failed = Set<String>()
        for error in document.children("Error") {
            let key = error["Key"] ?? ""
            failed.insert(key)
            result.failures.append(.init(key: key, code: error["Code"] ?? "", message: error["Message"] ?? ""))
        }
        result.deleted = keys.filter { !failed.contains($0) }
        return result
    }

    static func eTag(_ headers: HTTPHeaders) -> String {
        (headers.first(name: "ETag") ?? "").trimmingCharacters(in: CharacterSet(charactersIn: "\""))
    }

    static func metadata(key: String, headers: HTTPHeaders) -> S3ObjectMetadata {
        var user: [String: String] = [:]
        for (name, value) in headers where name.lowercased().hasPrefix("x-amz-meta-") {
            user[String(name.lowercased().dropFirst("x-amz-meta-".count))] = value
        }
        return S3ObjectMetadata(
            key: key,
            size: Int64(headers.first(name: "Content-Length") ?? "") ?? 0,
            eTag: eTag(headers),
            lastModified: headers.first(name: "Last-Modified").flatMap(httpDate),
            contentType: headers.first(name: "Content-Type"),
            userMetadata: user)
    }
}

/// The outcome of ``S3Client/deleteObjects(keys:)``.
public struct S3DeleteResult: Sendable, Equatable {
    public struct Failure: Sendable, Equatable {
        public let key: String
        public let code: String
        public let message: String
    }

    public var deleted: [String] = []
    public var failures: [Failure] = []

    public init() {}
}

/// An object being read: its metadata, and its bytes as an async sequence of buffers.
public struct S3ObjectStream: AsyncSequence, Sendable {
    public typealias Element = ByteBuffer
    public let metadata: S3ObjectMetadata
    let body: HTTPClientResponse.Body

    public func makeAsyncIterator() -> HTTPClientResponse.Body.AsyncIterator {
        body.makeAsyncIterator()
    }
}
