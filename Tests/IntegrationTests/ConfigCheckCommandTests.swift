import Foundation
import Subprocess
import Testing
import TenantBackup
import TenantBackupTesting

/// `tenant-backup config check`, as `ExecReload=` runs it.
@Suite struct ConfigCheckCommandTests {
    func file(_ text: String) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("tb-config-\(UUID().uuidString).yaml").path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @Test func aValidFileExitsZero() async throws {
        let path = try file("s3:\n  bucket: clinic-backups\nretention:\n  keep_daily: 10\n")
        defer { try? FileManager.default.removeItem(atPath: path) }
        let (status, output) = try await TestProcess.tenantBackup(["config", "check", "--config", path], ["PATH": "/usr/bin:/bin"])
        #expect(status == .exited(0), "\(output)")
        #expect(output.contains("configuration OK"))
    }

    /// `config settings` lists the settings table: every setting, with its variables and its reload effect.
    @Test func theSettingsCommandListsEverySetting() async throws {
        let (status, output) = try await TestProcess.tenantBackup(["config", "settings"], ["PATH": "/usr/bin:/bin"])
        #expect(status == .exited(0), "\(output)")
        let lines = output.split(separator: "\n").map(String.init)
        #expect(lines.count == SettingDefinition.all.count, "\(output)")
        for definition in SettingDefinition.all {
            #expect(lines.contains { $0.hasPrefix(definition.key + " ") && $0.contains("(\(definition.reload.rawValue))") && definition.environment.allSatisfy($0.contains) }, "\(definition.key)")
        }
        #expect(lines.contains { $0.hasPrefix("api.listen [TENANT_BACKUP_API_LISTEN] (restart)") }, "\(output)")
        #expect(lines.contains { $0.hasPrefix("postgres.url [TENANT_BACKUP_DATABASE_URL, DATABASE_URL, credential database-url] (live)") }, "\(output)")
        #expect(lines.contains { $0.hasPrefix("s3.secret_access_key [AWS_SECRET_ACCESS_KEY, credential s3-secret-access-key] (live)") }, "\(output)")
    }

    @Test func anInvalidFileExitsSeventyEightNamingTheLine() async throws {
        let path = try file("s3:\n  bucket: clinic-backups\nretention:\n  keep_dialy: 10\n")
        defer { try? FileManager.default.removeItem(atPath: path) }
        let (status, output) = try await TestProcess.tenantBackup(["config", "check", "--config", path], ["PATH": "/usr/bin:/bin"])
        #expect(status == .exited(78))
        #expect(output.contains("\(path):4:3"), "\(output)")
        #expect(output.contains("keep_dialy"))
    }

    /// Issue 10, point 3: these used to be a Swift arithmetic overflow (exit 132).
    @Test(arguments: ["backup:\n  part_size: 9000000000000000000KiB\n", "backup:\n  dump_timeout: 9223372036854775807d\n",
                      "backup:\n  compression_level: 99999999999999\n"])
    func anOverflowingNumberIsAnErrorNotACrash(yaml: String) async throws {
        let path = try file(yaml)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let (status, output) = try await TestProcess.tenantBackup(["config", "check", "--config", path], ["PATH": "/usr/bin:/bin"])
        #expect(status == .exited(78), "\(output)")
        #expect(output.contains("\(path):2:"), "\(output)")
    }

    /// Also issue 10: `run` with a bad config exited 64 with a usage hint, where `config check` exits 78.
    @Test(arguments: [["run"], ["run", "--once"], ["backup"], ["prune", "--dry-run"]])
    func everyCommandExitsSeventyEightOnAnInvalidConfiguration(arguments: [String]) async throws {
        let path = try file("retention:\n  keep_dialy: 10\n")
        defer { try? FileManager.default.removeItem(atPath: path) }
        let (status, output) = try await TestProcess.tenantBackup(arguments + ["--config", path], ["PATH": "/usr/bin:/bin"])
        #expect(status == .exited(78), "\(output)")
        #expect(output.contains("\(path):2:3") && !output.contains("Usage:"), "\(output)")
    }

    /// Also issue 10: a binary file was reported as "check the path and its permissions".
    @Test func aBinaryConfigFileIsSaidToBeNotText() async throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("tb-config-\(UUID().uuidString).yaml").path
        try Data([0x7F, 0x45, 0x4C, 0x46, 0x02, 0x01, 0x00, 0xFF, 0xFE, 0x00]).write(to: URL(fileURLWithPath: path))
        defer { try? FileManager.default.removeItem(atPath: path) }
        let (status, output) = try await TestProcess.tenantBackup(["config", "check", "--config", path], ["PATH": "/usr/bin:/bin"])
        #expect(status == .exited(78))
        #expect(output.contains("is not a text file") && !output.contains("permissions"), "\(output)")
    }
}
