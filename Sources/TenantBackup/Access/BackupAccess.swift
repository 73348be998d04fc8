import Crypto
import Foundation
import Logging
import NIOCore
import NIOFoundationCompat

/// Which backup of a tenant an operator means: a key (the full key or its file name) or the newest one.
public enum BackupReference: Sendable, Equatable {
    case key(String)
    case latest
}

/// The operator's side of the backups, one tenant at a time: list, download, presign, delete and the audit
/// trail. The CLI commands and the HTTP API are thin callers of these operations.
///
/// Isolation: every operation takes the tenant's exact name, resolves what it is given to a key inside
/// `<prefix>backups/<tenant>/` (``resolve(_:tenant:prefix:)``) before any request about an object is made, and
/// names the tenant in every error. Audit: every access is recorded (``AuditTrail``) before it takes effect;
/// when the record cannot be stored, the access does not happen.
public struct BackupAccess: Sendable {
    public let context: BackupContext
    /// Who is asking: the local user for the CLI, a token's id for the API.
    public let actor: String
    public var now: @Sendable () -> Date = { Date() }
    /// Whom the answers are for: a clinic (through the API) no longer sees a backup it deleted.
    public var audience = Audience.operator

    public enum Audience: Sendable, Equatable {
        /// The operator's CLI: sees every backup, deleted through the API or not.
        case `operator`
        /// A clinic through the API: a backup it deleted (``DeletionMark``) is gone for it.
        case clinic
    }

    public init(context: BackupContext, actor: String) {
        self.context = context
        self.actor = actor
    }

    var prefix: String { context.settings.s3.prefix }
    var logger: Logger { context.logger }

    // MARK: - Resolving what the operator names

    /// The key `given` names inside `tenant`'s folder: a full key (`backups/<tenant>/backup-sql-...`) or a file
    /// name (`backup-sql-<tenant>-...`). Reads nothing: a key that is not one of this tenant's backups in
    /// canonical form is refused before any request is made.
    public static func resolve(_ given: String, tenant: String, prefix: String) throws(AccessError) -> BackupKey {
        func invalid(_ reason: String) -> AccessError { AccessError(tenant: tenant, .invalidKey(given: given, reason: reason)) }
        let foreign = AccessError(tenant: tenant, .foreignKey(given: given))
        guard !given.isEmpty else { throw invalid("it is empty") }
        guard given.utf8.count <= 1024 else { throw invalid("it is longer than any S3 key") }
        guard !given.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else {
            throw invalid("it holds control characters")
        }
        let folder = BackupKey.folder(prefix: prefix, area: .tenant, schema: tenant)
        let key: String
        if given.contains("/") {
            if given.hasPrefix("/") { throw invalid("it starts with \"/\"; give the key as listed, or its file name") }
            if given.split(separator: "/", omittingEmptySubsequences: false).contains(where: { $0 == ".." || $0 == "." || $0.isEmpty }) {
                throw invalid("it holds an empty, \".\" or \"..\" path segment")
            }
            key = given
        } else {
            key = folder + given
        }
        guard key.hasPrefix(folder) else {
            let layout = StorageLayout(prefix: prefix)
            let roots = [layout.tenantsRoot, layout.sharedRoot, layout.auditRoot, layout.testPrefix]
            if BackupKey.parse(key, prefix: prefix) != nil || BackupKey.parseManifest(key, prefix: prefix) != nil
                || roots.contains(where: { key.hasPrefix($0) })
            {
                throw foreign
            }
            throw invalid("it is not under \(folder)")
        }
        if BackupKey.parseManifest(key, prefix: prefix) != nil {
            throw invalid("it is a manifest; give the backup's own key (without \(BackupKey.manifestSuffix))")
        }
        guard let parsed = BackupKey.parse(key, prefix: prefix) else {
            throw invalid("a backup's name is backup-sql-\(BackupKey.encode(tenant))-YYYY-MM-DD-HHMMSS\(BackupFormat.writtenSuffixes)")
        }
        guard parsed.owner == .tenant(tenant) else { throw foreign }
        guard parsed.key == key else { throw invalid("it is not written the way tenant-backup writes keys") }
        return parsed
    }

