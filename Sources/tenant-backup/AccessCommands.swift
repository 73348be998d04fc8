import ArgumentParser
import Foundation
import TenantBackup

/// What the access commands share: the tenant, the settings, and the way an ``AccessError`` becomes a line
/// on stderr with the CLI's own advice and exit status 1.
struct AccessOptions: ParsableArguments {
    @OptionGroup var global: GlobalOptions

    /// The operations, as the local user.
    func access() throws -> BackupAccess {
        let environment = try global.environment()
        let settings = try global.settings(environment: environment)
        let logger = global.logger(settings: settings)
        return BackupAccess(context: BackupContext(settings: settings, environment: environment, logger: logger), actor: Self.localUser(environment))
    }

    /// `alice`, or `root (sudo by alice)`: the actor of the CLI's audit records.
    static func localUser(_ environment: [String: String]) -> String {
        let name = getpwuid(geteuid()).flatMap { $0.pointee.pw_name.map { String(cString: $0) } } ?? "uid \(geteuid())"
        if let sudo = environment["SUDO_USER"], !sudo.isEmpty, sudo != name { return "\(name) (sudo by \(sudo))" }
        return name
    }
}

/// Runs an access; an ``AccessError`` is printed with the CLI's advice and exits 1.
func accessing<T>(_ body: () async throws(AccessError) -> T) async throws -> T {
    do {
        return try await body()
    } catch {
        var line = "error: \(error)"
        switch error.kind {
        case .protectedBackup: line += "; pass --force to delete it anyway"
        case .invalidKey, .foreignKey, .noSuchBackup: line += " (tenant-backup list --tenant NAME shows its backups)"
        case .output(let message) where message.hasSuffix("choose another name"): line += " (or pass --force to replace it)"
        default: break
        }
        FileHandle.standardError.write(Data((line + "\n").utf8))
        throw ExitCode(1)
    }
}

func printJSON(_ object: Any) throws {
    let data = try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
    print(String(decoding: data, as: UTF8.self))
}

/// Prints one of the old API's answers (the same type the HTTP API sends), pretty-printed.
func printJSON(_ value: some Encodable) throws {
    print(String(decoding: try OldAPI.encoded(value, pretty: true), as: UTF8.self))
}

func mebibytes(_ bytes: Int64) -> String { String(format: "%.1f MiB", Double(bytes) / 1_048_576) }

/// `--tenant NAME (KEY | --latest)`: which backup a command is about.
struct BackupChoice: ParsableArguments {
    @Option(help: ArgumentHelp("The tenant (exact schema name).", valueName: "name"))
    var tenant: String

    @Argument(help: ArgumentHelp("The backup: its key or file name.", valueName: "key"))
    var key: String?

    @Flag(help: "The tenant's newest backup that a signed manifest vouches for (an unsigned newer object is passed over, with a warning).")
    var latest = false

    func validate() throws {
        if tenant.isEmpty { throw ValidationError("--tenant must name a tenant") }
        if key == nil, !latest { throw ValidationError("name a backup: its key or file name, or --latest") }
        if key != nil, latest { throw ValidationError("give a key or --latest, not both") }
    }

    var reference: BackupReference { key.map { .key($0) } ?? .latest }
}

