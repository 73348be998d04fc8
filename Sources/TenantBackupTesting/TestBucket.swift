import Foundation
import Logging
import TenantBackup

/// A bucket of its own for one test on the test S3 endpoint, emptied and deleted afterwards.
public enum TestBucket {
    /// Runs `body` with a fresh bucket's name, then deletes every object left in it and the bucket.
    @discardableResult
    public static func with<T>(_ services: TestServices, _ body: (String) async throws -> T) async throws -> T {
        try await with(client: { services.s3Client(bucket: $0) }, body)
    }

    /// Runs `body` with a fresh bucket made by the client `client` returns for a bucket name (another store
    /// of the test services), then empties and deletes it.
    @discardableResult
    public static func with<T>(client makeClient: (String) -> S3Client, _ body: (String) async throws -> T) async throws -> T {
        let name = TestServices.uniqueName("tb-test")
        let client = makeClient(name)
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

    /// A request the client gave up on (timed out on a loaded machine, then retried) may still be stored by the
    /// endpoint after the listing: the bucket is then not empty yet, and emptying it again is the answer.
    private static func empty(_ client: S3Client) async throws {
        var attempt = 1
        while true {
            do {
                try await emptyOnce(client)
                return
            } catch {
                guard attempt < 5 else { throw error }
                attempt += 1
                try await Task.sleep(for: .seconds(1))
            }
        }
    }

    private static func emptyOnce(_ client: S3Client) async throws {
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
