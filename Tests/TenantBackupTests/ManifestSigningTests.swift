import Crypto
import Foundation
import Testing

@testable import TenantBackup

/// Manifests signed by the backup host's key: a bucket writer can replace a manifest, not sign it.
@Suite struct ManifestSigningTests {
    static func manifest() -> BackupManifest {
        BackupManifest(
            area: "tenant", schema: "bienestar", key: "backups/bienestar/backup-sql-bienestar-2026-12-01-020000.sql.zst", bytes: 1234,
            sha256: String(repeating: "ab", count: 32), dumpBytes: 5678, compression: "zstd", encryption: nil, format: "plain",
            pgDumpVersion: "15.20", serverVersion: "15.20", toolVersion: "test", startedAt: Date(timeIntervalSince1970: 1_764_554_400),
            finishedAt: Date(timeIntervalSince1970: 1_764_554_401.75), sharedBackups: ["shared/public/backup-sql-public-2026-12-01-020000.sql.zst"],
            tableRowCounts: ["bienestar.patients": 40, "bienestar.\"odd=name\"": 1])
    }

    @Test func aSignedManifestVerifiesAfterItsJSONRoundTrip() throws {
        let key = SigningKey(Curve25519.Signing.PrivateKey())
        let signed = try key.sign(Self.manifest())
        let read = try BackupManifest.decode(signed.encoded())
        #expect(ManifestTrust(keys: [key.publicKey]).verdict(for: read) == .signed(keyId: key.publicKey.id))
    }

    @Test(arguments: ["bytes", "sha256", "key", "schema", "rows", "shared", "adopted"])
    func anyChangedFieldBreaksTheSignature(field: String) throws {
        let key = SigningKey(Curve25519.Signing.PrivateKey())
        var changed = try BackupManifest.decode(key.sign(Self.manifest()).encoded())
        switch field {
        case "bytes": changed.bytes += 1
        case "sha256": changed.sha256 = String(repeating: "cd", count: 32)
        case "key": changed.key = "backups/bienestar/backup-sql-bienestar-2026-12-01-030000.sql.zst"
        case "schema": changed.schema = "mindcare"
        case "rows": changed.tableRowCounts?["bienestar.patients"] = 41
        case "shared": changed.sharedBackups = []
        default: changed.adopted = true
        }
        #expect(ManifestTrust(keys: [key.publicKey]).verdict(for: changed) == .invalid(keyId: key.publicKey.id))
    }

    @Test func anotherKeysSignatureAndNoneAreNotTrusted() throws {
        let ours = SigningKey(Curve25519.Signing.PrivateKey())
        let theirs = SigningKey(Curve25519.Signing.PrivateKey())
        let trust = ManifestTrust(keys: [ours.publicKey])
        #expect(trust.verdict(for: try theirs.sign(Self.manifest())) == .unknownKey(keyId: theirs.publicKey.id))
        #expect(trust.verdict(for: Self.manifest()) == .unsigned)
        // A signature made by another key but labelled with ours.
        var forged = try theirs.sign(Self.manifest())
        forged.signature?.keyId = ours.publicKey.id
        #expect(trust.verdict(for: forged) == .invalid(keyId: ours.publicKey.id))
        // Rotation: both keys trusted at once.
        #expect(ManifestTrust(keys: [ours.publicKey, theirs.publicKey]).verdict(for: try theirs.sign(Self.manifest())).isTrusted)
    }

    @Test func theKeyFileIsCreatedOnceWith0600AndAPublicKeyThatParses() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("signing-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/state/signing.key"
        let (key, created) = try SigningKey.loadOrCreate(path: path)
        #expect(created)
        let attributes = try FileManager.default.attributesOfItem(atPath: path)
        #expect((attributes[.posixPermissions] as? Int) == 0o600)
        let (again, createdAgain) = try SigningKey.loadOrCreate(path: path)
        #expect(!createdAgain && again.publicKey == key.publicKey)
        #expect(TrustedKey(text: key.publicKey.description) == key.publicKey)
        chmod(path, 0o644)
        #expect(throws: SigningError.self) { try SigningKey.load(path: path) }
        #expect(TrustedKey(text: "ed25519:not-base64") == nil)
    }
}
