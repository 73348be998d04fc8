import Crypto
import Foundation
import NIOCore

/// Signs an `aws-chunked` body (SigV4's `STREAMING-AWS4-HMAC-SHA256-PAYLOAD`), so a part can go out while it
/// is still being produced and S3 still checks every byte against our key.
///
/// The body is a series of chunks, each framed as `<hex size>;chunk-signature=<sig>\r\n<data>\r\n`, ended by an
/// empty chunk. Each chunk's signature covers its data and the previous signature, starting from the request's
/// own (seed) signature, so chunks cannot be dropped, reordered or altered.
public struct ChunkedPayloadSigner: Sendable {
    /// The `x-amz-content-sha256` of an aws-chunked request.
    public static let payloadHash = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
    static let chunkAlgorithm = "AWS4-HMAC-SHA256-PAYLOAD"
    /// `;chunk-signature=`, a 64-digit signature and the CRLFs around the data.
    static let framingBytes = 17 + 64 + 2 + 2

    let key: SymmetricKey
    let amzDate: String
    let scope: String
    /// The seed signature, then the signature of the last chunk signed.
    public private(set) var previousSignature: String

    /// Signs the next chunk (an empty one ends the body) and returns its signature.
    public mutating func sign(_ chunk: ByteBuffer) -> String {
        let digest = chunk.withUnsafeReadableBytes { SHA256.hash(data: $0) }
        let stringToSign = [
            Self.chunkAlgorithm, amzDate, scope, previousSignature, SigV4Signer.emptyPayloadHash, SigV4Signer.hex(digest),
        ].joined(separator: "\n")
        previousSignature = SigV4Signer.hex(HMAC<SHA256>.authenticationCode(for: Data(stringToSign.utf8), using: key))
        return previousSignature
    }

    /// Signs `chunk` and returns the line that goes before its data: `<hex size>;chunk-signature=<sig>\r\n`.
    public mutating func header(for chunk: ByteBuffer) -> ByteBuffer {
        let signature = sign(chunk)
        return ByteBuffer(string: "\(String(chunk.readableBytes, radix: 16));chunk-signature=\(signature)\r\n")
    }

    /// The bytes on the wire for `decodedLength` bytes of payload in chunks of `chunkSize` (the last one may be
    /// shorter), the final empty chunk included: the request's Content-Length, known before the data is.
    public static func encodedLength(decodedLength: Int64, chunkSize: Int) -> Int64 {
        precondition(chunkSize > 0 && decodedLength >= 0)
        let size = Int64(chunkSize)
        let fullChunks = decodedLength / size
        let rest = decodedLength % size
        var total = fullChunks * (Int64(String(chunkSize, radix: 16).utf8.count + framingBytes) + size)
        if rest > 0 { total += Int64(String(rest, radix: 16).utf8.count + framingBytes) + rest }
        return total + Int64(1 + framingBytes)
    }
}

extension SigV4Signer {
    /// Signs the headers of a request whose body is sent aws-chunked. Adds `Content-Encoding: aws-chunked` and
    /// `x-amz-decoded-content-length` to the signed headers. Returns the headers to send besides
    /// `request.headers` (those two, the `x-amz-*` ones and `Authorization`) and the signer of the body's chunks,
    /// seeded with the request's signature.
    public func streamingSignedHeaders(
        for request: Request, decodedLength: Int64, date: Date
    ) -> (headers: [(name: String, value: String)], chunks: ChunkedPayloadSigner) {
        let framing: [(name: String, value: String)] = [
            ("Content-Encoding", "aws-chunked"), ("x-amz-decoded-content-length", String(decodedLength)),
        ]
        var toSign = request
        toSign.headers += framing
        let (signed, seed) = sign(toSign, payloadHash: ChunkedPayloadSigner.payloadHash, date: date)
        let amzDate = Self.amzDate(date)
        let chunks = ChunkedPayloadSigner(key: signingKey(amzDate), amzDate: amzDate, scope: scope(amzDate), previousSignature: seed)
        return (framing + signed, chunks)
    }
}
