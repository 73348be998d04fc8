import Crypto
import Foundation
import NIOCore
import Subprocess
import Testing
import TenantBackup
import TenantBackupTesting

/// Our S3 client against moto behind the verifying proxy, which recomputes every signature with botocore.
@Suite struct S3ClientIntegrationTests {
    let services: TestServices

    init() throws {
        services = try TestServices()
    }

    /// Random bytes from the kernel (a byte loop is slow in a debug build, and tests ask for up to 23 MiB).
    static func randomBytes(_ count: Int) -> ByteBuffer {
        let source = FileHandle(forReadingAtPath: "/dev/urandom")!
        defer { try? source.close() }
        var buffer = ByteBuffer()
        buffer.reserveCapacity(count)
        while buffer.readableBytes < count {
            buffer.writeBytes(source.readData(ofLength: min(1 << 20, count - buffer.readableBytes)))
        }
        return buffer
    }

    static func sha256(_ buffer: ByteBuffer) -> String {
        SHA256.hash(data: buffer.readableBytesView).map { String(format: "%02x", $0) }.joined()
    }

    @Test(arguments: [
        "backups/bienestar/backup-sql-bienestar-2026-11-29-021500.sql.zst",
        "backups/Cl%C3%ADnica%20%22Sur%22/backup.sql",
        "keys with spaces/and+plus=equals%percent~tilde",
        "unicode/Clínica \"Sur\"/ñandú.sql",
        "semi;colon,comma&amp?question#hash",
    ])
    func putHeadGetDeleteRoundTripsAnyKey(key: String) async throws {
        try await TestBucket.with(services) { bucket in
            let client = services.s3Client(bucket: bucket)
            let body = Self.randomBytes(4096)
            try await client.putObject(key: key, body: body, options: S3WriteOptions(contentType: "application/sql", userMetadata: ["tenant": "bienestar"]))
            let head = try await client.headObject(key: key)
            #expect(head.size == 4096)
            #expect(head.userMetadata["tenant"] == "bienestar")
            #expect(try await client.getObject(key: key) == body)
            #expect(try await client.listKeys(prefix: "") == [key])
            try await client.deleteObject(key: key)
            #expect(try await client.listKeys(prefix: "").isEmpty)
        }
    }

    @Test func aRangedGetReturnsJustTheRange() async throws {
        try await TestBucket.with(services) { bucket in
            let client = services.s3Client(bucket: bucket)
            let body = Self.randomBytes(10_000)
            try await client.putObject(key: "k", body: body)
            let slice = try await client.getObject(key: "k", range: 100...1099)
            #expect(slice == body.getSlice(at: 100, length: 1000))
        }
    }

