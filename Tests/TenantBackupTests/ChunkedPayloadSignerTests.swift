import Foundation
import NIOCore
import Testing

@testable import TenantBackup

/// AWS's worked example of a chunked upload ("Signature Calculations for the Authorization Header:
/// Transferring Payload in Multiple Chunks"): 66,560 bytes of `a` in a 64 KiB chunk and a 1 KiB chunk, signed
/// with the same example credentials and date as the other documented examples.
@Suite struct ChunkedPayloadSignerTests {
    /// The documented examples' credentials and date (as in ``SigV4SignerTests``).
    let signer = SigV4SignerTests().signer
    let date = SigV4SignerTests().date

    @Test func theDocumentedExampleSignsToTheDocumentedSeedAndChunkSignatures() {
        let request = SigV4Signer.Request(
            method: "PUT", host: "s3.amazonaws.com", path: "/examplebucket/chunkObject.txt",
            headers: [("Content-Length", "66824"), ("x-amz-storage-class", "REDUCED_REDUNDANCY")])
        var (headers, chunks) = signer.streamingSignedHeaders(for: request, decodedLength: 66_560, date: date)
        #expect(headers.first { $0.name == "x-amz-content-sha256" }?.value == "STREAMING-AWS4-HMAC-SHA256-PAYLOAD")
        #expect(headers.first { $0.name == "Authorization" }?.value == "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
            + "SignedHeaders=content-encoding;content-length;host;x-amz-content-sha256;x-amz-date;x-amz-decoded-content-length;x-amz-storage-class, "
            + "Signature=4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9")
        let first = ByteBuffer(repeating: UInt8(ascii: "a"), count: 65_536)
        let second = ByteBuffer(repeating: UInt8(ascii: "a"), count: 1_024)
        #expect(String(buffer: chunks.header(for: first))
            == "10000;chunk-signature=ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648\r\n")
        #expect(String(buffer: chunks.header(for: second))
            == "400;chunk-signature=0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497\r\n")
        #expect(String(buffer: chunks.header(for: ByteBuffer()))
            == "0;chunk-signature=b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9\r\n")
    }

    @Test func theEncodedLengthIsTheDocumentedContentLength() {
        #expect(ChunkedPayloadSigner.encodedLength(decodedLength: 66_560, chunkSize: 65_536) == 66_824)
    }

    @Test(arguments: [(0, 1024), (1, 1024), (1024, 1024), (1025, 1024), (8 << 20, 1 << 20), ((8 << 20) + 7, 1 << 20), (5 << 20, 3 << 20)])
    func theEncodedLengthCountsEveryByteOfTheFraming(decoded: Int, chunkSize: Int) {
        var signer = ChunkedPayloadSigner(key: .init(size: .bits256), amzDate: "20130524T000000Z", scope: "s", previousSignature: "")
        var total = 0
        var offset = 0
        while offset < decoded {
            let size = min(chunkSize, decoded - offset)
            total += signer.header(for: ByteBuffer(repeating: 0, count: size)).readableBytes + size + 2
            offset += size
        }
        total += signer.header(for: ByteBuffer()).readableBytes + 2
        #expect(ChunkedPayloadSigner.encodedLength(decodedLength: Int64(decoded), chunkSize: chunkSize) == Int64(total))
    }
}
