import Foundation
import TenantBackup

/// The throwaway signing key the dev services' environment names (`TENANT_BACKUP_SIGNING_KEY_FILE`): tests
/// that change a manifest on purpose re-sign it as the backup host would, and attackers' manifests are
/// written without it.
public enum TestSigning {
    public static func key(environment: [String: String] = ProcessInfo.processInfo.environment) throws -> SigningKey {
        guard let path = environment["TENANT_BACKUP_SIGNING_KEY_FILE"] else { throw TestServices.NotConfigured(variable: "TENANT_BACKUP_SIGNING_KEY_FILE") }
        return try SigningKey.loadOrCreate(path: path).key
    }

    /// `manifest` signed with the test key.
    public static func resign(_ manifest: BackupManifest) throws -> BackupManifest {
        try key().sign(manifest)
    }
}
