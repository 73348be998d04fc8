import AsyncHTTPClient
import Crypto
import Foundation
import NIOCore
import NIOFoundationCompat

/// An upload in progress, as ListMultipartUploads reports it.
public struct S3MultipartUpload: Sendable, Equatable {
    public let key: String
    public let uploadId: String
    public let initiated: Date?

    public init(key: String, uploadId: String, initiated: Date?) {
        self.key = key
        self.uploadId = uploadId
        self.initiated = initiated
    }
}

/// A part uploaded, to list in CompleteMultipartUpload.
public struct S3CompletedPart: Sendable, Equatable {
    public let partNumber: Int
    public let eTag: String

    public init(partNumber: Int, eTag: String) {
        self.partNumber = partNumber
        self.eTag = eTag
    }
}

extension S3Client {
    /// S3's limits on multipart uploads: at most this many parts...
    public static let maximumParts = 10_000
    /// ...each at least this large (all but the last)...
    public static let minimumPartSize = 5 << 20
    /// ...and at most this large.
    public static let maximumPartSize = 5 << 30

    /// Starts a multipart upload and returns its id. The object becomes visible only when completed. The
    /// answer must confirm the encryption asked for; otherwise the upload is aborted and this fails.
    /// A Create whose answer was lost may have started an upload too: once one answer is in, any other upload
    /// at this exact key (backup keys are unique, and taken under the tenant's lock) is aborted.
    public func createMultipartUpload(key: String, options: S3WriteOptions = S3WriteOptions()) async throws(S3Error) -> String {
        let started = try await startMultipartUpload(key: key, options: options)
        if started.retried { await abortOtherUploads(key: key, keeping: started.uploadId) }
        return started.uploadId
    }

    /// Aborts every upload at exactly `key` but `uploadId`: what a Create whose answer was lost started. Such
    /// a Create may still be on its way to the store when the retry's answer comes, so the uploader calls this
    /// again once its own upload is completed or aborted.
    public func abortOtherUploads(key: String, keeping uploadId: String) async {
        for upload in (try? await listMultipartUploads(prefix: key)) ?? [] where upload.key == key && upload.uploadId != uploadId {
            try? await abortMultipartUpload(key: key, uploadId: upload.uploadId)
            logger.info("aborted an upload a lost CreateMultipartUpload answer had started", metadata: ["s3_key": "\(key)"])
        }
    }

    /// Starts a multipart upload, saying whether an attempt failed first (and so may have started another).
    func startMultipartUpload(key: String, options: S3WriteOptions) async throws(S3Error) -> (uploadId: String, retried: Bool) {
        var failedBefore = false
        let headers = writeHeaders(options)
        let response = try await retrying("CreateMultipartUpload", key: key, recover: { (error: S3Error) async throws(S3Error) -> Response? in
            failedBefore = true
            return nil
        }) { () async throws(S3Error) -> Response in
            try await send("CreateMultipartUpload", method: .POST, key: key, query: [("uploads", "")], headers: headers, retry: .never)
        }
        let uploadId = try uploadId(in: response, key: key)
        do throws(S3Error) {
            try confirmEncryption(response.headers, operation: "CreateMultipartUpload", key: key)
        } catch {
            try? await abortMultipartUpload(key: key, uploadId: uploadId)
            throw error
        }
        return (uploadId, failedBefore)
    }

    /// Uploads one part (idempotent, so retried) and returns its ETag.
    public func uploadPart(key: String, uploadId: String, partNumber: Int, body: ByteBuffer) async throws(S3Error) -> S3CompletedPart {
        try await uploadPart(key: key, uploadId: uploadId, partNumber: partNumber, pieces: [body])
    }

    /// Uploads one part held in pieces, one after the other on the wire, with its Content-MD5; retried. The
    /// answer's ETag must be that MD5 (where the store's ETags are MD5s).
    public func uploadPart(
        key: String, uploadId: String, partNumber: Int, pieces: [ByteBuffer], md5 known: Data? = nil
    ) async throws(S3Error) -> S3CompletedPart {
        let md5 = known ?? Self.md5(of: pieces)
        let response = try await send(
            "UploadPart", method: .PUT, key: key,
            query: [("partNumber", String(partNumber)), ("uploadId", uploadId)],
            headers: [("Content-MD5", md5.base64EncodedString())], body: .buffers(pieces))
        let part = S3CompletedPart(partNumber: partNumber, eTag: Self.eTag(response.headers))
        try confirmPart(part, md5: md5, key: key)
        return part
    }