    /// The backup `reference` names, as the bucket lists it now; refusals are audited (best effort: a refused
    /// access that cannot be recorded stays refused).
    func locate(_ reference: BackupReference, tenant: String, for action: AuditRecord.Action) async throws(AccessError) -> BackupCatalog.ListedBackup {
        do throws(AccessError) {
            let catalog = try catalog(tenant)
            let key: BackupKey?
            switch reference {
            case .key(let given):
                key = try Self.resolve(given, tenant: tenant, prefix: prefix)
            case .latest:
                key = nil
            }
            let listed: [BackupCatalog.ListedBackup]
            do {
                listed = try await catalog.backups(of: .tenant(tenant))
            } catch {
                throw AccessError(tenant: tenant, .storage(error))
            }
            if let key {
                guard let found = listed.first(where: { $0.key == key }) else {
                    throw AccessError(tenant: tenant, listed.isEmpty ? try await emptyTenant(tenant, missing: key.key) : .noSuchBackup(key: key.key))
                }
                if audience == .clinic, await deletion(of: found, tenant: tenant) != nil { throw AccessError(tenant: tenant, .noSuchBackup(key: key.key)) }
                return found
            }
            // The newest backup a signed manifest vouches for, however many newer objects a bucket writer put
            // in front of it (every listed backup is searched). With none vouched (a bucket written before
            // signing), the newest listed, which the read then verifies as it would any key. A manifest the store
            // does not answer for fails the read rather than fall back to an older backup.
            let newest: BackupKey?
            do throws(S3Error) {
                let vouched = try await catalog.newestVouched(among: listed, trust: context.manifestTrust(), searchLimit: nil, strict: true)[tenant]
                let listedNewest = catalog.newest(among: listed, schema: .tenant(tenant))
                newest = vouched ?? listedNewest
                if let vouched, let any = listedNewest, any != vouched {
                    logger.warning(
                        "a newer object than the newest signed backup is not taken for --latest: no signed manifest vouches for it",
                        metadata: ["tenant": "\(tenant)", "s3_key": "\(any.key)", "taken": "\(vouched.key)"])
                }
            } catch {
                throw AccessError(tenant: tenant, .storage(error))
            }
            guard let newest, let found = listed.first(where: { $0.key == newest }) else {
                throw AccessError(tenant: tenant, try await emptyTenant(tenant, missing: nil))
            }
            return found
        } catch {
            if error.isRefusal {
                await auditBestEffort(action, tenant: tenant, key: reference.given, outcome: .refused, detail: error.message)
            }
            throw error
        }
    }

    /// Why a tenant with no backup at all has none of the one asked for: a tenant the database knows has no
    /// backups; a name neither the database nor the bucket knows is no tenant.
    func emptyTenant(_ tenant: String, missing key: String?) async throws(AccessError) -> AccessError.Kind {
        let known: Bool
        do throws(ContextError) {
            known = try await context.inspectDatabase().discovered.tenants.contains(tenant)
        } catch {
            return .database("the bucket has no backup of this tenant, and the database cannot say whether it is one: \(error)")
        }
        guard known else { return .unknownTenant }
        return key.map { .noSuchBackup(key: $0) } ?? .noBackups
    }

    func client(_ tenant: String) throws(AccessError) -> S3Client {
        do {
            return try context.client()
        } catch {
            throw AccessError(tenant: tenant, .configuration(error.description))
        }
    }

    func catalog(_ tenant: String) throws(AccessError) -> BackupCatalog {
        BackupCatalog(client: try client(tenant), prefix: prefix, logger: logger, now: now)
    }

    func trail(_ tenant: String) throws(AccessError) -> AuditTrail {
        do {
            return try context.auditTrail()
        } catch {
            throw AccessError(tenant: tenant, .configuration(error.description))
        }
    }

    // MARK: - Audit

