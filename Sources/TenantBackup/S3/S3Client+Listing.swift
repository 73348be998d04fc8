import Foundation
import NIOCore

/// One object of a listing.
public struct S3ObjectSummary: Sendable, Equatable {
    public let key: String
    public let size: Int64
    public let eTag: String
    public let lastModified: Date?
    /// `STANDARD`, `GLACIER_IR`...; `nil` when the listing does not say.
    public let storageClass: String?

    public init(key: String, size: Int64, eTag: String, lastModified: Date?, storageClass: String? = nil) {
        self.key = key
        self.size = size
        self.eTag = eTag
        self.lastModified = lastModified
        self.storageClass = storageClass
    }
}

extension S3Client {
    /// Every object under `prefix`, page after page (ListObjectsV2 with continuation tokens), as an async
    /// sequence: memory holds one page at a time.
    ///
    /// - Important: pass a prefix ending in `/` to list one tenant: `backups/clinic/` never matches
    ///   `backups/clinic2/`.
    public func listObjects(prefix: String, pageSize: Int = 1000) -> S3ObjectListing {
        S3ObjectListing(client: self, prefix: prefix, pageSize: pageSize)
    }

    /// The keys of up to `maxKeys` objects under `prefix` (one request).
    public func listKeys(prefix: String, maxKeys: Int = 1000) async throws(S3Error) -> [String] {
        try await listPage(prefix: prefix, pageSize: maxKeys, continuationToken: nil).objects.map(\.key)
    }

    func listPage(prefix: String, pageSize: Int, continuationToken: String?) async throws(S3Error) -> (objects: [S3ObjectSummary], next: String?) {
        var query: [(name: String, value: String)] = [
            ("list-type", "2"), ("prefix", prefix), ("max-keys", String(pageSize)), ("encoding-type", "url"),
        ]
        if let continuationToken { query.append(("continuation-token", continuationToken)) }
        let response = try await send("ListObjectsV2", method: .GET, key: nil, query: query)
        let document: S3XMLElement
        do throws(S3XMLElement.SyntaxError) {
            document = try S3XMLElement.parse(String(buffer: response.body))
        } catch {
            throw S3Error(operation: "ListObjectsV2", bucket: bucket, key: prefix, cause: .invalidResponse(error.description))
        }
        try checkListing(document, root: "ListBucketResult", operation: "ListObjectsV2", prefix: prefix)
        let urlEncoded = document["EncodingType"] == "url"
        var objects: [S3ObjectSummary] = []
        for content in document.children("Contents") {
            guard var key = content["Key"] else { continue }
            if urlEncoded {
                guard let decoded = key.replacingOccurrences(of: "+", with: " ").removingPercentEncoding else {
                    throw S3Error(operation: "ListObjectsV2", bucket: bucket, key: prefix, cause: .invalidResponse("undecodable key \(key)"))
                }
                key = decoded
            }
            objects.append(S3ObjectSummary(
                key: key,
                size: Int64(content["Size"] ?? "") ?? 0,
                eTag: (content["ETag"] ?? "").trimmingCharacters(in: CharacterSet(charactersIn: "\"")),
                lastModified: content["LastModified"].flatMap(S3ObjectListing.parseDate),
                storageClass: content["StorageClass"]))
        }
        let truncated = document["IsTruncated"] == "true"
        let next = truncated ? document["NextContinuationToken"] : nil
        if truncated, next == nil {
            throw S3Error(operation: "ListObjectsV2", bucket: bucket, key: prefix, cause: .invalidResponse("a truncated page without NextContinuationToken"))
        }
        return (objects, next)
    }
}

extension S3Client {
    /// A 200 answer to a listing that is not that listing of this bucket — another root element (RGW without
    /// `rgw dns name`, asked in virtual-hosted style, answers a bucket listing with its ListAllMyBucketsResult),
    /// or another bucket's name — is an error, never an empty listing: "no objects" would hide every backup.
    func checkListing(_ document: S3XMLElement, root: String, operation: String, prefix: String) throws(S3Error) {
        let hint = endpoint.usesPathStyle
            ? "the endpoint did not answer as an S3 bucket; check s3.endpoint and s3.bucket"
            : "the endpoint probably took the bucket name for a host name: set s3.addressing_style: path (TENANT_BACKUP_S3_ADDRESSING_STYLE=path)"
        guard document.name == root else {
            throw S3Error(operation: operation, bucket: bucket, key: prefix, cause: .invalidResponse("the answer is a \(document.name), not a \(root); \(hint)"))
        }
        // S3 and every compatible store name the bucket listed; an answer that names none is not that listing.
        guard let name = document["Bucket"] ?? document["Name"] else {
            throw S3Error(operation: operation, bucket: bucket, key: prefix, cause: .invalidResponse("the answer names no bucket; \(hint)"))
        }
        guard name == bucket else {
            throw S3Error(operation: operation, bucket: bucket, key: prefix, cause: .invalidResponse("the answer lists bucket \(name), not \(bucket); \(hint)"))
        }
    }
}

/// The objects under a prefix, fetched a page at a time as the sequence is iterated.
public struct S3ObjectListing: AsyncSequence, Sendable {
    public typealias Element = S3ObjectSummary
    let client: S3Client
    let prefix: String
    let pageSize: Int

    public struct AsyncIterator: AsyncIteratorProtocol {
        let listing: S3ObjectListing
        var buffered: [S3ObjectSummary] = []
        var position = 0
        var token: String?
        var seen: Set<String> = []
        var emptyPages = 0
        var finished = false

        public mutating func next(isolation actor: isolated (any Actor)?) async throws(S3Error) -> S3ObjectSummary? {
            while position >= buffered.count {
                if finished { return nil }
                let page = try await listing.client.listPage(prefix: listing.prefix, pageSize: listing.pageSize, continuationToken: token)
                // A token given twice would list the same pages without end (and hold the tenant's lock).
                if let next = page.next {
                    guard seen.insert(next).inserted else {
                        throw S3Error(
                            operation: "ListObjectsV2", bucket: listing.client.bucket, key: listing.prefix,
                            cause: .invalidResponse("the store gave the same continuation token twice: a listing that never ends"))
                    }
                }
                // Pages that are empty and truncated, each with a new token, would also never end.
                emptyPages = page.objects.isEmpty && page.next != nil ? emptyPages + 1 : 0
                if emptyPages > 100 {
                    throw S3Error(
                        operation: "ListObjectsV2", bucket: listing.client.bucket, key: listing.prefix,
                        cause: .invalidResponse("the store answered more than 100 empty pages in a row, each truncated: a listing that never ends"))
                }
                buffered = page.objects
                position = 0
                token = page.next
                finished = page.next == nil
            }
            defer { position += 1 }
            return buffered[position]
        }

        public mutating func next() async throws(S3Error) -> S3ObjectSummary? {
            try await next(isolation: nil)
        }
    }

    public func makeAsyncIterator() -> AsyncIterator { AsyncIterator(listing: self) }

    /// Every object, collected (for tests and small prefixes).
    public func collect() async throws(S3Error) -> [S3ObjectSummary] {
        var all: [S3ObjectSummary] = []
        var iterator = makeAsyncIterator()
        while let object = try await iterator.next() { all.append(object) }
        return all
    }

    static func parseDate(_ text: String) -> Date? {
        if let date = try? Date(text, strategy: .iso8601) { return date }
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter.date(from: text)
    }
}