    /// Fails when a part's ETag shows the store holds other bytes than the part whose MD5 is `md5`.
    public func confirmPart(_ part: S3CompletedPart, md5: Data, key: String) throws(S3Error) {
        let sent = SigV4Signer.hex(md5)
        guard comparableETag(part.eTag), part.eTag.lowercased() != sent else { return }
        throw S3Error(
            operation: "UploadPart", bucket: bucket, key: key,
            cause: .unconfirmed("part \(part.partNumber): the store's ETag \(part.eTag) is not \(sent), the MD5 of the bytes sent: it holds other bytes than were sent"))
    }

    /// Uploads one part while it is still being produced: `chunks` yields its bytes as they come, in pieces of
    /// `chunkSize` (the last one may be shorter), `length` in all, sent aws-chunked with every chunk signed.
    /// One attempt, never retried: the stream is consumed, so the caller resends the part from its own copy.
    /// Fails if `chunks` ends before `length` bytes, and S3 then stores nothing.
    public func uploadPartStreaming(
        key: String, uploadId: String, partNumber: Int, length: Int, chunkSize: Int, chunks: AsyncStream<ByteBuffer>
    ) async throws(S3Error) -> S3CompletedPart {
        var chunkSigner: ChunkedPayloadSigner?
        var request = try await signedRequest(
            "UploadPart", method: .PUT, key: key, query: [("partNumber", String(partNumber)), ("uploadId", uploadId)], headers: []
        ) { signer, toSign, date in
            let (headers, chunks) = signer.streamingSignedHeaders(for: toSign, decodedLength: Int64(length), date: date)
            chunkSigner = chunks
            return headers
        }
        let encoded = ChunkedPayloadSigner.encodedLength(decodedLength: Int64(length), chunkSize: chunkSize)
        request.headers.add(name: "Content-Length", value: String(encoded))
        request.body = .stream(AWSChunkedBody(chunks: chunks, signer: chunkSigner!, length: length), length: .known(encoded))
        let response = try await execute(request, "UploadPart", method: .PUT, key: key, bytesSent: length, expect: [200], streamed: true)
        return S3CompletedPart(partNumber: partNumber, eTag: Self.eTag(response.headers))
    }

    /// The MD5 of the pieces one after the other (Content-MD5 is its base64; S3's ETag, its hex).
    static func md5(of pieces: [ByteBuffer]) -> Data {
        var md5 = Insecure.MD5()
        for piece in pieces { piece.withUnsafeReadableBytes { md5.update(bufferPointer: $0) } }
        return Data(md5.finalize())
    }

    /// Completes an upload: the object appears at `key`. A Complete whose answer was lost may still have
    /// succeeded, so before sending it again the client checks whether the upload is gone and the object
    /// there. S3 may also answer 200 with an error inside; that is treated as the error it is.
    ///
    /// With ``S3ClientConfiguration/preventOverwrites``, the key must be free just before (a HEAD, for
    /// stores that ignore `If-None-Match: *` on Complete, as Ceph RGW does) and Complete carries the header
    /// for those that honour it. A direct answer must confirm the encryption asked for.
    ///
    /// - Returns: the object's ETag.
    @discardableResult
    public func completeMultipartUpload(key: String, uploadId: String, parts: [S3CompletedPart]) async throws(S3Error) -> String {
        let xml = Self.completeBody(parts)
        var headers: [(name: String, value: String)] = [("Content-Type", "application/xml")]
        if configuration.preventOverwrites {
            try await requireAbsent(key: key, before: "CompleteMultipartUpload")
            headers.append(("If-None-Match", "*"))
        }
        // Complete is never resent blindly: after a lost answer, the upload being gone and the object being
        // there means an earlier attempt did it.
        return try await retrying("CompleteMultipartUpload", key: key) { (error: S3Error) async throws(S3Error) -> String? in
            // After a lost answer (or a retry told the upload is gone), the object being there means done. A first
            // attempt told the upload is gone was never ours to have completed: someone else ended the upload,
            // and whatever is at the key is not this backup.
            guard error.isTransient || (error.code == "NoSuchUpload" && error.attempts > 1), try await !uploadExists(key: key, uploadId: uploadId),
                  let object = try? await headObject(key: key), completedFrom(parts, eTag: object.eTag)
            else {
                return nil
            }
            logger.info("s3 complete succeeded on an earlier attempt", metadata: ["s3_key": "\(key)", "attempts": "\(error.attempts)"])
            return object.eTag
        } _: { () async throws(S3Error) -> String in
            let response = try await send(
                "CompleteMultipartUpload", method: .POST, key: key, query: [("uploadId", uploadId)],
                headers: headers, body: .buffer(ByteBuffer(string: xml)), retry: .never)
            let document = try completedDocument(response, key: key)
            do throws(S3Error) {
                try confirmEncryption(response.headers, operation: "CompleteMultipartUpload", key: key)
            } catch {
                try? await deleteObject(key: key)
                throw error
            }
            return (document?["ETag"] ?? "").trimmingCharacters(in: CharacterSet(charactersIn: "\""))
        }
    }