    /// Records an access before it takes effect; when the record cannot be stored, the access must not happen.
    func audit(
        _ action: AuditRecord.Action, tenant: String, key: String?, outcome: AuditRecord.Outcome = .ok, detail: String? = nil
    ) async throws(AccessError) {
        let record = AuditRecord(action: action, tenant: tenant, key: key, outcome: outcome, actor: actor, detail: detail, time: now())
        let trail = try trail(tenant)
        do {
            try await trail.write(record)
        } catch {
            throw AccessError(tenant: tenant, .auditFailed(error))
        }
    }

    /// Records a refusal or a failure; the access already did not happen, so a record that cannot be stored
    /// changes nothing (it is logged).
    func auditBestEffort(_ action: AuditRecord.Action, tenant: String, key: String?, outcome: AuditRecord.Outcome, detail: String) async {
        // Apart from the caller's task: after a stop (SIGTERM) the record of what failed must still be written.
        let access = self
        await Task { try? await access.audit(action, tenant: tenant, key: key, outcome: outcome, detail: detail) }.value
    }

    /// The tenant's audit records, newest first.
    public func auditRecords(tenant: String, since: Date? = nil, limit: Int? = nil) async throws(AccessError) -> [AuditRecord] {
        let trail = try trail(tenant)
        let records: [AuditRecord]
        do {
            records = try await trail.records(tenant: tenant, since: since, limit: limit)
        } catch {
            throw AccessError(tenant: tenant, .storage(error))
        }
        // No record at all: a tenant name with a typo looks the same as a quiet clinic, so say which it is.
        if records.isEmpty, since == nil, (try? await catalog(tenant).backups(of: .tenant(tenant)).isEmpty) ?? false,
           case .unknownTenant = try await emptyTenant(tenant, missing: nil)
        {
            throw AccessError(tenant: tenant, .unknownTenant)
        }
        return records
    }

    /// One page of the tenant's audit records, newest first; the reading is itself recorded (first, so it
    /// shows on the page it asked for).
    public func auditPage(tenant: String, page: Int, size: Int = 50) async throws(AccessError) -> (count: Int, records: [AuditRecord]) {
        let trail = try trail(tenant)
        try await audit(.auditLog, tenant: tenant, key: nil, detail: "page \(page)")
        do {
            return try await trail.page(tenant: tenant, page: page, size: size)
        } catch {
            throw AccessError(tenant: tenant, .storage(error))
        }
    }

    // MARK: - Backing up now

    /// What a backup made on request stored.
    public struct StoredBackup: Sendable, Equatable {
        public let key: String
        public let fileName: String
        public let size: Int64
        public let bucket: String
        public let url: String
    }

    /// Backs the tenant up now, as the old API's "create" did, but as a full backup: the shared schemas are
    /// dumped too, from the same snapshot, and the tenant's manifest names them, so it restores into a fresh
    /// database like a nightly backup, and a drill of it passes. When a shared dump fails, nothing of the
    /// tenant is stored. Under the tenant's advisory lock — a backup already running for it is `tenantBusy`.
    /// Audited as a backup by this actor.
    public func backupNow(tenant: String) async throws(AccessError) -> StoredBackup {
        var cycle = BackupCycle(context: context)
        cycle.actor = actor
        cycle.requireShared = true
        let report: BackupReport
        do throws(BackupCycleError) {
            report = try await cycle.run(tenants: [tenant], includeShared: true)
        } catch {
            if case .unknownTenants = error { throw AccessError(tenant: tenant, .unknownTenant) }
            throw AccessError(tenant: tenant, .backupFailed(error.description))
        }
        guard let result = report.tenants.first else { throw AccessError(tenant: tenant, .backupFailed("the cycle backed up nothing")) }
        switch result.result {
        case .success(let outcome):
            let client = try client(tenant)
            return StoredBackup(
                key: outcome.key, fileName: String(outcome.key.split(separator: "/").last ?? ""), size: outcome.storedBytes, bucket: client.bucket,
                url: client.endpoint.url(path: client.endpoint.path(key: outcome.key), query: []))
        case .failure(let error):
            if case .lockBusy = error.cause { throw AccessError(tenant: tenant, .tenantBusy) }
            throw AccessError(tenant: tenant, .backupFailed(error.message))
        }
    }