    @Test func aSecondWriteToTheSameKeyIsRefused() async throws {
        try await TestBucket.with(services) { bucket in
            let client = services.s3Client(bucket: bucket)
            try await client.putObject(key: "once", body: ByteBuffer(string: "first"))
            await #expect {
                try await client.putObject(key: "once", body: ByteBuffer(string: "second"))
            } throws: { error in
                (error as? S3Error)?.status == 412
            }
            #expect(try await client.getObject(key: "once") == ByteBuffer(string: "first"))
        }
    }

    @Test func aMultipartUploadOfElevenMebibytesRoundTripsByteForByte() async throws {
        try await TestBucket.with(services) { bucket in
            let client = services.s3Client(bucket: bucket)
            let partSize = S3Client.minimumPartSize
            let whole = Self.randomBytes(11 << 20 | 12345)
            let key = "backups/bienestar/multipart ñ+.sql.zst"
            let uploadId = try await client.createMultipartUpload(key: key)
            var parts: [S3CompletedPart] = []
            var offset = 0
            var number = 1
            while offset < whole.readableBytes {
                let length = min(partSize, whole.readableBytes - offset)
                parts.append(try await client.uploadPart(key: key, uploadId: uploadId, partNumber: number, body: whole.getSlice(at: offset, length: length)!))
                offset += length
                number += 1
            }
            #expect(parts.count == 3)
            try await client.completeMultipartUpload(key: key, uploadId: uploadId, parts: parts)
            // Streamed back, hashed as it arrives.
            let stream = try await client.openObject(key: key)
            #expect(stream.metadata.size == Int64(whole.readableBytes))
            var hasher = SHA256()
            var received = 0
            for try await chunk in stream {
                hasher.update(data: chunk.readableBytesView)
                received += chunk.readableBytes
            }
            #expect(received == whole.readableBytes)
            #expect(hasher.finalize().map { String(format: "%02x", $0) }.joined() == Self.sha256(whole))
            #expect(try await client.listMultipartUploads(prefix: "").isEmpty)
        }
    }

    @Test func anAbortedUploadLeavesNothing() async throws {
        try await TestBucket.with(services) { bucket in
            let client = services.s3Client(bucket: bucket)
            let key = "backups/t/aborted.sql.zst"
            let uploadId = try await client.createMultipartUpload(key: key)
            _ = try await client.uploadPart(key: key, uploadId: uploadId, partNumber: 1, body: Self.randomBytes(1 << 20))
            #expect(try await client.listMultipartUploads(prefix: "backups/t/").map(\.uploadId) == [uploadId])
            try await client.abortMultipartUpload(key: key, uploadId: uploadId)
            #expect(try await client.listMultipartUploads(prefix: "backups/t/").isEmpty)
            #expect(try await client.listKeys(prefix: "").isEmpty)
            // Aborting again is harmless.
            try await client.abortMultipartUpload(key: key, uploadId: uploadId)
        }
    }

    // MARK: - Presigned URLs, fetched with curl

    func curl(_ url: String) async throws -> (status: Int, body: String) {
        let result = try await Subprocess.run(
            .name("curl"), arguments: ["-sS", "-g", "-o", "-", "-w", "\n%{http_code}", url],
            output: .string(limit: 1 << 20), error: .string(limit: 1 << 16))
        let text = result.standardOutput
        let split = text.split(separator: "\n", omittingEmptySubsequences: false)
        return (Int(split.last ?? "") ?? 0, split.dropLast().joined(separator: "\n"))
    }

    @Test func aPresignedURLFetchedWithCurlReturnsTheExactBytes() async throws {
        try await TestBucket.with(services) { bucket in
            let client = services.s3Client(bucket: bucket)
            let key = "backups/Clínica \"Sur\"/a+b=c.sql"
            try await client.putObject(key: key, body: ByteBuffer(string: "the dump\n"))
            let url = try await client.presignedGetURL(key: key, expiresIn: 300)
            let fetched = try await curl(url)
            #expect(fetched.status == 200)
            #expect(fetched.body == "the dump\n")
            // One character of the signature changed: refused.
            let last = url.last == "0" ? "1" : "0"
            let tampered = try await curl(String(url.dropLast()) + last)
            #expect(tampered.status == 403)
            #expect(tampered.body.contains("SignatureDoesNotMatch"))
            // The key changed: refused.
            let otherKey = try await curl(url.replacingOccurrences(of: "a%2Bb", with: "a%2Bc"))
            #expect(otherKey.status == 403)
        }
    }

    @Test func anExpiredPresignedURLIsRefused() async throws {
        try await TestBucket.with(services) { bucket in
            let client = services.s3Client(bucket: bucket)
            try await client.putObject(key: "k", body: ByteBuffer(string: "x"))
            let url = try await client.presignedGetURL(key: "k", expiresIn: 1)
            try await Task.sleep(for: .milliseconds(2200))
            let fetched = try await curl(url)
            #expect(fetched.status == 403)
            #expect(fetched.body.contains("Request has expired"))
        }
    }

    @Test func presignedExpiryBeyondSevenDaysIsRejectedBeforeSigning() async throws {
        let client = services.s3Client(bucket: "any")
        await #expect {
            try await client.presignedGetURL(key: "k", expiresIn: 604_801)
        } throws: { error in
            guard let error = error as? S3Error, case .invalidRequest(let message) = error.cause else { return false }
            return message.contains("7 days")
        }
    }

    // MARK: - Errors

    @Test func aWrongSecretIsATypedSignatureError() async throws {
        try await TestBucket.with(services) { bucket in
            var wrong = services.credentials
            wrong.secretAccessKey += "x"
            let client = services.s3Client(bucket: bucket, credentials: wrong)
            await #expect {
                try await client.putObject(key: "k", body: ByteBuffer(string: "x"))
            } throws: { error in
                guard let error = error as? S3Error else { return false }
                return error.code == "SignatureDoesNotMatch" && error.status == 403 && error.key == "k" && error.attempts == 1
                    && !error.description.contains(wrong.secretAccessKey)
            }
        }
    }

    @Test func aMissingKeyIsNoSuchKey() async throws {
        try await TestBucket.with(services) { bucket in
            let client = services.s3Client(bucket: bucket)
            await #expect { try await client.getObject(key: "absent") } throws: { ($0 as? S3Error)?.code == "NoSuchKey" }
            await #expect { try await client.headObject(key: "absent") } throws: { ($0 as? S3Error)?.status == 404 }
        }
    }

    @Test func sessionCredentialsAreAccepted() async throws {
        try await TestBucket.with(services) { bucket in
            let client = services.s3Client(bucket: bucket, credentials: services.sessionCredentials)
            try await client.putObject(key: "token", body: ByteBuffer(string: "x"))
            #expect(try await client.getObject(key: "token") == ByteBuffer(string: "x"))
        }
    }

    // MARK: - Listing and bulk deletion

    @Test func listingAPrefixNeverMatchesALongerTenantName() async throws {
        try await TestBucket.with(services) { bucket in
            let client = services.s3Client(bucket: bucket)
            for key in ["backups/clinic/a", "backups/clinic2/b", "backups/clinic/c"] {
                try await client.putObject(key: key, body: ByteBuffer(string: key))
            }
            #expect(try await client.listObjects(prefix: "backups/clinic/").collect().map(\.key) == ["backups/clinic/a", "backups/clinic/c"])
        }
    }

    @Test func twentyFiveHundredKeysAreListedOnceEachAndDeletedInThreeRequests() async throws {
        try await TestBucket.with(services) { bucket in
            let client = services.s3Client(bucket: bucket)
            let keys = (0..<2500).map { String(format: "backups/t/k %04d +=é", $0) }
            try await withThrowingTaskGroup(of: Void.self) { group in
                var next = 0
                for _ in 0..<16 {
                    let key = keys[next]
                    next += 1
                    group.addTask { try await client.putObject(key: key, body: ByteBuffer(string: "x")) }
                }
                while try await group.next() != nil, next < keys.count {
                    let key = keys[next]
                    next += 1
                    group.addTask { try await client.putObject(key: key, body: ByteBuffer(string: "x")) }
                }
                try await group.waitForAll()
            }
            let listed = try await client.listObjects(prefix: "backups/t/").collect().map(\.key)
            #expect(listed.count == 2500)
            #expect(Set(listed) == Set(keys))
            let listRequests = try await services.proxy.requests(matching: "^/\(bucket)$").filter { $0.query.contains("list-type=2") }
            #expect(listRequests.count == 3)

            let result = try await client.deleteObjects(keys: keys)
            #expect(result.deleted.count == 2500)
            #expect(result.failures.isEmpty)
            let deleteRequests = try await services.proxy.requests(matching: "^/\(bucket)$").filter { $0.method == "POST" && $0.query.contains("delete") }
            #expect(deleteRequests.count == 3)  // ⌈2500 / 1000⌉
            #expect(try await client.listKeys(prefix: "").isEmpty)
        }
    }

    // MARK: - Retries, through the proxy's fault injection

    @Test func slowDownOnPartsIsRetriedAndTheUploadIsExact() async throws {
        try await TestBucket.with(services) { bucket in
            let logs = CapturedLogs()
            let client = services.s3Client(bucket: bucket, logger: logs.logger())
            let key = "backups/t/retried.sql.zst"
            try await services.proxy.inject([
                .init(method: "PUT", path: "^/\(bucket)/backups/t/retried", query: "partNumber=1", action: .error, times: 2, status: 503, code: "SlowDown"),
                .init(method: "PUT", path: "^/\(bucket)/backups/t/retried", query: "partNumber=2", action: .reset, times: 1),
            ])
            let whole = Self.randomBytes(6 << 20)
            let uploadId = try await client.createMultipartUpload(key: key)
            let first = try await client.uploadPart(key: key, uploadId: uploadId, partNumber: 1, body: whole.getSlice(at: 0, length: 5 << 20)!)
            let second = try await client.uploadPart(key: key, uploadId: uploadId, partNumber: 2, body: whole.getSlice(at: 5 << 20, length: 1 << 20)!)
            try await client.completeMultipartUpload(key: key, uploadId: uploadId, parts: [first, second])
            #expect(Self.sha256(try await client.getObject(key: key)) == Self.sha256(whole))
            let seen = try await services.proxy.requests(matching: "^/\(bucket)/backups/t/retried").filter { $0.method == "PUT" }
            #expect(seen.filter { $0.status == .code(503) }.count == 2)
            #expect(seen.filter { $0.status == .reset }.count == 1)
            #expect(logs.text.contains("retrying"))
        }
    }

    @Test func aRequestSlowerThanTheTimeoutIsRetried() async throws {
        try await TestBucket.with(services) { bucket in
            var configuration = TestServices.clientConfiguration
            // Generous against a loaded machine (CI runs every test at once on two cores): a normal GET must
            // never hit the timeout, only the one the proxy holds back, for far longer than the timeout.
            configuration.requestTimeout = .seconds(8)
            let client = services.s3Client(bucket: bucket, configuration: configuration)
            try await client.putObject(key: "slow", body: ByteBuffer(string: "x"))
            try await services.proxy.inject([.init(method: "GET", path: "^/\(bucket)/slow$", action: .delay, times: 1, delayMilliseconds: 90000)])
            let started = ContinuousClock.now
            #expect(try await client.getObject(key: "slow") == ByteBuffer(string: "x"))
            #expect(ContinuousClock.now - started < .seconds(60))  // answered by a retry, not by the held-back request
        }
    }

    @Test func aPermanentForbiddenIsNotRetried() async throws {
        try await TestBucket.with(services) { bucket in
            let client = services.s3Client(bucket: bucket)
            try await services.proxy.inject([.init(method: "PUT", path: "^/\(bucket)/denied$", action: .error, times: 0, status: 403, code: "AccessDenied")])
            await #expect {
                try await client.putObject(key: "denied", body: ByteBuffer(string: "x"))
            } throws: { error in
                (error as? S3Error)?.code == "AccessDenied" && (error as? S3Error)?.attempts == 1
            }
            #expect(try await services.proxy.requests(matching: "^/\(bucket)/denied$").count == 1)
        }
    }

    @Test func aCompleteWhoseAnswerIsLostIsRecognisedAsDone() async throws {
        try await TestBucket.with(services) { bucket in
            let client = services.s3Client(bucket: bucket)
            let key = "backups/t/lost-answer"
            let body = Self.randomBytes(1 << 20)
            let uploadId = try await client.createMultipartUpload(key: key)
            let part = try await client.uploadPart(key: key, uploadId: uploadId, partNumber: 1, body: body)
            try await services.proxy.inject([
                .init(method: "POST", path: "^/\(bucket)/backups/t/lost-answer$", query: "uploadId", action: .resetAfterForward, times: 1)
            ])
            try await client.completeMultipartUpload(key: key, uploadId: uploadId, parts: [part])
            #expect(try await client.getObject(key: key) == body)
            let completes = try await services.proxy.requests(matching: "^/\(bucket)/backups/t/lost-answer$").filter { $0.method == "POST" && $0.query.contains("uploadId") && !$0.query.contains("uploads") }
            #expect(completes.count == 1)  // checked with ListParts + HeadObject, not sent twice
        }
    }

    /// The answer to CreateMultipartUpload is lost after the store started the upload: the retry starts
    /// another, and the first is aborted rather than left to cost until retention's sweep.
    @Test func aCreateWhoseAnswerIsLostLeavesNoSecondUpload() async throws {
        try await TestBucket.with(services) { bucket in
            let client = services.s3Client(bucket: bucket)
            let key = "backups/t/created-twice"
            try await services.proxy.inject([
                .init(method: "POST", path: "^/\(bucket)/backups/t/created-twice$", query: "uploads", action: .resetAfterForward, times: 1)
            ])
            let uploadId = try await client.createMultipartUpload(key: key)
            let creates = try await services.proxy.requests(matching: "^/\(bucket)/backups/t/created-twice$").filter { $0.method == "POST" }
            #expect(creates.count == 2)  // the store started two uploads
            #expect(try await client.listMultipartUploads(prefix: "").map(\.uploadId) == [uploadId])
            try await client.abortMultipartUpload(key: key, uploadId: uploadId)
        }
    }

    /// A bucket writer aborts our upload and puts its own object at the key: Complete fails (NoSuchUpload
    /// on S3, a 500 on moto, which looks like a lost answer), and that object is never taken for the one we
    /// were completing.
    @Test func anUploadEndedBySomeoneElseIsNeverTakenForOurs() async throws {
        try await TestBucket.with(services) { bucket in
            var configuration = TestServices.clientConfiguration
            configuration.preventOverwrites = false  // no HEAD before Complete: only the recovery decides
            let client = services.s3Client(bucket: bucket, configuration: configuration)
            let key = "backups/t/taken-over"
            let uploadId = try await client.createMultipartUpload(key: key)
            let part = try await client.uploadPart(key: key, uploadId: uploadId, partNumber: 1, body: Self.randomBytes(1 << 20))
            let attacker = try services.attackerClient(bucket: bucket)
            try await attacker.abortMultipartUpload(key: key, uploadId: uploadId)
            try await attacker.putObject(key: key, body: ByteBuffer(string: "the attacker's"))
            await #expect {
                _ = try await client.completeMultipartUpload(key: key, uploadId: uploadId, parts: [part])
            } throws: { error in
                error is S3Error
            }
            #expect(try await client.getObject(key: key) == ByteBuffer(string: "the attacker's"))
        }
    }

    /// The probe's first write fails: the conditional PUT was not tested, never "ignored".
    @Test func aProbeWhoseFirstWriteFailedDoesNotBlameConditionalWrites() async throws {
        try await TestBucket.with(services) { bucket in
            let client = services.s3Client(bucket: bucket)
            try await services.proxy.inject([
                .init(method: "PUT", path: "^/\(bucket)/probe/probe-[^/]*-put$", action: .error, times: 1, status: 500, code: "InternalError")
            ])
            let findings = await S3StoreProbe(client: client, prefix: "probe/").run()
            let conditional = findings.first { $0.name == S3StoreProbe.conditionalPut }
            #expect(conditional?.outcome == .unknown, "\(findings)")
            #expect(conditional?.detail.contains("not tested") == true, "\(findings)")
        }
    }

    @Test func aLostAnswerToAConditionalPutIsRecognisedAsOurOwnWrite() async throws {
        try await TestBucket.with(services) { bucket in
            let client = services.s3Client(bucket: bucket)
            try await services.proxy.inject([.init(method: "PUT", path: "^/\(bucket)/conditional$", action: .resetAfterForward, times: 1)])
            try await client.putObject(key: "conditional", body: ByteBuffer(string: "mine"))
            #expect(try await client.getObject(key: "conditional") == ByteBuffer(string: "mine"))
        }
    }

    @Test func aSkewedClockIsCorrectedFromTheServersTime() async throws {
        try await TestBucket.with(services) { bucket in
            let client = services.s3Client(bucket: bucket, now: { Date().addingTimeInterval(-20 * 60) })
            try await client.putObject(key: "skewed", body: ByteBuffer(string: "x"))
            let seen = try await services.proxy.requests(matching: "^/\(bucket)/skewed$")
            // Corrected once; a loaded machine may time the corrected PUT out and send it again (each then succeeds).
            #expect(seen.first?.error == "RequestTimeTooSkewed" && seen.count >= 2 && seen.dropFirst().allSatisfy { $0.error == nil }, "\(seen.map(\.error))")
        }
    }

    // MARK: - Secrets

    @Test func noSecretReachesALogLineOrAnError() async throws {
        try await TestBucket.with(services) { bucket in
            let logs = CapturedLogs()
            let client = services.s3Client(bucket: bucket, credentials: services.sessionCredentials, logger: logs.logger(level: .trace))
            try await services.proxy.inject([.init(method: "PUT", path: "^/\(bucket)/secretive$", action: .error, times: 1, status: 500, code: "InternalError")])
            try await client.putObject(key: "secretive", body: ByteBuffer(string: "x"))
            let url = try await client.presignedGetURL(key: "secretive", expiresIn: 60)
            let signature = String(url.split(separator: "=").last ?? "")
            var wrong = services.sessionCredentials
            wrong.secretAccessKey = "WRONG-" + UUID().uuidString
            var errors: [String] = []
            do {
                try await services.s3Client(bucket: bucket, credentials: wrong, logger: logs.logger(level: .trace)).putObject(key: "x", body: ByteBuffer(string: "x"))
            } catch {
                errors.append("\(error)")
            }
            let everything = logs.text + errors.joined()
            #expect(logs.lines.count >= 3)
            for secret in [services.sessionCredentials.secretAccessKey, services.sessionCredentials.sessionToken!, wrong.secretAccessKey, signature] {
                #expect(!everything.contains(secret))
            }
        }
    }

    // MARK: - Instance metadata

    @Test func instanceMetadataCredentialsSignRealRequestsAndAreRefreshedBeforeExpiry() async throws {
        try await TestBucket.with(services) { bucket in
            let environment = ["AWS_EC2_METADATA_SERVICE_ENDPOINT": services.instanceMetadataURL.absoluteString]
            let shift = ShiftedClock()
            let provider = InstanceMetadataCredentialsProvider(environment: environment, now: { shift.now })
            let credentials = try #require(try await provider.credentials())
            #expect(credentials.accessKeyId == services.sessionCredentials.accessKeyId)
            #expect(credentials.sessionToken == services.sessionCredentials.sessionToken)
            #expect(credentials.expiration != nil)
            _ = try await provider.credentials()
            #expect(await provider.fetchCount == 1)  // cached
            shift.advance(by: 16 * 60)  // the fake serves 20-minute credentials: now within the 5-minute margin
            _ = try await provider.credentials()
            #expect(await provider.fetchCount == 2)

            let client = S3Client(
                settings: services.s3Settings(bucket: bucket), bucket: bucket, credentials: provider,
                configuration: TestServices.clientConfiguration, logger: CapturedLogs().logger())
            try await client.putObject(key: "via-imds", body: ByteBuffer(string: "x"))
            #expect(try await client.getObject(key: "via-imds") == ByteBuffer(string: "x"))
        }
    }
}

/// A clock tests can move forward.
final class ShiftedClock: @unchecked Sendable {
    private let lock = NSLock()
    private var offset: TimeInterval = 0

    var now: Date {
        lock.lock()
        defer { lock.unlock() }
        return Date().addingTimeInterval(offset)
    }

    func advance(by seconds: TimeInterval) {
        lock.lock()
        offset += seconds
        lock.unlock()
    }
}
