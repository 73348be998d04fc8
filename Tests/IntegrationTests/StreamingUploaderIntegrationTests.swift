import Foundation
import Logging
import NIOCore
import Testing
import TenantBackup
import TenantBackupTesting

/// Parts sent while they fill (aws-chunked, through the verifying proxy, which checks every chunk's signature)
/// and the buffered fallback, against moto.
@Suite struct StreamingUploaderIntegrationTests {
    let services: TestServices
    static let partSize = 5 << 20

    init() throws {
        services = try TestServices()
    }

    /// Writes `bytes` in 64 KiB pieces, as compressed pg_dump output arrives.
    func upload(_ bytes: ByteBuffer, key: String, client: S3Client, streamParts: Bool = true, logger: Logger? = nil) async throws -> StreamingUploader.Result {
        let uploader = StreamingUploader(
            client: client, key: key, partSize: Self.partSize, partsInFlight: 4, streamParts: streamParts,
            options: S3WriteOptions(), logger: logger ?? .quiet)
        var rest = bytes
        while rest.readableBytes > 0 {
            try await uploader.write(rest.readSlice(length: min(64 << 10, rest.readableBytes))!)
        }
        return try await uploader.complete()
    }

    func partRequests(_ bucket: String, _ key: String) async throws -> [ProxyControl.SeenRequest] {
        try await services.proxy.requests(matching: "^/\(bucket)/\(key)$").filter { $0.method == "PUT" && $0.query.contains("partNumber=") }
    }

    static func partNumber(_ request: ProxyControl.SeenRequest) -> Int {
        let field = request.query.split(separator: "&").first { $0.hasPrefix("partNumber=") }
        return field.flatMap { Int($0.dropFirst("partNumber=".count)) } ?? 0
    }

    func expectStored(_ bytes: ByteBuffer, at key: String, result: StreamingUploader.Result, client: S3Client) async throws {
        let stored = try await client.getObject(key: key, limit: 64 << 20)
        #expect(stored == bytes)
        #expect(result.sha256 == S3ClientIntegrationTests.sha256(bytes))
        let left = try await client.listMultipartUploads(prefix: "")
        let requests = try await services.proxy.requests(matching: "^/\(client.bucket)/\(key)$")
        if left.count == 1, requests.filter({ $0.method == "POST" && $0.query == "uploads" }).count > 1 {
            // A Create the client gave up on (a loaded machine) that reached the store after every cleanup the
            // uploader could make: no answer ever named it. Retention's grace-period sweep ends it in production.
            try await client.abortMultipartUpload(key: left[0].key, uploadId: left[0].uploadId)
        } else if !left.isEmpty {
            // Which requests made the upload that was left: each CreateMultipartUpload, its answer and its order.
            let story = requests.map { "\($0.arrival ?? -1) \($0.method) ?\($0.query.prefix(60)) → \($0.status.map { "\($0)" } ?? "-") \($0.error ?? "")" }
            Issue.record("uploads left behind: \(left.map(\.uploadId)); requests for \(key):\n\(story.joined(separator: "\n"))")
        }
    }

    @Test(arguments: [true, false])
    func partsGoUpWhileTheyFillAndTheObjectIsExact(streamParts: Bool) async throws {
        try await TestBucket.with(services) { bucket in
            let client = services.s3Client(bucket: bucket)
            let bytes = S3ClientIntegrationTests.randomBytes(17 << 20)  // parts of 5, 5, 5 and 2 MiB
            let result = try await upload(bytes, key: "object", client: client, streamParts: streamParts)
            #expect(result.parts == 4)
            try await expectStored(bytes, at: "object", result: result, client: client)
            // One stored request per part: on a loaded machine a part may time out and be sent again (both
            // answered 200), and the last one is the part S3 keeps.
            var last: [Int: ProxyControl.SeenRequest] = [:]
            for request in try await partRequests(bucket, "object") where request.status == .code(200) { last[Self.partNumber(request)] = request }
            let stored = last.keys.sorted().map { last[$0]! }
            #expect(stored.map(Self.partNumber) == [1, 2, 3, 4])
            // The three whole parts went up while they filled (their first attempt streamed, whatever a retry did);
            // the short last one, cut off, is stored buffered.
            var firstAttempt: [Int: Bool] = [:]
            // A streamed attempt the client gave up on (a loaded machine) may end after its buffered retry.
            try await services.proxy.settle(matching: "^/\(bucket)/object$")
            let arrived = try await partRequests(bucket, "object").sorted { ($0.arrival ?? 0) < ($1.arrival ?? 0) }
            for request in arrived where firstAttempt[Self.partNumber(request)] == nil {
                firstAttempt[Self.partNumber(request)] = request.streaming == true
            }
            #expect(firstAttempt.filter { $0.value && $0.key <= 3 }.keys.sorted() == (streamParts ? [1, 2, 3] : []))
            #expect(stored.last?.streaming == false)
        }
    }