struct ListCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list",
        abstract: "List one tenant's backups, or every tenant at a glance.",
        discussion: """
            With --tenant: the tenant's backups, newest first, with size, time, storage class, whether a manifest \
            vouches for it, and the retention rule that keeps it (or "expires next prune"). --json prints the old \
            backup API's shape: {"count", "schema", "backups": [{"filename", "s3_key", "size", "last_modified", \
            "storage_class", "url"}]}, where url is the object's plain (unsigned) URL. Audited.

            Without --tenant: one line per tenant (backups, newest, total size, stale or not), including the \
            database's tenants with no backup and the bucket's folders whose tenant no longer exists.
            """)

    @OptionGroup var options: AccessOptions

    @Option(help: ArgumentHelp("The tenant (exact schema name).", valueName: "name"))
    var tenant: String?

    @Flag(help: "Print JSON on stdout.")
    var json = false

    func validate() throws {
        if tenant?.isEmpty == true { throw ValidationError("--tenant must name a tenant") }
    }

    func run() async throws {
        let access = try options.access()
        if let tenant {
            let listing = try await accessing { () throws(AccessError) in try await access.list(tenant: tenant) }
            if json {
                try printJSON(listing.oldAPIAnswer)
                return
            }
            print("\(BackupSchema.tenant(tenant)): \(listing.backups.count) backup(s), newest first")
            for backup in listing.backups {
                var kept = backup.keptBy.isEmpty ? "expires next prune" : "kept: " + backup.keptBy.map(\.rawValue).joined(separator: ",")
                if let deletion = backup.deletion {
                    kept = "DELETED through the API by \(deletion.deletedBy) on \(BackupAccess.isoformat(deletion.deletedAt)), "
                        + "purged after \(BackupAccess.isoformat(deletion.purgeAfter)) (tenant-backup undelete brings it back)"
                }
                print(
                    "  \(backup.key.fileName)  \(mebibytes(backup.size))  \(BackupKey.format(backup.key.timestamp)) UTC  "
                        + "\(backup.storageClass ?? "STANDARD")  manifest \(backup.manifest == .matches ? "matches (key, size)" : backup.manifest.rawValue)"
                        + "\(backup.signature.map { ", \($0)" } ?? "")  \(kept)\(backup.mark.map { "  MARKED BAD (\($0))" } ?? "")")
            }
            return
        }
        let tenants = try await accessing { () throws(AccessError) in try await access.overview() }
        if json {
            try printJSON([
                "tenants": tenants.map { summary in
                    [
                        "tenant": summary.tenant, "backups": summary.backups, "newest": summary.newest.map { $0.key } ?? NSNull(),
                        "total_bytes": summary.totalBytes, "stale": summary.stale, "in_database": summary.inDatabase, "in_bucket": summary.inBucket,
                    ] as [String: Any]
                }
            ])
            return
        }
        for summary in tenants {
            var line = "\(BackupSchema.display(summary.tenant)): \(summary.backups) backup(s)"
            if let newest = summary.newest { line += ", newest \(BackupKey.format(newest.timestamp)) UTC" }
            line += ", \(mebibytes(summary.totalBytes))"
            line += summary.stale ? ", STALE" : ", fresh"
            if !summary.inDatabase { line += " — no such tenant in the database (an old clinic's folder?)" }
            if summary.backups == 0 { line += " — no backup at all" }
            print(line)
        }
    }
}

struct DownloadCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "download",
        abstract: "Download one backup, verified against its manifest while it streams.",
        discussion: """
            The object's size and SHA-256 are checked against its manifest as it streams. A file is written under \
            a temporary name beside the target and renamed only once the whole object verified, so a failed \
            download leaves no file. With -o - the bytes go to stdout as they arrive, and a mismatch found at the \
            end makes the exit status 1. --decompress writes the plain dump. Audited; when the audit record \
            cannot be stored, nothing is written.
            """)

    @OptionGroup var options: AccessOptions

    @OptionGroup var backup: BackupChoice

    @Option(name: [.short, .customLong("output")], help: ArgumentHelp("Where to write it (default: its file name here); - for stdout.", valueName: "file"))
    var output: String?

    @Flag(help: "Write the plain dump (decompressed).")
    var decompress = false

    @Flag(help: "Replace the output file when it exists.")
    var force = false

    /// `[#########...........]  45.0% 12.3 MiB` on stderr, redrawn in place.
    @Sendable static func progressBar(_ done: Int64, _ total: Int64) {
        let percent = total > 0 ? min(100, Double(done) * 100 / Double(total)) : 100
        let filled = Int(percent / 5)
        let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: 20 - filled)
        FileHandle.standardError.write(Data(String(format: "\r[%@] %5.1f%% %@", bar, percent, mebibytes(done)).utf8))
    }

    func validate() throws {
        if output?.isEmpty == true { throw ValidationError("-o needs a file name, or - for stdout") }
    }

    func run() async throws {
        let reference = backup.reference
        let tenant = backup.tenant
        let access = try options.access()
        let destination: BackupAccess.DownloadDestination
        var target: String?
        if output == "-" {
            destination = .stream { buffer in try FileHandle.standardOutput.write(contentsOf: buffer.readableBytesView) }
        } else {
            var path = output
            if path == nil {
                // Its own file name, as decoded when decompressed.
                let name: String
                if case .key(let given) = reference { name = String(given.split(separator: "/").last ?? "") } else { name = "" }
                guard !name.isEmpty else { throw ValidationError("with --latest, name the output file with -o") }
                path = decompress ? BackupFormat.decodedFileName(name) : name
            }
            target = path
            destination = .file(path: path!, overwrite: force)
        }
        let showProgress = output != "-" && isatty(STDERR_FILENO) == 1
        let progress: (@Sendable (Int64, Int64) -> Void)? = showProgress ? Self.progressBar : nil
        let decompress = self.decompress
        let download = try await interruptible(access) { () throws(AccessError) -> BackupAccess.Download in
            try await access.download(tenant: tenant, reference, to: destination, decompress: decompress, progress: progress)
        }
        if showProgress { FileHandle.standardError.write(Data("\n".utf8)) }
        let verdict =
            !download.verified ? "NOT verified: it has no manifest (tenant-backup adopt writes one)"
            : download.signed ? "verified against its signed manifest"
            : "matches its manifest, but NO trusted key signed that manifest: anyone who can write the bucket could have put both there"
        let line = "\(download.key): \(download.storedBytes) bytes, sha256 \(download.sha256), \(verdict)"
            + (target.map { " → \($0)" } ?? "")
        FileHandle.standardError.write(Data((line + "\n").utf8))
    }
}

