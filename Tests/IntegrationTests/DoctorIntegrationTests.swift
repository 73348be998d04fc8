import Foundation
import Subprocess
import Testing
import TenantBackup
import TenantBackupTesting

/// `tenant-backup doctor` against the real services: all green, then each way it must turn red.
@Suite struct DoctorIntegrationTests {
    let services: TestServices

    init() throws {
        services = try TestServices()
    }

    /// The environment an operator would have: PG* from the services, a database and bucket of this test.
    func environment(database: TestDatabase, bucket: String, overrides: [String: String] = [:]) -> [String: String] {
        var environment = services.environment
        environment["PGDATABASE"] = database.name
        environment["AWS_STORAGE_BUCKET_NAME"] = bucket
        for (key, value) in overrides { environment[key] = value }
        return environment
    }

    func runDoctor(_ environment: [String: String], logs: CapturedLogs = CapturedLogs()) async -> DoctorReport {
        let loader = SettingsLoader(environment: environment, defaultConfigPath: "/nonexistent/config.yaml")
        return await Doctor(loader: loader, configFile: nil, logger: logs.logger()).run()
    }

    @Test func everyCheckPassesAgainstTheDevServices() async throws {
        try await TestDatabase.with(services) { database in
            try await TestBucket.with(services) { bucket in
                let report = await runDoctor(environment(database: database, bucket: bucket))
                #expect(report.checks.map(\.name) == [
                    Doctor.configurationCheck, Doctor.postgresCheck, Doctor.pgDumpCheck, Doctor.tenantsCheck,
                    Doctor.bucketCheck, Doctor.roundTripCheck,
                    S3StoreProbe.encryption, S3StoreProbe.conditionalPut, S3StoreProbe.awsChunked, S3StoreProbe.conditionalComplete, S3StoreProbe.multiDelete,
                    Doctor.signingCheck, Doctor.leftoversCheck,
                ])
                for check in report.checks {
                    #expect(check.outcome == .passed, "\(check.name): \(check.detail)")
                }
                #expect(report.check(named: Doctor.tenantsCheck)?.detail.contains("3 tenants") == true)
                // The probe object is gone afterwards.
                let left = try await services.s3Client(bucket: bucket).listKeys(prefix: "")
                #expect(left.isEmpty)
            }
        }
    }

    @Test func aWrongSecretFailsTheBucketCheckWithTheProxysVerdict() async throws {
        try await TestDatabase.with(services) { database in
            try await TestBucket.with(services) { bucket in
                let wrongSecret = "wrong-" + UUID().uuidString
                let logs = CapturedLogs()
                let report = await runDoctor(
                    environment(database: database, bucket: bucket, overrides: ["AWS_SECRET_ACCESS_KEY": wrongSecret]), logs: logs)
                let check = try #require(report.check(named: Doctor.bucketCheck))
                #expect(check.outcome == .failed)
                #expect(check.detail.contains("SignatureDoesNotMatch"))
                #expect(check.detail.contains(bucket))
                #expect(report.check(named: Doctor.roundTripCheck)?.outcome == .skipped)
                #expect(!report.allPassed)
                // Neither the wrong secret nor the real one appears anywhere.
                let everything = report.checks.map { "\($0.detail) \($0.hint ?? "")" }.joined() + logs.text
                #expect(!everything.contains(wrongSecret))
                #expect(!everything.contains(services.credentials.secretAccessKey))
            }
        }
    }

    @Test func anUnreachableDatabaseFailsThePostgresCheck() async throws {
        try await TestBucket.with(services) { bucket in
            var environment = services.environment
            environment["PGPORT"] = "1"  // nothing listens on port 1
            environment["AWS_STORAGE_BUCKET_NAME"] = bucket
            let loader = SettingsLoader(environment: environment, defaultConfigPath: "/nonexistent/config.yaml")
            let report = await Doctor(loader: loader, configFile: nil, logger: CapturedLogs().logger()).run()
            #expect(!report.allPassed)
            let postgres = try #require(report.check(named: Doctor.postgresCheck))
            #expect(postgres.outcome == .failed)
            #expect(postgres.detail.contains(":1/"))
            #expect(report.check(named: Doctor.tenantsCheck)?.outcome == .skipped)
            #expect(report.check(named: Doctor.roundTripCheck)?.outcome == .passed)
        }
    }

    @Test func aBadConfigurationFailsFirstAndSkipsTheRest() async throws {
        let report = await runDoctorWith(["AWS_ENDPOINT_URL_S3": "not a url", "AWS_STORAGE_BUCKET_NAME": "b"])
        #expect(report.checks.first?.outcome == .failed)
        #expect(report.checks.dropFirst().allSatisfy { $0.outcome == .skipped })
    }

    func runDoctorWith(_ overrides: [String: String]) async -> DoctorReport {
        var environment = services.environment
        for (key, value) in overrides { environment[key] = value }
        return await runDoctor(environment)
    }
}