    // MARK: - Reading a backup

    /// Streams an object chunk by chunk into `each`, hashing it on the way: returns the bytes read and their
    /// hex SHA-256. Memory holds one chunk at a time. Stops at cancellation.
    func streamObject(_ key: String, tenant: String, _ each: (ByteBuffer) async throws -> Void) async throws -> (bytes: Int64, sha256: String) {
        var hasher = SHA256()
        var bytes: Int64 = 0
        let object = try await client(tenant).openObject(key: key)
        for try await chunk in object {
            try Task.checkCancellation()
            chunk.withUnsafeReadableBytes { hasher.update(bufferPointer: $0) }
            bytes += Int64(chunk.readableBytes)
            try await each(chunk)
        }
        return (bytes, hasher.finalize().map { String(format: "%02x", $0) }.joined())
    }

    /// Why `bytes`/`sha256` do not match what the manifest says, or `nil` when they do. Without a manifest,
    /// only the size the listing gave (`listedSize`, when given) can be checked.
    static func mismatch(bytes: Int64, sha256: String, expected manifest: BackupManifest?, listedSize: Int64? = nil) -> String? {
        guard let manifest else {
            guard let listedSize, bytes != listedSize else { return nil }
            return "read \(bytes) bytes, the listing said \(listedSize)"
        }
        if bytes != manifest.bytes { return "read \(bytes) bytes, expected \(manifest.bytes)" }
        if sha256 != manifest.sha256 { return "SHA-256 \(sha256) does not match the manifest's \(manifest.sha256)" }
        return nil
    }

    // MARK: - The old API's JSON

    /// `2025-10-20T16:20:00.000Z`, as the old backup API's `last_modified` reads (milliseconds, UTC, `Z`).
    public static func oldAPITime(_ date: Date) -> String {
        utc(date, format: "yyyy-MM-dd'T'HH:mm:ss.SSS'Z'")
    }

    /// `2026-11-30T02:00:00+00:00`, as the system tenant-backup replaces wrote times (Python's `isoformat()`).
    public static func isoformat(_ date: Date) -> String {
        utc(date, format: "yyyy-MM-dd'T'HH:mm:ss'+00:00'")
    }