struct DeleteCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "delete",
        abstract: "Delete one backup and its manifest.",
        discussion: """
            Under the tenant's advisory lock, so it never races a backup or a prune on any host. The tenant's \
            newest backup and its newest verified one are refused unless --force, as retention keeps them. Audited.
            """)

    @OptionGroup var options: AccessOptions

    @Option(help: ArgumentHelp("The tenant (exact schema name).", valueName: "name"))
    var tenant: String

    @Argument(help: ArgumentHelp("The backup: its key or file name.", valueName: "key"))
    var key: String

    @Flag(help: "Also delete the newest or newest verified backup.")
    var force = false

    func validate() throws {
        if tenant.isEmpty { throw ValidationError("--tenant must name a tenant") }
    }

    func run() async throws {
        let access = try options.access()
        let deletion = try await accessing { () throws(AccessError) in try await access.delete(tenant: tenant, key: key, force: force) }
        print("deleted \(deletion.deletedKeys.joined(separator: " and "))\(deletion.forced ? " (forced)" : "")")
    }
}

struct UndeleteCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "undelete",
        abstract: "Bring back a backup a clinic deleted through the API.",
        discussion: """
            A delete through the API is soft: the backup is hidden from the clinic and purged by retention once \
            api.delete_grace has passed. Until then, this removes its deletion mark: the clinic sees it again and \
            retention plans it like any other. list --tenant shows which backups are deleted and when each is \
            purged. Under the tenant's advisory lock. Audited.
            """)

    @OptionGroup var options: AccessOptions

    @Option(help: ArgumentHelp("The tenant (exact schema name).", valueName: "name"))
    var tenant: String

    @Argument(help: ArgumentHelp("The backup: its key or file name.", valueName: "key"))
    var key: String

    func validate() throws {
        if tenant.isEmpty { throw ValidationError("--tenant must name a tenant") }
    }

    func run() async throws {
        let access = try options.access()
        let mark = try await accessing { () throws(AccessError) in try await access.undelete(tenant: tenant, key: key) }
        print("brought back \(mark.key) (deleted through the API by \(mark.deletedBy) on \(BackupAccess.isoformat(mark.deletedAt)))")
    }
}

