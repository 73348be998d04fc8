import Foundation
import Subprocess
import TenantBackup
import TenantBackupTesting
import Testing

#if canImport(System)
    import System
#else
    import SystemPackage
#endif

/// The pieces of systemd that can run without systemd as PID 1: the unit file checked by
/// `systemd-analyze`, and a real journald in a private mount namespace.
@Suite struct SystemdIntegrationTests {
    let services: TestServices

    init() throws {
        services = try TestServices()
    }

    static let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let unitPath = repositoryRoot.appendingPathComponent("systemd/tenant-backup.service").path

    /// Runs a program (argv, never a shell) and returns its exit status and stdout followed by stderr.
    static func run(_ executable: String, _ arguments: [String], environment: [String: String]? = nil) async throws -> (status: TerminationStatus, output: String) {
        try await TestProcess.run(executable, arguments, environment: environment)
    }

    // MARK: - The unit file

    /// `verify` in a throwaway root holding the unit, the built binary at the unit's path, `/bin/kill` and
    /// systemd's own units: it must print nothing at all (it only *warns* about mistakes such as an unknown
    /// `Type=`, and exits 0 anyway).
    @Test func theUnitVerifiesWithoutAWordWithTheBinaryAtItsPath() async throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("tb-root-\(UUID().uuidString.prefix(8))").path
        defer { try? FileManager.default.removeItem(atPath: root) }
        let manager = FileManager.default
        for folder in ["usr/local/bin", "bin", "etc/systemd/system", "usr/lib/systemd"] {
            try manager.createDirectory(atPath: "\(root)/\(folder)", withIntermediateDirectories: true)
        }
        try manager.copyItem(atPath: "/usr/lib/systemd/system", toPath: "\(root)/usr/lib/systemd/system")
        try manager.copyItem(atPath: DaemonProcess.executable, toPath: "\(root)/usr/local/bin/tenant-backup")
        try manager.copyItem(atPath: "/bin/kill", toPath: "\(root)/bin/kill")
        try manager.copyItem(atPath: Self.unitPath, toPath: "\(root)/etc/systemd/system/tenant-backup.service")