    /// Whether an object whose ETag is `eTag` can be the one these parts complete: where ETags are MD5s, a
    /// completed upload's is the MD5 of its parts' MD5s and their count (an object someone else put there
    /// has another). Elsewhere the caller's check of the stored object decides.
    func completedFrom(_ parts: [S3CompletedPart], eTag: String) -> Bool {
        let partMD5s = parts.sorted { $0.partNumber < $1.partNumber }.compactMap { Self.md5Bytes(hex: $0.eTag) }
        guard comparableETag(eTag), partMD5s.count == parts.count else { return true }
        return eTag.lowercased() == Self.multipartETag(partMD5s: partMD5s)
    }

    /// The 16 bytes of an MD5 written as 32 hex digits, or `nil`.
    static func md5Bytes(hex: String) -> Data? {
        let digits = Array(hex.utf8)
        guard digits.count == 32 else { return nil }
        var bytes = Data(capacity: 16)
        for index in stride(from: 0, to: 32, by: 2) {
            guard let byte = UInt8(String(decoding: digits[index..<index + 2], as: UTF8.self), radix: 16) else { return nil }
            bytes.append(byte)
        }
        return bytes
    }

    /// The upload id in CreateMultipartUpload's answer.
    func uploadId(in response: Response, key: String) throws(S3Error) -> String {
        guard let uploadId = try? S3XMLElement.parse(String(buffer: response.body))["UploadId"], !uploadId.isEmpty else {
            throw S3Error(operation: "CreateMultipartUpload", bucket: bucket, key: key, cause: .invalidResponse("no UploadId in the answer"))
        }
        return uploadId
    }

    /// CompleteMultipartUpload's answer, parsed: S3 may answer 200 with an error inside, which is thrown.
    func completedDocument(_ response: Response, key: String) throws(S3Error) -> S3XMLElement? {
        let document = try? S3XMLElement.parse(String(buffer: response.body))
        if let document, document.name == "Error" {
            throw S3Error(
                operation: "CompleteMultipartUpload", bucket: bucket, key: key,
                cause: .service(status: 200, code: document["Code"], message: document["Message"], requestId: document["RequestId"]))
        }
        return document
    }

    /// The body of CompleteMultipartUpload: the parts in order with their ETags.
    static func completeBody(_ parts: [S3CompletedPart]) -> String {
        var xml = "<CompleteMultipartUpload xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
        for part in parts.sorted(by: { $0.partNumber < $1.partNumber }) {
            xml += "<Part><PartNumber>\(part.partNumber)</PartNumber><ETag>\"\(part.eTag)\"</ETag></Part>"
        }
        return xml + "</CompleteMultipartUpload>"
    }

    /// Whether an upload is still in progress (ListParts answers rather than `NoSuchUpload`).
    func uploadExists(key: String, uploadId: String) async throws(S3Error) -> Bool {
        do {
            _ = try await send("ListParts", method: .GET, key: key, query: [("max-parts", "1"), ("uploadId", uploadId)])
            return true
        } catch {
            if error.code == "NoSuchUpload" || error.status == 404 { return false }
            throw error
        }
    }

