import Foundation
import Subprocess
import Testing
import TenantBackup
import TenantBackupTesting

/// The executable itself, as an operator runs it: output lines and exit status.
@Suite struct DoctorCommandTests {
    let services: TestServices

    init() throws {
        services = try TestServices()
    }

    func run(_ arguments: [String], environment: [String: String]) async throws -> (status: TerminationStatus, output: String) {
        try await TestProcess.tenantBackup(arguments, environment)
    }

    @Test func doctorExitsZeroWithEveryLineTicked() async throws {
        try await TestDatabase.with(services) { database in
            try await TestBucket.with(services) { bucket in
                var environment = services.environment
                environment["PGDATABASE"] = database.name
                environment["AWS_STORAGE_BUCKET_NAME"] = bucket
                let (status, output) = try await run(["doctor"], environment: environment)
                #expect(status == .exited(0), "\(output)")
                #expect(output.components(separatedBy: "✔").count - 1 == 13, "\(output)")
                #expect(!output.contains("✘"))
            }
        }
    }

    @Test func doctorExitsNonZeroNamingTheFailingCheck() async throws {
        try await TestDatabase.with(services) { database in
            try await TestBucket.with(services) { bucket in
                var environment = services.environment
                environment["PGDATABASE"] = database.name
                environment["AWS_STORAGE_BUCKET_NAME"] = bucket
                environment["AWS_SECRET_ACCESS_KEY"] = "not-the-secret"
                let (status, output) = try await run(["doctor"], environment: environment)
                #expect(status == .exited(1))
                #expect(output.contains("✘ S3 bucket"))
                #expect(output.contains("SignatureDoesNotMatch"))
                #expect(!output.contains("not-the-secret"))
            }
        }
    }

    /// A signing key the first backup cannot create means unsigned manifests, which count as no backup: doctor
    /// says so before the first cycle.
    /// Under a regular file, in /proc (where root's permission bits say "writable" and nothing can be made),
    /// or a folder in the key's place: doctor says ✘ and names the setting.
    @Test(arguments: ["under a file", "in /proc", "a folder"])
    func aSigningKeyThatCannotBeCreatedFailsDoctor(place: String) async throws {
        try await TestDatabase.with(services) { database in
            try await TestBucket.with(services) { bucket in
                let file = TestProcess.temporaryFile("not-a-folder")
                try "a file".write(toFile: file, atomically: true, encoding: .utf8)
                let folder = TestProcess.temporaryFile("a-folder")
                try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
                defer {
                    try? FileManager.default.removeItem(atPath: file)
                    try? FileManager.default.removeItem(atPath: folder)
                }
                var environment = services.environment
                environment["PGDATABASE"] = database.name
                environment["AWS_STORAGE_BUCKET_NAME"] = bucket
                environment["TENANT_BACKUP_SIGNING_KEY_FILE"] =
                    switch place {
                    case "under a file": file + "/keys/signing.key"
                    case "in /proc": "/proc/tenant-backup-\(UUID().uuidString.prefix(8)).key"
                    default: folder
                    }
                let (status, output) = try await run(["doctor"], environment: environment)
                #expect(status == .exited(1), "\(output)")
                #expect(output.contains("✘ \(Doctor.signingCheck)"), "\(output)")
                #expect(output.contains("TENANT_BACKUP_SIGNING_KEY_FILE"), "\(output)")
                if place == "a folder" { #expect(output.contains("is a folder, not a key file"), "\(output)") }
            }
        }
    }

    @Test func doctorReadsAnEnvFile() async throws {
        try await TestDatabase.with(services) { database in
            try await TestBucket.with(services) { bucket in
                let envFile = FileManager.default.temporaryDirectory.appendingPathComponent("tb-\(UUID().uuidString).env")
                defer { try? FileManager.default.removeItem(at: envFile) }
                let text = """
                    # the old system's .env
                    AWS_ACCESS_KEY_ID=\(services.credentials.accessKeyId)
                    AWS_SECRET_ACCESS_KEY="\(services.credentials.secretAccessKey)"
                    AWS_STORAGE_BUCKET_NAME=\(bucket)
                    AWS_S3_REGION_NAME=\(services.region)
                    PGDATABASE=\(database.name)
                    """
                try text.write(to: envFile, atomically: true, encoding: .utf8)
                var environment = services.environment
                for name in ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_STORAGE_BUCKET_NAME", "PGDATABASE"] {
                    environment.removeValue(forKey: name)
                }
                let (status, output) = try await run(["doctor", "--env-file", envFile.path], environment: environment)
                #expect(status == .exited(0), "\(output)")
            }
        }
    }
}
