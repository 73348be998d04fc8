import Crypto
import Foundation
import Testing

@testable import TenantBackup

/// Issue 17: the settings restore and signing read, and the format that could not be restored is gone.
@Suite struct RestoreSettingsTests {
    func load(_ yaml: String, environment: [String: String] = [:]) throws(ConfigError) -> Settings {
        try SettingsLoader(environment: environment, defaultConfigPath: "/nonexistent/tenant-backup.yaml").load(yaml: yaml)
    }

    @Test func theCustomFormatIsRefusedWithItsPlace() {
        #expect(throws: ConfigError.self) { try load("backup:\n  format: custom\n") }
        do {
            _ = try load("backup:\n  format: custom\n")
        } catch {
            #expect(error.description.contains("config.yaml:2:11") && error.description.contains("remove the setting"), "\(error)")
        }
        #expect((try? load("backup:\n  format: plain\n")) != nil)
    }

    @Test func spoolAndSigningSettingsComeFromTheFileAndTheEnvironment() throws {
        let key = SigningKey(.init()).publicKey.description
        let settings = try load(
            "restore:\n  spool_directory: /var/cache/tb\n  spool_limit: 2GiB\nsigning:\n  key_file: /etc/tb/key\n  public_keys: [\"\(key)\"]\n")
        #expect(settings.restore.spoolDirectory == "/var/cache/tb" && settings.restore.spoolLimit == 2 << 30)
        #expect(settings.signing.keyFile == "/etc/tb/key" && settings.signing.publicKeys == [key])
        let overridden = try load("", environment: ["TENANT_BACKUP_SPOOL_LIMIT": "500MiB", "TENANT_BACKUP_SIGNING_PUBLIC_KEYS": key])
        #expect(overridden.restore.spoolLimit == 500 << 20 && overridden.signing.publicKeys == [key])
        #expect(throws: ConfigError.self) { try load("signing:\n  public_keys: [\"ed25519:nope\"]\n") }
        #expect(throws: ConfigError.self) { try load("restore:\n  spool_limit: lots\n") }
    }

    @Test func theDefaultKeyAndSpoolPlacesFollowSystemd() {
        #expect(SigningSettings.defaultKeyFile(environment: ["STATE_DIRECTORY": "/var/lib/tenant-backup", "HOME": "/root"]) == "/var/lib/tenant-backup/signing.key")
        #expect(RestoreSettings().resolvedSpoolDirectory(environment: ["CACHE_DIRECTORY": "/var/cache/tenant-backup", "RUNTIME_DIRECTORY": "/run/x"]) == "/var/cache/tenant-backup")
        #expect(RestoreSettings().resolvedSpoolDirectory(environment: ["TMPDIR": "/scratch"]) == "/scratch")
    }
}