    private static func utc(_ date: Date, format: String) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = format
        return formatter.string(from: date)
    }

    // MARK: - Presign

    /// The longest a presigned URL may live: 7 days, S3's limit for SigV4.
    public static let maximumExpiry = SigV4Signer.maximumPresignedExpiry
    /// The expiries a presigned URL may have, in seconds: the one rule the CLI, the API and presign share.
    public static let expiries = 1...maximumExpiry

    /// Parses an expiry in whole seconds, 1 s ... 7 days.
    public static func expiry(_ text: String, tenant: String) throws(AccessError) -> Int {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        guard let seconds = Int(trimmed) else {
            if !trimmed.isEmpty, trimmed.drop(while: { $0 == "-" }).allSatisfy(\.isNumber) { throw outOfRange(trimmed, tenant: tenant) }
            throw AccessError(tenant: tenant, .invalidExpiry("\"\(text)\" is not a whole number of seconds"))
        }
        guard expiries.contains(seconds) else { throw outOfRange("\(seconds)", tenant: tenant) }
        return seconds
    }

    static func outOfRange(_ seconds: String, tenant: String) -> AccessError {
        AccessError(tenant: tenant, .invalidExpiry("\(seconds) s is outside \(expiries.lowerBound) ... \(expiries.upperBound) (7 days)"))
    }

    /// A presigned GET of one backup.
    public struct PresignedBackup: Sendable, Equatable {
        public let url: String
        public let key: String
        public let fileName: String
        public let expiresIn: Int

        /// The old API's `get-url` answer: `download_url`, `s3_key`, `expires_in_seconds`, `filename`.
        public var oldAPIAnswer: OldAPI.PresignAnswer {
            OldAPI.PresignAnswer(downloadURL: url, s3Key: key, expiresInSeconds: expiresIn, filename: fileName)
        }
    }

    /// A SigV4 presigned GET for the backup, valid `expiresIn` seconds. The URL is a secret: never logged.
    /// With `vouchedOnly` (the API), only a backup a trusted signature vouches for is presigned.
    public func presign(tenant: String, _ reference: BackupReference, expiresIn: Int, vouchedOnly: Bool = false) async throws(AccessError) -> PresignedBackup {
        guard Self.expiries.contains(expiresIn) else { throw Self.outOfRange("\(expiresIn)", tenant: tenant) }
        let backup = try await locate(reference, tenant: tenant, for: .presign)
        let manifest: BackupManifest?
        if vouchedOnly {
            manifest = try await vouchedForServing(backup, tenant: tenant, action: .presign)
        } else {
            try await refuseMarked(backup, tenant: tenant, action: .presign)
            manifest = try await self.manifest(of: backup, tenant: tenant, action: .presign)
        }
        // A URL serves whatever the bucket holds when it is fetched: the object is read whole and checked
        // against its manifest first (after the audit record, as every read), so a bucket writer's object of
        // the right size at this key is never handed out. (One replaced between this read and the fetch is
        // the window left.)
        try await audit(.presign, tenant: tenant, key: backup.key.key, detail: "expires in \(expiresIn) s; the object is checked against its manifest first")
        let problem: String?
        do {
            let read = try await streamObject(backup.key.key, tenant: tenant) { _ in }
            problem = Self.mismatch(bytes: read.bytes, sha256: read.sha256, expected: manifest, listedSize: backup.size)
        } catch {
            await auditBestEffort(.presign, tenant: tenant, key: backup.key.key, outcome: .failed, detail: "\(error)")
            throw AccessError(tenant: tenant, .storage(error as? S3Error ?? S3Error(operation: "GetObject", bucket: "", key: backup.key.key, cause: .transport("\(error)"))))
        }
        if let problem {
            await auditBestEffort(.presign, tenant: tenant, key: backup.key.key, outcome: .refused, detail: "not presigned: \(problem)")
            throw AccessError(
                tenant: tenant,
                vouchedOnly ? .notServed(key: backup.key.key, reason: "the stored object does not match its manifest (\(problem))")
                    : .verificationFailed(key: backup.key.key, problem: problem))
        }
        let client = try client(tenant)
        let url: String
        do {
            url = try await client.presignedGetURL(key: backup.key.key, expiresIn: expiresIn)
        } catch {
            await auditBestEffort(.presign, tenant: tenant, key: backup.key.key, outcome: .failed, detail: "\(error)")
            throw AccessError(tenant: tenant, .storage(error))
        }
        return PresignedBackup(url: url, key: backup.key.key, fileName: backup.key.fileName, expiresIn: expiresIn)
    }

    /// The object's plain URL (path style or virtual-hosted, as the client addresses it): what the old API
    /// returned as `url`. It carries no signature and opens nothing by itself.
    public func plainURL(of key: String, tenant: String) throws(AccessError) -> String {
        let client = try client(tenant)
        return client.endpoint.url(path: client.endpoint.path(key: key), query: [])
    }
}

extension BackupReference {
    /// What the operator gave, for the audit record of a refusal.
    var given: String? {
        if case .key(let given) = self { given } else { nil }
    }
}

extension AccessError {
    /// A refusal (the access was not allowed), as opposed to a failure while carrying it out.
    public var isRefusal: Bool {
        switch kind {
        case .invalidKey, .foreignKey, .noSuchBackup, .noBackups, .unknownTenant, .protectedBackup, .tenantBusy, .invalidExpiry, .restoreRefused, .keptByFloor,
            .deletesNotAllowed, .notDeleted:
            true
        default: false
        }
    }
}

// MARK: - Marks

