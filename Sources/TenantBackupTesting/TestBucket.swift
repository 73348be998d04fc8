import Foundation
import Logging
import TenantBackup

/// A bucket of its own for one test on the test S3 endpoint, emptied and deleted afterwards.
public enum TestBucket {
    /// Runs `body` with a fresh bucket's name, then deletes every object left in it and the bucket.
    @discardableResult
    public static func with<T>(_ services: TestServices, _ body: (String) async throws -> T) async throws -> T {
        let name = TestServices.uniqueName("tb-test")
        let client = services.s3Client(bucket: name)
        try await client.createBucket()
        do {
            let result = try await body(name)
            try await empty(client)
            return result
        } catch {
            try? await empty(client)
            throw error
        }
    }

    private static func empty(_ client: S3Client) async throws {
        for upload in try await client.listMultipartUploads(prefix: "") {
            try await client.abortMultipartUpload(key: upload.key, uploadId: upload.uploadId)
        }
        while true {
            let keys = try await client.listKeys(prefix: "", maxKeys: 1000)
            if keys.isEmpty { break }
            _ = try await client.deleteObjects(keys: keys)
        }
        try await client.deleteBucket()
    }
}