    @Test func anObjectBetweenHalfAPartAndAPartIsStillOnePutObject() async throws {
        try await TestBucket.with(services) { bucket in
            let client = services.s3Client(bucket: bucket)
            let bytes = S3ClientIntegrationTests.randomBytes((3 << 20) + 12345)  // past half a part: streaming started
            let result = try await upload(bytes, key: "small", client: client)
            #expect(result.parts == 0)
            try await expectStored(bytes, at: "small", result: result, client: client)
            let puts = try await services.proxy.requests(matching: "^/\(bucket)/small$").filter { $0.method == "PUT" && $0.status == .code(200) }
            #expect(puts.count == 1 && puts[0].query.isEmpty)
        }
    }

    @Test func aStreamedPartThatFailsIsSentAgainFromMemory() async throws {
        try await TestBucket.with(services) { bucket in
            let client = services.s3Client(bucket: bucket)
            try await services.proxy.inject([
                .init(method: "PUT", path: "^/\(bucket)/retried$", query: "partNumber=2", action: .error, status: 500, code: "InternalError", streaming: true)
            ])
            let bytes = S3ClientIntegrationTests.randomBytes(11 << 20)
            let result = try await upload(bytes, key: "retried", client: client)
            try await expectStored(bytes, at: "retried", result: result, client: client)
            let second = try await partRequests(bucket, "retried").filter { Self.partNumber($0) == 2 }
            #expect(second.contains { $0.streaming == true && $0.status == .code(500) })
            #expect(second.contains { $0.streaming == false && $0.status == .code(200) })
        }
    }

    @Test func anEndpointThatRefusesAwsChunkedGetsBufferedPartsAndOneWarning() async throws {
        try await TestBucket.with(services) { bucket in
            let logs = CapturedLogs()
            let client = services.s3Client(bucket: bucket)
            try await services.proxy.inject([
                .init(method: "PUT", path: "^/\(bucket)/refused$", action: .error, times: 0, status: 501, code: "NotImplemented", streaming: true)
            ])
            let bytes = S3ClientIntegrationTests.randomBytes(23 << 20)
            let uploader = StreamingUploader(
                client: client, key: "refused", partSize: Self.partSize, partsInFlight: 4, options: S3WriteOptions(), logger: logs.logger())
            // The first part, streamed; then the rest once the endpoint has said no.
            try await uploader.write(bytes.getSlice(at: 0, length: Self.partSize)!)
            let deadline = ContinuousClock.now + .seconds(20)
            while !logs.text.contains("refused a part sent aws-chunked"), ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(20))
            }
            try await uploader.write(bytes.getSlice(at: Self.partSize, length: bytes.readableBytes - Self.partSize)!)
            let result = try await uploader.complete()
            try await expectStored(bytes, at: "refused", result: result, client: client)
            let parts = try await partRequests(bucket, "refused")
            #expect(parts.filter { $0.status == .code(200) }.map(Self.partNumber).sorted() == [1, 2, 3, 4, 5])
            #expect(parts.filter { $0.status == .code(200) }.allSatisfy { $0.streaming == false })
            #expect(parts.filter { $0.streaming == true }.map(Self.partNumber) == [1])
            #expect(logs.lines.filter { $0.contains("refused a part sent aws-chunked") }.count == 1)
        }
    }

    @Test func aPartThatTimesOutWhileItFillsIsSentOnceFullAndSoAreTheNext() async throws {
        try await TestBucket.with(services) { bucket in
            let logs = CapturedLogs()
            var configuration = TestServices.clientConfiguration
            // Long enough that a buffered 5 MiB part fits even when every test runs at once on two cores (a
            // request also waits here for a free connection of the shared client).
            configuration.requestTimeout = .seconds(15)
            let client = services.s3Client(bucket: bucket, configuration: configuration)
            let bytes = S3ClientIntegrationTests.randomBytes(17 << 20)
            let uploader = StreamingUploader(
                client: client, key: "paused", partSize: Self.partSize, partsInFlight: 4, options: S3WriteOptions(), logger: logs.logger())
            // Past half of the first part (its streamed request starts), then a pause longer than a request may
            // last, as pg_dump waiting on a lock.
            try await uploader.write(bytes.getSlice(at: 0, length: 3 << 20)!)
            try await Task.sleep(for: .seconds(18))
            try await uploader.write(bytes.getSlice(at: 3 << 20, length: bytes.readableBytes - (3 << 20))!)
            let result = try await uploader.complete()
            try await expectStored(bytes, at: "paused", result: result, client: client)
            let parts = try await partRequests(bucket, "paused")
            // (A part may be stored twice when a loaded machine made a buffered attempt outlast the timeout too.)
            #expect(Set(parts.filter { $0.status == .code(200) }.map(Self.partNumber)) == [1, 2, 3, 4])
            #expect(parts.filter { $0.status == .code(200) }.allSatisfy { $0.streaming == false })
            // Only the first part was ever streamed (the proxy may not have logged that attempt: the client hung
            // up on it).
            #expect(parts.filter { $0.streaming == true }.allSatisfy { Self.partNumber($0) == 1 })
            #expect(logs.lines.filter { $0.contains("timed out; the rest of this upload sends parts once full") }.count == 1)
        }
    }
}