struct PresignCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "presign",
        abstract: "Print a presigned download URL for one backup.",
        discussion: """
            A SigV4 presigned GET, valid --expires seconds (1 to 604800, 7 days; default 3600). The URL lets anyone \
            who has it download the backup until it expires: share it as a secret. --json prints the old API's \
            shape: {"download_url", "s3_key", "expires_in_seconds", "filename"}. Audited.
            """)

    @OptionGroup var options: AccessOptions

    @OptionGroup var backup: BackupChoice

    @Option(parsing: .unconditional, help: ArgumentHelp("Seconds the URL stays valid (1 to 604800).", valueName: "seconds"))
    var expires = "3600"

    @Flag(help: "Print JSON on stdout.")
    var json = false

    func run() async throws {
        let reference = backup.reference
        let tenant = backup.tenant
        let expires = self.expires
        let seconds = try await accessing { () throws(AccessError) in try BackupAccess.expiry(expires, tenant: tenant) }
        let access = try options.access()
        let presigned = try await accessing { () throws(AccessError) in try await access.presign(tenant: tenant, reference, expiresIn: seconds) }
        if json {
            try printJSON(presigned.oldAPIAnswer)
        } else {
            print(presigned.url)
        }
    }
}

struct AuditCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "audit",
        abstract: "Show the audit trail of one tenant's backups, newest first.",
        discussion: """
            Every list, download, presign, delete, restore, verify and adopt of a tenant's backups, every backup \
            and every retention deletion is recorded before it takes effect (a download to a file: after it \
            verified, before the file appears), in the journal (AUDIT_ACTION=, AUDIT_ACTOR=, AUDIT_OUTCOME=, \
            TENANT=, S3_KEY=) and as an object under <prefix>audit/<tenant>/. When the record cannot be stored, \
            the access does not happen. A refused access is recorded too, and so is a check that fails. Records \
            older than audit.retention_days (400) go with the tenant's retention.
            """)

    @OptionGroup var options: AccessOptions

    @Option(help: ArgumentHelp("The tenant (exact schema name).", valueName: "name"))
    var tenant: String

    @Option(help: ArgumentHelp("Only records at or after this day (YYYY-MM-DD, UTC) or time (ISO 8601).", valueName: "date"))
    var since: String?

    @Option(help: ArgumentHelp("At most this many records (default 100).", valueName: "n"))
    var limit = 100

    @Flag(help: "Print JSON on stdout.")
    var json = false

    func validate() throws {
        if tenant.isEmpty { throw ValidationError("--tenant must name a tenant") }
        guard limit >= 1 else { throw ValidationError("--limit must be at least 1") }
        if let since, Self.date(since) == nil { throw ValidationError("--since \(since): give a day (2026-11-30) or an ISO 8601 time") }
    }

    static func date(_ text: String) -> Date? {
        let day = DateFormatter()
        day.locale = Locale(identifier: "en_US_POSIX")
        day.timeZone = TimeZone(identifier: "UTC")
        day.dateFormat = "yyyy-MM-dd"
        if let date = day.date(from: text) { return date }
        return AuditRecord.parseISO8601(text)
    }

    func run() async throws {
        let access = try options.access()
        let since = self.since.flatMap(Self.date)
        let records = try await accessing { () throws(AccessError) in try await access.auditRecords(tenant: tenant, since: since, limit: limit) }
        if json {
            try printJSON([
                "tenant": tenant,
                "records": records.map { record in
                    [
                        "id": record.id, "time": AuditRecord.iso8601(record.time), "action": record.action.rawValue, "tenant": record.tenant,
                        "key": record.key ?? NSNull(), "outcome": record.outcome.rawValue, "actor": record.actor, "detail": record.detail ?? NSNull(),
                    ] as [String: Any]
                },
            ])
            return
        }
        for record in records {
            var line = "\(AuditRecord.iso8601(record.time))  \(record.action.rawValue)  \(record.outcome.rawValue)  \(record.actor)"
            if let key = record.key { line += "  \(key)" }
            if let detail = record.detail { line += "  (\(detail))" }
            print(line)
        }
    }
}