        let (status, output) = try await Self.run("/usr/bin/systemd-analyze", ["verify", "--root=\(root)", "tenant-backup.service"])
        #expect(status == .exited(0))
        #expect(output.isEmpty, "systemd-analyze verify printed:\n\(output)")
    }

    @Test func theUnitsExposureIsTwoOrLower() async throws {
        let (_, output) = try await Self.run("/usr/bin/systemd-analyze", ["security", "--offline=yes", "--no-pager", Self.unitPath])
        let marker = "Overall exposure level for tenant-backup.service: "
        let line = try #require(output.split(separator: "\n").first { $0.contains(marker) }, "\(output)")
        let exposure = try #require(Double(line.components(separatedBy: marker)[1].split(separator: " ")[0]))
        #expect(exposure <= 2.0, "\(output)")
    }

    @Test func theUnitValidatesBeforeItSignalsAReload() throws {
        let unit = try String(contentsOfFile: Self.unitPath, encoding: .utf8)
        let reloads = unit.split(separator: "\n").filter { $0.hasPrefix("ExecReload=") }
        #expect(reloads.count == 2)
        #expect(reloads.first?.contains("tenant-backup config check") == true)
        #expect(reloads.last?.contains("kill -HUP $MAINPID") == true)
        #expect(unit.contains("Type=notify\n"))
        #expect(unit.contains("WatchdogSec="))
    }

    // MARK: - journald

    /// A real systemd-journald in a private mount namespace (a tmpfs over /run), the daemon logging to it
    /// natively, and `journalctl --directory` reading the entries back by their structured fields.
    @Test func backupsAreJournalEntriesWithStructuredFields() async throws {
        try #require(getuid() == 0, "a private mount namespace needs root (as the dev services do)")
        try await TestDatabase.with(services) { database in
            try await TestBucket.with(services) { bucket in
                var environment = services.environment
                environment["PGDATABASE"] = database.name
                environment["AWS_STORAGE_BUCKET_NAME"] = bucket
                environment["TENANT_BACKUP_LOG_FORMAT"] = "journald"
                environment["TENANT_BACKUP_METRICS_LISTEN"] = "off"
                environment["TENANT_BACKUP_BINARY"] = DaemonProcess.executable
                let script = """
                    set -euo pipefail
                    mount -t tmpfs -o mode=0755 tmpfs /run
                    mkdir -p /run/systemd/journal /run/log/journal
                    /lib/systemd/systemd-journald &
                    journald=$!
                    trap 'kill $journald 2>/dev/null || true; wait $journald 2>/dev/null || true' EXIT
                    for _ in $(seq 100); do [[ -S /run/systemd/journal/socket ]] && break; sleep 0.05; done
                    "$TENANT_BACKUP_BINARY" run --once >/dev/null 2>&1 || echo "run --once exited $?" >&2
                    "$TENANT_BACKUP_BINARY" list --tenant bienestar >/dev/null 2>&1 || echo "list exited $?" >&2
                    journalctl --sync 2>/dev/null || sleep 1
                    journalctl --directory /run/log/journal/*/ --no-pager -o json SYSLOG_IDENTIFIER=tenant-backup
                    """
                let (status, output) = try await Self.run("/usr/bin/unshare", ["--mount", "--propagation", "private", "/bin/bash", "-c", script], environment: environment)
                #expect(status == .exited(0), "\(output.suffix(2000))")
                let entries = output.split(separator: "\n").compactMap { line in
                    (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any]
                }
                let done = entries.filter { ($0["MESSAGE"] as? String)?.hasPrefix("backup done") == true && $0["TENANT"] as? String == "bienestar" }
                try #require(done.count == 1, "entries: \(entries.compactMap { $0["MESSAGE"] as? String })")
                let entry = done[0]
                #expect((entry["S3_KEY"] as? String)?.hasPrefix("backups/bienestar/backup-sql-bienestar-") == true)
                #expect(Int(entry["BYTES"] as? String ?? "") ?? 0 > 0)
                #expect(Int(entry["DURATION_MS"] as? String ?? "") != nil)
                #expect((entry["CYCLE_ID"] as? String)?.count == 8)
                #expect(entry["PRIORITY"] as? String == "6")
                #expect((entry["CODE_FILE"] as? String)?.hasSuffix("SchemaBackup.swift") == true)
                #expect(entry["CODE_LINE"] != nil && entry["CODE_FUNC"] != nil)
                #expect(entry["_TRANSPORT"] as? String == "journal")
                // The quoted tenant's name arrives exactly, and one cycle id ties the cycle's entries together.
                #expect(entries.contains { $0["TENANT"] as? String == "Clínica \"Sur\"" && ($0["MESSAGE"] as? String)?.hasPrefix("backup done") == true })
                let cycleIds = Set(entries.compactMap { $0["CYCLE_ID"] as? String })
                #expect(cycleIds.count == 1)
                #expect(entries.contains { ($0["MESSAGE"] as? String)?.hasPrefix("retention applied") == true && $0["TENANT"] as? String == "bienestar" })
                // An operator's access is an audit entry with its own fields.
                let audit = entries.filter { $0["AUDIT_ACTION"] as? String == "list" }
                try #require(audit.count == 1, "entries: \(entries.compactMap { $0["MESSAGE"] as? String })")
                #expect(audit[0]["TENANT"] as? String == "bienestar")
                #expect(audit[0]["AUDIT_ACTOR"] as? String == "root")
                #expect(audit[0]["AUDIT_OUTCOME"] as? String == "ok")
                #expect((audit[0]["AUDIT_ID"] as? String)?.count == 16)
            }
        }
    }
}
