import Foundation
import Testing

@testable import TenantBackup

@Suite struct SettingsLoaderTests {
    func loader(_ environment: [String: String]) -> SettingsLoader {
        SettingsLoader(environment: environment, defaultConfigPath: "/nonexistent/tenant-backup.yaml")
    }

    @Test func theOldSystemsEnvNamesAreEnough() throws {
        let settings = try loader([
            "AWS_ACCESS_KEY_ID": "AKID", "AWS_SECRET_ACCESS_KEY": "secret",
            "AWS_STORAGE_BUCKET_NAME": "clinic-backups", "AWS_S3_REGION_NAME": "eu-west-3",
        ]).load()
        #expect(settings.s3.bucket == "clinic-backups")
        #expect(settings.s3.region == "eu-west-3")
        #expect(settings.s3.credentials == S3Credentials(accessKeyId: "AKID", secretAccessKey: "secret"))
        #expect(settings.s3.endpoint == nil)
        #expect(settings.tenants.sharedSchemas == ["public"])
        #expect(settings.postgres.connectionString == nil)
    }

    @Test func ourOwnVariablesWinOverTheGenericOnes() throws {
        let settings = try loader([
            "AWS_STORAGE_BUCKET_NAME": "old", "TENANT_BACKUP_S3_BUCKET": "new",
            "AWS_REGION": "us-west-2", "AWS_S3_REGION_NAME": "eu-west-1",
            "AWS_ENDPOINT_URL": "http://generic:9000", "AWS_ENDPOINT_URL_S3": "http://127.0.0.1:9000",
            "DATABASE_URL": "postgresql://u@db/app",
            "TENANT_BACKUP_INCLUDE": "clinic_*, bienestar", "TENANT_BACKUP_EXCLUDE": "demo",
            "TENANT_BACKUP_S3_PREFIX": "prod",
        ]).load()
        #expect(settings.s3.bucket == "new")
        #expect(settings.s3.region == "eu-west-1")
        #expect(settings.s3.endpoint?.absoluteString == "http://127.0.0.1:9000")
        #expect(settings.postgres.connectionString == "postgresql://u@db/app")
        #expect(settings.tenants.include == ["clinic_*", "bienestar"])
        #expect(settings.tenants.exclude == ["demo"])
        #expect(settings.s3.prefix == "prod/")
    }

    @Test func halfOfAKeyPairIsAnError() {
        #expect(throws: ConfigError.environment(variable: "AWS_SECRET_ACCESS_KEY", message: "is not set while AWS_ACCESS_KEY_ID is; set both or neither")) {
            try loader(["AWS_ACCESS_KEY_ID": "AKID"]).load()
        }
    }

    @Test func aYAMLFileIsReadAndTheEnvironmentOverridesIt() throws {
        let yaml = """
            postgres:
              pg_dump: /opt/pg/bin/pg_dump
            tenants:
              query: SELECT schema_name FROM public.tenants_clinic
              exclude: [demo]
            s3:
              bucket: from-file
              region: eu-south-2
              prefix: /clinics/
              addressing_style: path
            """
        let settings = try loader(["TENANT_BACKUP_S3_BUCKET": "from-env"]).load(yaml: yaml)
        #expect(settings.postgres.pgDumpPath == "/opt/pg/bin/pg_dump")
        #expect(settings.tenants.query == "SELECT schema_name FROM public.tenants_clinic")
        #expect(settings.tenants.exclude == ["demo"])
        #expect(settings.s3.bucket == "from-env")
        #expect(settings.s3.region == "eu-south-2")
        #expect(settings.s3.prefix == "clinics/")
        #expect(settings.s3.addressingStyle == .path)
    }

    @Test func retentionAndBackupSettingsAreRead() throws {
        let yaml = """
            backup:
              compression: gzip
              part_size: 16MiB
              no_output_timeout: 90s
            retention:
              keep_daily: 14
              keep_within: 2d
              time_zone: Europe/Madrid
              max_delete_fraction: 0.3
            """
        let settings = try loader([:]).load(yaml: yaml)
        #expect(settings.backup.compression == .gzip)
        #expect(settings.backup.partSize == 16 << 20)
        #expect(settings.backup.noOutputTimeout == .seconds(90))
        #expect(settings.retention.policy.keepDaily == 14)
        #expect(settings.retention.policy.keepWithin == .seconds(2 * 86400))
        #expect(settings.retention.policy.timeZone.identifier == "Europe/Madrid")
        #expect(settings.retention.maxDeleteFraction == 0.3)
        #expect(throws: ConfigError.self) { try loader([:]).load(yaml: "retention:\n  time_zone: Mars/Olympus\n") }
        #expect(throws: ConfigError.self) { try loader([:]).load(yaml: "retention:\n  max_delete_fraction: 2\n") }
    }

    @Test func anUnknownKeyIsReportedWithItsLineAndColumn() {
        let yaml = "s3:\n  bucket: b\n  buckett: typo\n"
        #expect {
            try loader([:]).load(yaml: yaml, path: "/etc/tenant-backup/config.yaml")
        } throws: { error in
            guard case .file(let path, 3, 3, let message) = error as? ConfigError else { return false }
            return path == "/etc/tenant-backup/config.yaml" && message.contains("unknown key 'buckett' in s3")
        }
    }

    @Test func aBadValueIsReportedWithItsLine() {
        #expect {
            try loader([:]).load(yaml: "s3:\n  addressing_style: sideways\n")
        } throws: { error in
            guard case .file(_, 2, _, let message) = error as? ConfigError else { return false }
            return message.contains("sideways")
        }
    }

    @Test func invalidYAMLIsReportedWithItsPlace() {
        #expect {
            try loader([:]).load(yaml: "s3:\n  bucket: [unclosed\n")
        } throws: { error in
            if case .file(_, let line, _, _) = error as? ConfigError { return line >= 2 }
            return false
        }
    }

    @Test func aBadEndpointNamesTheVariable() {
        #expect {
            try loader(["AWS_ENDPOINT_URL_S3": "127.0.0.1:9000"]).load()
        } throws: { error in
            if case .environment("AWS_ENDPOINT_URL_S3", _) = error as? ConfigError { return true }
            return false
        }
    }

    @Test func aMalformedIncludePatternIsRejected() {
        #expect(throws: ConfigError.self) { try loader(["TENANT_BACKUP_INCLUDE": "clinic_[ab"]).load() }
    }

    @Test func anExplicitConfigFileMustExist() {
        #expect {
            try loader([:]).load(configFile: "/nonexistent/config.yaml")
        } throws: { error in
            if case .unreadable("/nonexistent/config.yaml", _) = error as? ConfigError { return true }
            return false
        }
    }

    @Test func credentialsDirectoryProvidesSecrets() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("tb-creds-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        try "AKFROMFILE\n".write(to: directory.appendingPathComponent("s3-access-key-id"), atomically: true, encoding: .utf8)
        try "secret-from-file\n".write(to: directory.appendingPathComponent("s3-secret-access-key"), atomically: true, encoding: .utf8)
        try "postgresql://backup:pw@db/app".write(to: directory.appendingPathComponent("database-url"), atomically: true, encoding: .utf8)
        let settings = try loader(["CREDENTIALS_DIRECTORY": directory.path, "DATABASE_URL": "postgresql://other@db/app"]).load()
        #expect(settings.s3.credentials == S3Credentials(accessKeyId: "AKFROMFILE", secretAccessKey: "secret-from-file"))
        #expect(settings.postgres.connectionString == "postgresql://backup:pw@db/app")
        #expect(settings.postgres.redactedConnectionString == "postgresql://backup:***@db/app")
    }
}