struct RestoreCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "restore",
        abstract: "Restore one tenant's backup into a database, all or nothing.",
        discussion: """
            Nothing read from the bucket is applied before it is verified. The manifest must carry a signature of a \
            trusted key (the backup host's own, or signing.public_keys); each object is read whole into a private \
            spool (0600, restore.spool_directory) and checked against the manifest (size, SHA-256) and by a filter \
            that refuses what pg_dump never writes for one schema (psql meta-commands, COMMIT/ROLLBACK, DO, roles, \
            COPY ... PROGRAM, SET search_path, an incomplete dump). Only then is it fed, from the spool, to \
            psql -X -v ON_ERROR_STOP=1 under a \\restrict key of its own, as one transaction that checks before its \
            COMMIT that nothing outside the restored schemas changed: the whole backup is applied or nothing (a stop, \
            even a killed tenant-backup: psql's input ends before the COMMIT and the server rolls back). Unsigned or \
            manifest-less backups need --trust-unsigned. The --after-restore file is read by the same filter: SQL \
            statements only.

            Into the live database (it has the shared tables), the tenant's dump alone is applied: this is how one \
            clinic comes back after its schema was dropped. Into a database without the shared tables (a fresh one, \
            --create-database), the shared dumps the manifest names are applied first; they hold every clinic's \
            shared rows (staff accounts, the tenant table), so --with-shared-data is required, and --after-restore \
            FILE runs SQL in the same transaction before commit (only then: into a database that has the shared \
            tables it is refused), e.g. to keep only this clinic's rows:

              DELETE FROM public.tenants_clinic WHERE schema_name <> 'bienestar';

            Refused, with nothing changed, when the tenant's schema already exists in the target (rename or drop it \
            yourself: tenant-backup never drops anything) or when the target's server is older than the pg_dump that \
            made the backup. The target's connection comes from --target-database over the PG* variables. Audited.

            With --apply-as ROLE, psql logs in as ROLE (a login role that is not a superuser, belongs to no other \
            role and holds nothing in the target; its password from the passfile, never PGPASSWORD) to apply the \
            clinic's dump, without the dump's OWNER TO statements: what the dump runs at run time (a function a \
            DEFAULT calls during COPY, EXECUTE of a built string) then has that role's rights, not a superuser's. \
            For the restore ROLE gets CONNECT and CREATE on the database and REFERENCES on the shared tables; \
            afterwards what it created goes to --owner (default: the database's owner, which must not be a \
            superuser) and every right it was given is taken back. Shared dumps are still applied by the operator's \
            connection (they must be signed), committed first, so this needs --create-database with them.
            """)

    @OptionGroup var options: AccessOptions

    @OptionGroup var backup: BackupChoice

    @Option(help: ArgumentHelp("The database to restore into: a libpq connection string or postgresql:// URL.", valueName: "dsn"))
    var targetDatabase: String

    @Flag(help: "Create the target database first (it must not exist; it is dropped again if the restore fails).")
    var createDatabase = false

    @Flag(help: "Into a database without the shared tables, also restore the shared dumps (every clinic's shared rows).")
    var withSharedData = false

    @Option(help: ArgumentHelp("SQL run in the restore's transaction before commit.", valueName: "file"))
    var afterRestore: String?

    @Flag(help: ArgumentHelp(
        "Also restore a backup whose manifest is unsigned, signed by an untrusted key, or missing (the old system's); still verified whole first, "
            + "then filtered and checked to change nothing outside the clinic's schema."))
    var trustUnsigned = false

    @Flag(help: "Let a --target-database on another host or port use the live connection's PGPASSWORD, PGPASSFILE and PGSERVICE.")
    var inheritCredentials = false

    @Option(help: ArgumentHelp("Apply the clinic's dump as this role, not a superuser (see above).", valueName: "role"))
    var applyAs: String?

    @Option(help: ArgumentHelp("With --apply-as: who owns the restored objects (default: the target database's owner).", valueName: "role"))
    var owner: String?

    func validate() throws {
        if owner != nil && applyAs == nil { throw ValidationError("--owner goes with --apply-as (without it, the dump's own OWNER TO statements apply)") }
    }

    func run() async throws {
        var request = BackupAccess.RestoreRequest(target: targetDatabase)
        request.createDatabase = createDatabase
        request.withSharedData = withSharedData
        request.trustUnsigned = trustUnsigned
        request.inheritCredentials = inheritCredentials
        request.applyAs = applyAs.map { ApplyRole(role: $0, owner: owner) }
        if let afterRestore {
            do {
                request.afterRestoreSQL = try String(contentsOfFile: afterRestore, encoding: .utf8)
            } catch {
                let reason = FileManager.default.fileExists(atPath: afterRestore) ? "cannot be read as a UTF-8 text file" : "no such file"
                throw ValidationError("--after-restore \(afterRestore): \(reason)")
            }
        }
        let access = try options.access()
        let (tenant, reference, ready) = (backup.tenant, backup.reference, request)
        let restored = try await interruptible(access) { () throws(AccessError) in try await access.restore(tenant: tenant, reference, into: ready) }
        print("restored \(restored.key) into database \(restored.database)\(restored.createdDatabase ? " (created)" : "")")
        for key in restored.sharedApplied { print("  with the shared dump \(key)") }
        for (table, rows) in restored.tableRowCounts.sorted(by: { $0.key < $1.key }) { print("  \(table): \(rows) rows") }
        if !restored.mismatches.isEmpty {
            let tables = restored.mismatches.map { "\($0.table) (manifest \($0.expected.map(String.init) ?? "-"), restored \($0.restored.map(String.init) ?? "-"))" }
            FileHandle.standardError.write(Data("error: restored, but these tables differ from the manifest: \(tables.joined(separator: ", ")); check them before relying on this copy\n".utf8))
            throw ExitCode(1)
        }
    }
}

