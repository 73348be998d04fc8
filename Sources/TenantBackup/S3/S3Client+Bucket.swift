import NIOCore

extension S3Client {
    /// Creates the bucket (first-time setup and tests).
    public func createBucket() async throws(S3Error) {
        var body: RequestBody = .empty
        if region != "us-east-1" {
            body = .buffer(ByteBuffer(string:
                "<CreateBucketConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><LocationConstraint>\(region)</LocationConstraint></CreateBucketConfiguration>"))
        }
        _ = try await send("CreateBucket", method: .PUT, key: nil, body: body)
    }

    /// Deletes the bucket, which must be empty.
    public func deleteBucket() async throws(S3Error) {
        _ = try await send("DeleteBucket", method: .DELETE, key: nil, expect: [200, 204])
    }
}
