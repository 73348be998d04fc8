import Foundation
import TenantBackup
import TenantBackupTesting
import Testing

/// Issue 19, acceptance 4 (the moto half): a store that answers a bucket listing with 200 and something that
/// is not that listing — RGW without `rgw dns name`, asked in virtual-hosted style, sends its
/// ListAllMyBucketsResult — must never read as "no backups": `list`, `prune` and `doctor` fail, naming the
/// answer and the path-style setting, and nothing is deleted.
@Suite struct ListingNotAListingTests {
    let services: TestServices

    init() throws {
        services = try TestServices()
    }

    @Test func aListAllMyBucketsAnswerIsAnErrorNeverAnEmptyListing() async throws {
        try await TestDatabase.with(services) { database in
            try await TestBucket.with(services) { bucket in
                let environment = services.commandEnvironment(database: database, bucket: bucket)
                let (backupStatus, backupOutput) = try await TestProcess.tenantBackup(["backup"], environment)
                try #require(backupStatus == .exited(0), "\(backupOutput)")
                let before = try await services.s3Client(bucket: bucket).list(prefix: "", limit: nil).map(\.key)
                let buckets = """
                    <?xml version="1.0" encoding="UTF-8"?>
                    <ListAllMyBucketsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Owner><ID>rgw</ID></Owner>\
                    <Buckets><Bucket><Name>\(bucket)</Name><CreationDate>2026-12-01T00:00:00.000Z</CreationDate></Bucket></Buckets></ListAllMyBucketsResult>
                    """
                try await services.proxy.inject([
                    .init(method: "GET", path: "^/\(bucket)/?$", query: "list-type=2", action: .respond, times: 40, status: 200, body: buckets),
                    .init(method: "GET", path: "^/\(bucket)/?$", query: "uploads", action: .respond, times: 40, status: 200, body: buckets),
                ])
                for arguments in [["list", "--tenant", "bienestar"], ["list"], ["prune", "--tenant", "bienestar", "--force"], ["prune", "--force"], ["doctor"]] {
                    let (status, output) = try await TestProcess.tenantBackup(arguments, environment)
                    #expect(status != .exited(0), "\(arguments.joined(separator: " ")) read the answer as a listing: \(output)")
                    #expect(output.contains("ListAllMyBucketsResult") && output.contains("ListBucketResult"), "\(arguments.joined(separator: " ")): \(output)")
                    #expect(!output.contains("0 backup(s)"), "\(output)")
                }
                let after = try await services.attackerClient(bucket: bucket).list(prefix: "", limit: nil).map(\.key)
                #expect(Set(before).isSubset(of: Set(after)))
                // Use up what is left of the rules (they hit this bucket only), so the bucket can be emptied.
                let client = services.s3Client(bucket: bucket)
                var left = 80
                while left > 0, (try? await client.listKeys(prefix: "")) == nil { left -= 1 }
                left = 80
                while left > 0, (try? await client.incompleteUploads(prefix: "")) == nil { left -= 1 }
            }
        }
    }

    /// A ListBucketResult that names no bucket (found by the adversarial run: it read as an empty listing) is not
    /// a listing of this bucket: S3 and every compatible store name it.
    @Test func aListingThatNamesNoBucketIsAnError() async throws {
        try await TestBucket.with(services) { bucket in
            let client = services.s3Client(bucket: bucket)
            try await client.create(key: "backups/bienestar/x", body: .init(string: "x"), contentType: "text/plain")
            let nameless = """
                <?xml version="1.0" encoding="UTF-8"?>
                <ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><KeyCount>0</KeyCount><IsTruncated>false</IsTruncated></ListBucketResult>
                """
            try await services.proxy.inject([.init(method: "GET", path: "^/\(bucket)/?$", query: "list-type=2", action: .respond, times: 1, status: 200, body: nameless)])
            do {
                let listed = try await client.list(prefix: "backups/", limit: nil)
                Issue.record("a listing naming no bucket was read as \(listed.count) object(s)")
            } catch {
                #expect("\(error)".contains("names no bucket"), "\(error)")
            }
            #expect(try await client.list(prefix: "backups/", limit: nil).map(\.key) == ["backups/bienestar/x"])
        }
    }