struct VerifyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Check backups against their manifests, optionally with a restore drill.",
        discussion: """
            Reads each backup whole and checks its size and SHA-256 against its manifest. With --restore, a restore \
            drill: the backup is restored into a throwaway database on the same server (created, and dropped \
            afterwards whatever happens, also on SIGTERM), and every table's row count is compared with the \
            manifest's. Exits 1 when any check fails. Audited.
            """)

    @OptionGroup var options: AccessOptions

    @Option(help: ArgumentHelp("The tenant (exact schema name).", valueName: "name"))
    var tenant: String

    @Argument(help: ArgumentHelp("The backup: its key or file name (default: the newest).", valueName: "key"))
    var key: String?

    @Flag(help: "The tenant's newest backup (the default).")
    var latest = false

    @Flag(help: "Every backup of the tenant.")
    var all = false

    @Flag(help: "Also restore into a throwaway database and compare every table's row count.")
    var restore = false

    @Flag(help: "Count a backup whose manifest is unsigned (or signed by an untrusted key), or that has none, as verified when its bytes and dump check out.")
    var trustUnsigned = false

    @Option(help: ArgumentHelp("With --restore: apply the clinic's dump as this role, not a superuser (see restore --apply-as).", valueName: "role"))
    var applyAs: String?

    @Flag(help: "Print JSON on stdout.")
    var json = false

    func validate() throws {
        if tenant.isEmpty { throw ValidationError("--tenant must name a tenant") }
        if [key != nil, latest, all].filter({ $0 }).count > 1 { throw ValidationError("give one of: a key, --latest, --all") }
        if applyAs != nil && !restore { throw ValidationError("--apply-as goes with --restore (only a drill applies the dump)") }
    }

    func run() async throws {
        let selection: BackupAccess.VerifySelection = all ? .all : .one(key.map { .key($0) } ?? .latest)
        let access = try options.access()
        let (tenant, restore, trustUnsigned, applyAs) = (self.tenant, self.restore, self.trustUnsigned, self.applyAs)
        let results = try await interruptible(access) { () throws(AccessError) in
            try await access.verify(tenant: tenant, selection, restore: restore, trustUnsigned: trustUnsigned, applyAs: applyAs)
        }
        if json {
            try printJSON([
                "tenant": tenant,
                "backups": results.map { result in
                    [
                        "s3_key": result.key, "ok": result.passed, "problem": result.problem ?? NSNull(), "has_manifest": result.hasManifest,
                        "signature": result.signature,
                        "drill_database": result.drillDatabase ?? NSNull(),
                        "tables": result.tables.map { tables in
                            tables.map { ["table": $0.table, "expected": $0.expected ?? NSNull(), "restored": $0.restored ?? NSNull(), "ok": $0.matches] as [String: Any] }
                        } ?? NSNull(),
                    ] as [String: Any]
                },
            ])
        } else {
            for result in results {
                print("\(result.passed ? "✔" : "✘") \(result.key)\(result.problem.map { ": \($0)" } ?? "") (\(result.signature))")
                for table in result.tables ?? [] {
                    let expected = table.expected.map(String.init) ?? "-"
                    let restored = table.restored.map(String.init) ?? "-"
                    print("    \(table.matches ? "ok      " : "MISMATCH") \(table.table): manifest \(expected), restored \(restored)")
                }
            }
        }
        if !results.allSatisfy(\.passed) { throw ExitCode(1) }
    }
}

