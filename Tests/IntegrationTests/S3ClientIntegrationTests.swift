import Foundation
import NIOCore
import Testing
import TenantBackup
import TenantBackupTesting

/// Our signer and key encoding, judged by the verifying proxy (botocore's signatures) in front of moto.
@Suite struct S3ClientIntegrationTests {
    let services: TestServices

    init() throws {
        services = try TestServices()
    }

    @Test(arguments: [
        "backups/bienestar/backup-sql-bienestar-2026-11-29-021500.sql.zst",
        "backups/Cl%C3%ADnica%20%22Sur%22/backup.sql",
        "keys with spaces/and+plus=equals%percent~tilde",
        "unicode/Clínica \"Sur\"/ñandú.sql",
        "semi;colon,comma&amp?question#hash",
    ])
    func putGetDeleteRoundTripsAnyKey(key: String) async throws {
        try await TestBucket.with(services) { bucket in
            let client = services.s3Client(bucket: bucket)
            let body = ByteBuffer(bytes: (0..<4096).map { UInt8(truncatingIfNeeded: $0 &* 31) })
            try await client.putObject(key: key, body: body)
            #expect(try await client.getObject(key: key) == body)
            #expect(try await client.listKeys(prefix: "") == [key])
            try await client.deleteObject(key: key)
            #expect(try await client.listKeys(prefix: "").isEmpty)
        }
    }

    @Test func listingAPrefixNeverMatchesALongerTenantName() async throws {
        try await TestBucket.with(services) { bucket in
            let client = services.s3Client(bucket: bucket)
            for key in ["backups/clinic/a", "backups/clinic2/b", "backups/clinic/c"] {
                try await client.putObject(key: key, body: ByteBuffer(string: key))
            }
            #expect(try await client.listKeys(prefix: "backups/clinic/") == ["backups/clinic/a", "backups/clinic/c"])
        }
    }

    @Test func sessionCredentialsAreAccepted() async throws {
        try await TestBucket.with(services) { bucket in
            let client = services.s3Client(bucket: bucket, credentials: services.sessionCredentials)
            try await client.putObject(key: "token", body: ByteBuffer(string: "x"))
            #expect(try await client.getObject(key: "token") == ByteBuffer(string: "x"))
        }
    }

    @Test func aWrongSecretIsATypedSignatureError() async throws {
        try await TestBucket.with(services) { bucket in
            var wrong = services.credentials
            wrong.secretAccessKey += "x"
            let client = services.s3Client(bucket: bucket, credentials: wrong)
            await #expect {
                try await client.putObject(key: "k", body: ByteBuffer(string: "x"))
            } throws: { error in
                guard let error = error as? S3Error else { return false }
                return error.code == "SignatureDoesNotMatch" && error.status == 403 && error.key == "k"
                    && !error.description.contains(wrong.secretAccessKey)
            }
        }
    }

    @Test func aMissingKeyIsNoSuchKey() async throws {
        try await TestBucket.with(services) { bucket in
            await #expect {
                try await services.s3Client(bucket: bucket).getObject(key: "absent")
            } throws: { error in
                (error as? S3Error)?.code == "NoSuchKey"
            }
        }
    }
}
