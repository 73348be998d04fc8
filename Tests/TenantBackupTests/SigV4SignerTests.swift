import Foundation
import Testing

@testable import TenantBackup

/// The worked examples of AWS's "Signature Version 4 for S3" documentation, reproduced byte for byte.
@Suite struct SigV4SignerTests {
    let signer = SigV4Signer(
        credentials: S3Credentials(accessKeyId: "AKIAIOSFODNN7EXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
        region: "us-east-1")
    /// 2013-05-24T00:00:00Z, the date of the documented examples.
    let date = Date(timeIntervalSince1970: 1_369_353_600)

    @Test func getObjectWithRangeMatchesTheDocumentedSignature() {
        let request = SigV4Signer.Request(
            method: "GET", host: "examplebucket.s3.amazonaws.com", path: "/test.txt", headers: [("Range", "bytes=0-9")])
        let headers = signer.signedHeaders(for: request, payloadHash: SigV4Signer.emptyPayloadHash, date: date)
        let authorization = headers.first { $0.name == "Authorization" }?.value
        #expect(authorization == "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
            + "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
            + "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41")
    }

    @Test func putObjectWithSignedPayloadMatchesTheDocumentedSignature() {
        let payloadHash = "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072"  // "Welcome to Amazon S3."
        let request = SigV4Signer.Request(
            method: "PUT", host: "examplebucket.s3.amazonaws.com", path: "/test$file.text",
            headers: [("Date", "Fri, 24 May 2013 00:00:00 GMT"), ("x-amz-storage-class", "REDUCED_REDUNDANCY")])
        let headers = signer.signedHeaders(for: request, payloadHash: payloadHash, date: date)
        #expect(headers.first { $0.name == "Authorization" }?.value.hasSuffix(
            "SignedHeaders=date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class, "
                + "Signature=98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd") == true)
    }

    @Test func listObjectsWithQueryMatchesTheDocumentedSignature() {
        let request = SigV4Signer.Request(
            method: "GET", host: "examplebucket.s3.amazonaws.com", path: "/", query: [("max-keys", "2"), ("prefix", "J")])
        let headers = signer.signedHeaders(for: request, payloadHash: SigV4Signer.emptyPayloadHash, date: date)
        #expect(headers.first { $0.name == "Authorization" }?.value.hasSuffix(
            "Signature=34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7") == true)
    }

    @Test func presignedGetMatchesTheDocumentedSignature() throws {
        let request = SigV4Signer.Request(method: "GET", host: "examplebucket.s3.amazonaws.com", path: "/test.txt")
        let query = try signer.presignedQuery(for: request, expires: 86400, date: date)
        #expect(query.last?.name == "X-Amz-Signature")
        #expect(query.last?.value == "aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404")
    }

    @Test(arguments: [0, -1, 604_801, 1_000_000])
    func presignedExpiryOutsideOneSecondToSevenDaysIsRejected(expires: Int) {
        let request = SigV4Signer.Request(method: "GET", host: "h", path: "/k")
        #expect(throws: PresignError.expiryOutOfRange(expires)) {
            try signer.presignedQuery(for: request, expires: expires, date: date)
        }
    }

    @Test func presignedUrlMayNotOutliveTemporaryCredentials() {
        let temporary = SigV4Signer(
            credentials: S3Credentials(accessKeyId: "AK", secretAccessKey: "s", sessionToken: "t", expiration: date.addingTimeInterval(600)),
            region: "us-east-1")
        let request = SigV4Signer.Request(method: "GET", host: "h", path: "/k")
        #expect(throws: PresignError.self) { try temporary.presignedQuery(for: request, expires: 601, date: date) }
        #expect(throws: Never.self) { try temporary.presignedQuery(for: request, expires: 600, date: date) }
    }

    @Test func sessionTokenIsSignedAsAHeader() {
        let temporary = SigV4Signer(
            credentials: S3Credentials(accessKeyId: "AK", secretAccessKey: "s", sessionToken: "the-token"), region: "eu-west-1")
        let headers = temporary.signedHeaders(
            for: .init(method: "GET", host: "h", path: "/k"), payloadHash: SigV4Signer.unsignedPayload, date: date)
        #expect(headers.contains { $0.name == "x-amz-security-token" && $0.value == "the-token" })
        #expect(headers.first { $0.name == "Authorization" }?.value.contains("x-amz-security-token") == true)
    }

    @Test func uriEncodingFollowsRFC3986() {
        #expect(SigV4Signer.uriEncode("a b+c=d%e~f_g-h.i/j", keepSlash: true) == "a%20b%2Bc%3Dd%25e~f_g-h.i/j")
        #expect(SigV4Signer.uriEncode("a/b", keepSlash: false) == "a%2Fb")
        #expect(SigV4Signer.uriEncode("Clínica \"Sur\"", keepSlash: true) == "Cl%C3%ADnica%20%22Sur%22")
    }

    @Test func amzDateIsUTCBasicFormat() {
        #expect(SigV4Signer.amzDate(date) == "20130524T000000Z")
        #expect(SigV4Signer.amzDate(Date(timeIntervalSince1970: 1_795_919_214.9)) == "20261129T022654Z")
    }

    @Test func credentialsNeverDescribeTheirSecret() {
        let credentials = S3Credentials(accessKeyId: "AKID", secretAccessKey: "very-secret", sessionToken: "token-secret")
        for text in [credentials.description, "\(credentials)", String(reflecting: credentials)] {
            #expect(!text.contains("very-secret"))
            #expect(!text.contains("token-secret"))
            #expect(text.contains("AKID"))
        }
    }
}