extension BackupAccess {
    /// The trusted deletion mark of `backup` (deleted through the API, in its grace), or `nil`.
    func deletion(of backup: BackupCatalog.ListedBackup, tenant: String) async -> DeletionMark? {
        guard backup.hasDeletion, let client = try? client(tenant) else { return nil }
        return await DeletionMark.read(for: backup, from: client, trust: context.manifestTrust())
    }

    /// The trusted mark of `backup` (proved broken or foreign by adopt or verify), or `nil`.
    func mark(of backup: BackupCatalog.ListedBackup, tenant: String) async -> BackupMark? {
        guard backup.hasMark, let client = try? client(tenant) else { return nil }
        return await BackupMark.read(for: backup, from: client, trust: context.manifestTrust())
    }

    /// Refuses `action` on a marked backup: it is never served or restored.
    func refuseMarked(_ backup: BackupCatalog.ListedBackup, tenant: String, action: AuditRecord.Action) async throws(AccessError) {
        guard let mark = await mark(of: backup, tenant: tenant) else { return }
        let reason = "\(backup.key.key) was marked broken or foreign by \(mark.markedBy) on \(BackupAccess.isoformat(mark.markedAt)) (\(mark.reason)); "
            + "it is never served or restored: delete it, or use another backup"
        await auditBestEffort(action, tenant: tenant, key: backup.key.key, outcome: .refused, detail: reason)
        throw AccessError(tenant: tenant, .restoreRefused(reason))
    }

    /// What the API may serve: a backup no trusted mark condemns, whose manifest a trusted key signed and
    /// matches it. Returns that manifest; otherwise audits the refusal and throws ``AccessError/Kind/notServed(key:reason:)``.
    func vouchedForServing(_ backup: BackupCatalog.ListedBackup, tenant: String, action: AuditRecord.Action) async throws(AccessError) -> BackupManifest {
        let key = backup.key.key
        func refused(_ reason: String) async -> AccessError {
            await auditBestEffort(action, tenant: tenant, key: key, outcome: .refused, detail: "not served: \(reason)")
            return AccessError(tenant: tenant, .notServed(key: key, reason: reason))
        }
        if let mark = await mark(of: backup, tenant: tenant) {
            throw await refused("marked broken or foreign by \(mark.markedBy) on \(BackupAccess.isoformat(mark.markedAt)) (\(mark.reason))")
        }
        let manifest = try await self.manifest(of: backup, tenant: tenant, action: action)
        if let problem = vouchProblem(backup, manifest: manifest, trustUnsigned: false) { throw await refused(problem) }
        guard let manifest, manifest.describes(key: key, bytes: backup.size) else {
            throw await refused("its manifest does not describe this object (key or size)")
        }
        return manifest
    }

    /// Marks `backup` as proved bad, signed with this host's key; without a key, only says so in the log
    /// (an unsigned mark would not count).
    func writeMark(_ backup: BackupCatalog.ListedBackup, sha256: String, reason: String, by: String, tenant: String) async {
        guard !backup.hasMark else { return }
        let key: SigningKey
        do {
            key = try context.signingKey()
        } catch {
            logger.warning("cannot mark the broken backup: no signing key here", metadata: ["tenant": "\(tenant)", "s3_key": "\(backup.key.key)", "error": "\(error)"])
            return
        }
        do {
            let mark = try BackupMark(key: backup.key.key, bytes: backup.size, sha256: sha256, reason: reason, markedBy: by, markedAt: now()).signed(with: key)
            try await client(tenant).putObject(key: backup.key.markKey, body: ByteBuffer(data: try mark.encoded()), options: S3WriteOptions(contentType: "application/json"))
            logger.notice("backup marked broken or foreign", metadata: ["tenant": "\(tenant)", "s3_key": "\(backup.key.key)", "reason": "\(reason)"])
        } catch {
            logger.warning("cannot mark the broken backup", metadata: ["tenant": "\(tenant)", "s3_key": "\(backup.key.key)", "error": "\(error)"])
        }
    }
}
