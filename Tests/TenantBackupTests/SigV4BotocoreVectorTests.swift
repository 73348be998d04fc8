import Foundation
import Testing

@testable import TenantBackup

/// Our signatures compared byte for byte with botocore's, the reference implementation, over the vectors
/// that `Tests/Support/sigv4/generate_vectors.py` writes (keys with spaces, unicode, `+`, `=`, `~`, `%`;
/// query values with `/`; session tokens; ports; both address styles; presigned URLs).
@Suite struct SigV4BotocoreVectorTests {
    struct Vector: Decodable, CustomTestStringConvertible, Sendable {
        let name: String
        let kind: String
        let method: String
        let host: String
        let path: String
        let query: [[String]]
        let headers: [[String]]
        let payloadHash: String
        let region: String
        let accessKeyId: String
        let secretAccessKey: String
        let sessionToken: String?
        let epochSeconds: Int
        let expires: Int?
        let expectedAuthorization: String?
        let expectedAmzDate: String?
        let expectedSignature: String?

        var testDescription: String { name }

        var signer: SigV4Signer {
            SigV4Signer(
                credentials: S3Credentials(accessKeyId: accessKeyId, secretAccessKey: secretAccessKey, sessionToken: sessionToken),
                region: region)
        }

        var request: SigV4Signer.Request {
            SigV4Signer.Request(
                method: method, host: host, path: path,
                query: query.map { ($0[0], $0[1]) }, headers: headers.map { ($0[0], $0[1]) })
        }

        var date: Date { Date(timeIntervalSince1970: TimeInterval(epochSeconds)) }
    }

    struct File: Decodable {
        let vectors: [Vector]
    }

    static let vectors: [Vector] = {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/sigv4-botocore.json")
        guard let data = try? Data(contentsOf: url), let file = try? JSONDecoder().decode(File.self, from: data) else { return [] }
        return file.vectors
    }()

    @Test func thereAreAtLeastThirtyVectors() {
        #expect(Self.vectors.count >= 30)
    }

    @Test(arguments: vectors.filter { $0.kind == "header" })
    func headerSignatureMatchesBotocore(vector: Vector) {
        let headers = vector.signer.signedHeaders(for: vector.request, payloadHash: vector.payloadHash, date: vector.date)
        #expect(headers.first { $0.name == "Authorization" }?.value == vector.expectedAuthorization)
        #expect(headers.first { $0.name == "x-amz-date" }?.value == vector.expectedAmzDate)
        #expect(headers.first { $0.name == "x-amz-security-token" }?.value == vector.sessionToken)
    }

    @Test(arguments: vectors.filter { $0.kind == "query" })
    func presignedSignatureMatchesBotocore(vector: Vector) throws {
        let query = try vector.signer.presignedQuery(for: vector.request, expires: vector.expires ?? 0, date: vector.date)
        #expect(query.last?.name == "X-Amz-Signature")
        #expect(query.last?.value == vector.expectedSignature)
    }
}