    /// Aborts an upload and frees its parts. An upload already gone counts as aborted.
    public func abortMultipartUpload(key: String, uploadId: String) async throws(S3Error) {
        do {
            _ = try await send("AbortMultipartUpload", method: .DELETE, key: key, query: [("uploadId", uploadId)], expect: [200, 204])
        } catch {
            if error.code == "NoSuchUpload" { return }
            throw error
        }
    }

    /// Every upload in progress under `prefix`, all pages.
    public func listMultipartUploads(prefix: String) async throws(S3Error) -> [S3MultipartUpload] {
        var uploads: [S3MultipartUpload] = []
        var keyMarker: String?
        var uploadIdMarker: String?
        var seenMarkers: Set<[String]> = []
        while true {
            var query: [(name: String, value: String)] = [("uploads", ""), ("prefix", prefix)]
            if let keyMarker { query.append(("key-marker", keyMarker)) }
            if let uploadIdMarker { query.append(("upload-id-marker", uploadIdMarker)) }
            let response = try await send("ListMultipartUploads", method: .GET, key: nil, query: query)
            let document: S3XMLElement
            do throws(S3XMLElement.SyntaxError) {
                document = try S3XMLElement.parse(String(buffer: response.body))
            } catch {
                throw S3Error(operation: "ListMultipartUploads", bucket: bucket, key: prefix, cause: .invalidResponse(error.description))
            }
            try checkListing(document, root: "ListMultipartUploadsResult", operation: "ListMultipartUploads", prefix: prefix)
            for upload in document.children("Upload") {
                guard let key = upload["Key"], let id = upload["UploadId"] else { continue }
                uploads.append(S3MultipartUpload(key: key, uploadId: id, initiated: upload["Initiated"].flatMap(S3ObjectListing.parseDate)))
            }
            guard document["IsTruncated"] == "true" else { break }
            // A truncated page must say where the next one starts, and somewhere new: otherwise the rest of
            // the listing would be read as "no more uploads", or asked for without end.
            guard let nextKey = document["NextKeyMarker"], !nextKey.isEmpty else {
                throw S3Error(operation: "ListMultipartUploads", bucket: bucket, key: prefix, cause: .invalidResponse("a truncated page without NextKeyMarker"))
            }
            let nextUpload = document["NextUploadIdMarker"]
            guard !seenMarkers.contains([nextKey, nextUpload ?? ""]) else {
                throw S3Error(
                    operation: "ListMultipartUploads", bucket: bucket, key: prefix,
                    cause: .invalidResponse("the store gave the same next marker (\(nextKey)) twice: a listing that never ends"))
            }
            seenMarkers.insert([nextKey, nextUpload ?? ""])
            (keyMarker, uploadIdMarker) = (nextKey, nextUpload)
        }
        return uploads
    }
}

/// The aws-chunked body of a streamed part: each chunk of `chunks` framed with its signature, then the final
/// empty chunk. Throws instead of ending the body when `chunks` ends before `length` bytes, so a part cut short
/// is never sent whole-looking.
struct AWSChunkedBody: AsyncSequence, Sendable {
    typealias Element = ByteBuffer
    let chunks: AsyncStream<ByteBuffer>
    let signer: ChunkedPayloadSigner
    let length: Int

    struct EndedShort: Error, CustomStringConvertible {
        let sent: Int
        let length: Int
        var description: String { "the part's stream ended after \(sent) of \(length) bytes" }
    }

    struct AsyncIterator: AsyncIteratorProtocol {
        var upstream: AsyncStream<ByteBuffer>.AsyncIterator
        var signer: ChunkedPayloadSigner
        let length: Int
        var sent = 0
        var pending: [ByteBuffer] = []
        var ended = false

        mutating func next() async throws -> ByteBuffer? {
            if !pending.isEmpty { return pending.removeFirst() }
            guard !ended else { return nil }
            if let chunk = await upstream.next() {
                sent += chunk.readableBytes
                pending = [chunk, ByteBuffer(string: "\r\n")]
                return signer.header(for: chunk)
            }
            ended = true
            guard sent == length else { throw EndedShort(sent: sent, length: length) }
            var last = signer.header(for: ByteBuffer())
            last.writeString("\r\n")
            return last
        }
    }

    func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(upstream: chunks.makeAsyncIterator(), signer: signer, length: length)
    }
}