/// ``accessing(_:)`` under ``SignalInterruption``: SIGTERM, SIGINT or SIGHUP cancel the work (psql is killed
/// before it can commit, a drill's database is dropped) and the command exits 128 + the signal.
func interruptible<T: Sendable>(_ access: BackupAccess, _ body: @escaping @Sendable () async throws(AccessError) -> T) async throws -> T {
    do {
        return try await SignalInterruption.run(logger: access.context.logger, stopping: "stopping; nothing half-done is kept") { () async throws -> T in
            try await accessing { () async throws(AccessError) -> T in try await body() }
        }
    } catch let interrupted as Interrupted {
        FileHandle.standardError.write(Data("error: stopped by \(interrupted.signal); nothing half-done was kept\n".utf8))
        throw ExitCode(interrupted.exitCode)
    }
}

struct AdoptCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "adopt",
        abstract: "Write manifests for a tenant's backups that have none (the old system's).",
        discussion: """
            Each backup without a manifest is read whole and checked: a complete pg_dump (it ends with \
            "-- PostgreSQL database dump complete") of this tenant's schema and of no other. Its rows are \
            counted, and a manifest with "adopted": true is written beside it, so download, restore and verify \
            can check it. Such a manifest is unsigned (adopt only read the dump): restores need --trust-unsigned. \
            A backup that fails the check is reported, left alone and marked (never restored, served or kept \
            by retention in place of a good one). Exits 1 when any was left alone. Audited.

            With --prove-as ROLE, each dump that passes is also restored into a throwaway database on the \
            tenant's server (the newest signed shared dumps first, then the dump applied by ROLE, a login role \
            that is not a superuser: see restore --apply-as), and its row counts compared; only then is its \
            manifest written. A dump whose proof psql or the transaction guard refused is marked. An adopted \
            manifest is never signed: what a dump did as a small role does not vouch for what it would do as \
            yours, nor for whose rows it holds. Restore adopted backups with --trust-unsigned --apply-as ROLE.
            """)

    @OptionGroup var options: AccessOptions

    @Option(help: ArgumentHelp("The tenant (exact schema name).", valueName: "name"))
    var tenant: String

    @Flag(help: "Check and report; write nothing.")
    var dryRun = false

    @Option(help: ArgumentHelp("Prove each dump by a restore applied by this role (not a superuser) into a throwaway database, then sign its manifest.", valueName: "role"))
    var proveAs: String?

    func validate() throws {
        if tenant.isEmpty { throw ValidationError("--tenant must name a tenant") }
        if dryRun && proveAs != nil { throw ValidationError("--dry-run writes nothing and restores nothing: leave out --prove-as") }
    }

    func run() async throws {
        let access = try options.access()
        let (tenant, dryRun, proveAs) = (self.tenant, self.dryRun, self.proveAs)
        let results = try await interruptible(access) { () throws(AccessError) in try await access.adopt(tenant: tenant, dryRun: dryRun, proveAs: proveAs) }
        if results.isEmpty { print("\(BackupSchema.tenant(tenant)): every backup has a manifest; nothing to adopt") }
        for result in results {
            if let problem = result.problem {
                print("✘ \(result.key): left alone: \(problem)")
            } else {
                let tables = result.manifest?.tableRowCounts?.count ?? 0
                let written = result.provenByRestore ? "; proven by a restore, unsigned manifest written" : "; unsigned manifest written"
                print("✔ \(result.key): a complete dump of \(tables) table(s)\(result.written ? written : " (dry run: nothing written)")")
            }
        }
        if results.contains(where: { $0.problem != nil }) { throw ExitCode(1) }
    }
}