    /// A store that answers every page as truncated with the same continuation token (or marker) would be
    /// listed without end, holding the tenant's lock (found by the adversarial run: 219 requests in 10 s): the
    /// second time a token comes back is an error; so is a truncated uploads page that names no next marker.
    @Test func aListingThatRepeatsItsContinuationTokenEnds() async throws {
        try await TestBucket.with(services) { bucket in
            let client = services.s3Client(bucket: bucket)
            let looping = """
                <?xml version="1.0" encoding="UTF-8"?>
                <ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>\(bucket)</Name><KeyCount>0</KeyCount>\
                <IsTruncated>true</IsTruncated><NextContinuationToken>abc</NextContinuationToken></ListBucketResult>
                """
            let uploadsLooping = """
                <?xml version="1.0" encoding="UTF-8"?>
                <ListMultipartUploadsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Bucket>\(bucket)</Bucket>\
                <IsTruncated>true</IsTruncated><NextKeyMarker>k</NextKeyMarker><NextUploadIdMarker>u</NextUploadIdMarker></ListMultipartUploadsResult>
                """
            let uploadsNoMarker = """
                <?xml version="1.0" encoding="UTF-8"?>
                <ListMultipartUploadsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Bucket>\(bucket)</Bucket>\
                <IsTruncated>true</IsTruncated></ListMultipartUploadsResult>
                """
            try await services.proxy.inject([.init(method: "GET", path: "^/\(bucket)/?$", query: "list-type=2", action: .respond, times: 3, status: 200, body: looping)])
            let looped = await #expect(throws: S3Error.self) { try await client.list(prefix: "backups/", limit: nil) }
            #expect(looped?.description.contains("same continuation token twice") == true, "\(String(describing: looped))")
            let pages = try await services.proxy.requests(matching: "^/\(bucket)/?$").filter { $0.query.contains("list-type=2") }
            #expect(pages.count == 2, "\(pages.count) pages asked for")
            try await services.proxy.inject([.init(method: "GET", path: "^/\(bucket)/?$", query: "uploads", action: .respond, times: 3, status: 200, body: uploadsLooping)])
            let loopedUploads = await #expect(throws: S3Error.self) { try await client.incompleteUploads(prefix: "backups/") }
            #expect(loopedUploads?.description.contains("same next marker") == true, "\(String(describing: loopedUploads))")
            try await services.proxy.inject([.init(method: "GET", path: "^/\(bucket)/?$", query: "uploads", action: .respond, times: 1, status: 200, body: uploadsNoMarker)])
            let unmarked = await #expect(throws: S3Error.self) { try await client.incompleteUploads(prefix: "backups/") }
            #expect(unmarked?.description.contains("without NextKeyMarker") == true, "\(String(describing: unmarked))")
            // Use up the rules' rest (this bucket only), so the bucket can be emptied.
            for _ in 0..<3 { _ = try? await client.listKeys(prefix: ""); _ = try? await client.incompleteUploads(prefix: "") }
        }
    }
}

/// Issue 19, acceptance 7: a download's audit record is stored before the first byte of the object is asked
/// for: with the trail refused, the store never sees a GET of the object.
@Suite struct AuditBeforeReadTests {
    let services: TestServices

    init() throws {
        services = try TestServices()
    }

    @Test func withTheAuditTrailRefusedNoDownloadReadsTheObject() async throws {
        try await TestDatabase.with(services) { database in
            try await TestBucket.with(services) { bucket in
                let environment = services.commandEnvironment(database: database, bucket: bucket)
                let (backupStatus, backupOutput) = try await TestProcess.tenantBackup(["backup", "--tenant", "bienestar"], environment)
                try #require(backupStatus == .exited(0), "\(backupOutput)")
                let key = try #require(try await services.s3Client(bucket: bucket).listKeys(prefix: "backups/bienestar/").first { !$0.hasSuffix(".json") })
                try await services.proxy.inject([
                    .init(method: "PUT", path: "^/\(bucket)/audit/", action: .error, times: 0, status: 403, code: "AccessDenied")
                ])
                let directory = FileManager.default.temporaryDirectory.appendingPathComponent("tb-audit-\(UUID().uuidString.prefix(8))").path
                try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
                defer { try? FileManager.default.removeItem(atPath: directory) }
                for arguments in [["download", "--tenant", "bienestar", key, "-o", directory + "/b.sql.zst"], ["download", "--tenant", "bienestar", key, "-o", "-"]] {
                    let (status, output) = try await TestProcess.tenantBackup(arguments, environment)
                    #expect(status != .exited(0) && output.contains("audit record could not be stored"), "\(arguments): \(output)")
                }
                let reads = try await services.proxy.requests(matching: "^/\(bucket)/\(key)$").filter { $0.method == "GET" }
                #expect(reads.isEmpty, "the object was read though its download could not be audited: \(reads.count) GETs")
                #expect(try FileManager.default.contentsOfDirectory(atPath: directory).isEmpty)
            }
        }
    }
}
