import AsyncHTTPClient
import Foundation
import Logging

/// One backup cycle: discover the tenants, dump the shared schemas once, then every tenant with bounded
/// concurrency. One schema's failure never stops the others; each gets its own result.
public struct BackupCycle: Sendable {
    /// The settings generation this cycle runs with.
    public let context: BackupContext
    public var settings: Settings { context.settings }
    public var environment: [String: String] { context.environment }
    /// The context's logger, with the cycle's id once it runs.
    public var logger: Logger
    /// Hears what the running cycle does (``CycleEvent``): the daemon's status line and the command's
    /// progress line. The metrics hear every event first.
    public var onEvent: (@Sendable (CycleEvent) -> Void)?
    /// `backup --output`: a file (one schema) or a directory (one file per schema). The command checks it
    /// first (``LocalCopy/check(_:schemas:overwrite:)``), before anything runs.
    public var localCopy: String?
    /// Apply the retention policy to each tenant right after its backup — only when that backup succeeded
    /// (the daemon's cycle does; `tenant-backup backup` does not).
    public var applyRetention = false
    /// The daemon's schedule slot (several hosts may run one database's backups): once a tenant's lock is taken, a tenant whose newest backup
    /// is at or after this instant is skipped — another host backed it up in this slot. `nil`: always back up.
    public var skipIfBackedUpSince: Date?
    /// A shared schema dumped at or after this instant (by another host in the same slot) is used as it is,
    /// not dumped again. Keep it close to the cycle's start: tenants restore on top of this dump. Never used
    /// with ``BackupSettings/consistentSnapshot``: another host's dump is of another snapshot.
    public var reuseSharedSince: Date?
    /// The exported snapshot every pg_dump of this cycle uses (set by ``run(tenants:includeShared:)``).
    var snapshotName: String?
    /// How long to wait for a tenant's lock held by another session; zero fails the tenant at once (the CLI).
    public var lockWait: Duration = .zero
    /// How often the lock's connection is checked during a backup; losing it aborts the upload.
    public var lockCheckInterval: Duration = .seconds(5)
    /// Asked before each tenant starts; `false` (the daemon is stopping) leaves the remaining tenants out.
    public var shouldStartTenant: (@Sendable () -> Bool)?
    /// Back the tenants up only when every shared schema's dump of this cycle succeeded (or was reused):
    /// otherwise each tenant fails and nothing of theirs is stored. The API's `create` sets it, so what it
    /// stores always restores into a fresh database and never reads "names no shared dump" in a drill.
    public var requireShared = false
    /// The I/O the cycle runs over; `nil`: the context's (``CyclePorts/init(context:)``). Unit tests of the
    /// cycle's decisions set fakes.
    public var ports: CyclePorts?
    /// Who backs up, for the audit trail: the daemon, or the operator running `backup`.
    public var actor = "tenant-backup daemon"

    public init(context: BackupContext) {
        self.context = context
        self.logger = context.logger
    }

    /// A cycle with a context of its own (the commands and the tests).
    public init(settings: Settings, environment: [String: String], logger: Logger, httpClient: HTTPClient? = nil) {
        self.init(context: BackupContext(settings: settings, environment: environment, logger: logger, httpClient: httpClient))
    }

    /// Runs the cycle for `requested` tenants, or every discovered tenant when `nil`.
    public func run(tenants requested: [String]? = nil, includeShared: Bool = true) async throws(BackupCycleError) -> BackupReport {
        try await run(try await plan(tenants: requested, includeShared: includeShared))
    }

    /// What a cycle is to do, decided before anything is dumped: the tenants in order, the registry's names
    /// without a schema (each a failure of its own), the shared schemas, and the pg_dump for this server.
    public struct Plan: Sendable {
        public let tenants: [String]
        public let missing: [String]
        public let shared: [String]
        /// Every discovered tenant (not a few named ones): decided from one listing of the whole bucket.
        let everyTenant: Bool
        let pgDump: PgDumpBinary
        let serverVersion: String
        let ports: CyclePorts

        /// How many schemas the cycle dumps at most (a local copy of more than one needs a directory).
        public var schemas: Int { shared.count + tenants.count }
    }

    /// The plan for `requested` tenants, or every discovered tenant when `nil`: asks the database, touches
    /// nothing. A tenant asked for by name that discovery does not know fails the plan; selecting nothing too.
    public func plan(tenants requested: [String]? = nil, includeShared: Bool = true) async throws(BackupCycleError) -> Plan {
        let ports: CyclePorts
        if let given = self.ports { ports = given } else { ports = try await BackupCycleError.setUp { () throws(ContextError) in try CyclePorts(context: context) } }
        let inventory = try await BackupCycleError.setUp { () async throws(ContextError) in try await ports.database.inventory() }
        let discovered = inventory.discovered
        var tenants = discovered.tenants
        // A tenant the query lists without a schema is a tenant that is not backed up: a failure of its own.
        let missing = requested == nil ? discovered.unknownNames.sorted() : []
        if requested == nil, tenants.isEmpty, missing.isEmpty {
            throw .noTenantsSelected(settings.tenants)
        }
        if let requested {
            let unknown = requested.filter { !discovered.tenants.contains($0) }
            guard unknown.isEmpty else {
                throw .unknownTenants(unknown, discovered: discovered.tenants)
            }
            tenants = requested
        }
        let pgDump: PgDumpBinary
        do {
            pgDump = try await ports.dumps.locate(serverMajor: inventory.serverMajor)
        } catch {
            throw .pgDump(error)
        }
        return Plan(
            tenants: tenants, missing: missing, shared: includeShared ? inventory.sharedSchemas : [], everyTenant: requested == nil, pgDump: pgDump,
            serverVersion: inventory.serverVersion, ports: ports)
    }

    /// Runs a plan: the shared schemas, then the tenants; the missing ones are reported as failures.
    public func run(_ plan: Plan) async throws(BackupCycleError) -> BackupReport {
        let ports = plan.ports
        let cycleId = Self.newCycleId()
        var logger = self.logger
        logger[metadataKey: "cycle_id"] = "\(cycleId)"
        var cycle = self
        cycle.logger = logger
        var snapshot: (any CycleSnapshot)?
        if settings.backup.consistentSnapshot {
            do throws(PostgresError) {
                snapshot = try await ports.database.exportSnapshot()
            } catch {
                throw .snapshot(error)
            }
            cycle.snapshotName = snapshot?.name
            logger.debug("cycle snapshot exported", metadata: ["snapshot": "\(snapshot?.name ?? "")"])
        }
        var catalog = BackupCatalog(client: ports.store, prefix: settings.s3.prefix, logger: logger, now: ports.now)
        catalog.manifests = context.manifestCache
        var report = await cycle.run(
            tenants: plan.tenants, shared: plan.shared, listsWholeBucket: plan.everyTenant,
            tools: Tools(ports: ports, catalog: catalog, pgDump: plan.pgDump, serverVersion: plan.serverVersion, signer: cycle.loadSigner()),
            cycleId: cycleId)
        await snapshot?.release()
        for name in plan.missing {
            let result: Result<BackupOutcome, BackupError> = .failure(BackupError(schema: .tenant(name), stage: .discovery, cause: .noSuchSchema))
            logger.error("backup failed", metadata: ["tenant": "\(name)", "error": "no such schema, though the tenants query lists it"])
            let failed = SchemaResult(schema: .tenant(name), result: result)
            report.tenants.append(failed)
            emit(.finished(failed))
        }
        return report
    }

    /// Why a cycle that selects no tenant at all is a failure, and where to look.
    static func noTenantsMessage(_ selection: TenantSelection) -> String {
        var message = "no tenants selected: "
        message += selection.query == nil ? "no schema besides the shared and system ones" : "tenants.query returned no rows"
        if !selection.include.isEmpty { message += ", tenants.include \(selection.include)" }
        if !selection.exclude.isEmpty { message += ", tenants.exclude \(selection.exclude)" }
        return message + "; check the tenant settings (a typo in a pattern selects nothing), or the database the connection points at"
    }

    /// What every schema of a running cycle works with.
    private struct Tools: Sendable {
        let ports: CyclePorts
        /// The bucket's view of the backups, with the cycle's logger.
        let catalog: BackupCatalog
        let pgDump: PgDumpBinary
        let serverVersion: String
        /// Signs every manifest of the cycle; `nil` when the key cannot be read or created (logged, and the
        /// manifests are written unsigned: the backups themselves are still good).
        let signer: SigningKey?
        /// The bucket as the cycle's one listing showed it just before the tenants started; `nil`: each tenant
        /// lists its own folder (a cycle of a few named tenants, or a listing that failed).
        var listing: CycleListing? = nil
    }

    /// What one listing of `<prefix>backups/` (and one of its incomplete uploads) showed before the tenants
    /// started: every tenant's slot check, new key and retention decide from it, not from one or two listings
    /// a tenant. It only ever misses what is newer than itself, and retention keeps what it does not see; a
    /// tenant whose lock another session held when first tried is listed again (that session may just have
    /// backed it up, or pruned it).
    struct CycleListing: Sendable {
        let backups: [String: [BackupCatalog.ListedBackup]]
        /// `nil` when the cycle applies no retention, or the listing failed: each tenant lists its own.
        let uploads: [S3MultipartUpload]?
    }

    private func loadSigner() -> SigningKey? {
        do {
            return try context.signingKey()
        } catch {
            logger.error(
                "manifests of this cycle are written unsigned: restores of these backups will need --trust-unsigned",
                metadata: ["error": "\(error.description)"])
            return nil
        }
    }

    /// Tells the metrics, then ``onEvent``.
    var emit: @Sendable (CycleEvent) -> Void {
        let onEvent = self.onEvent
        return { event in
            if case .finished(let result) = event { BackupMetrics.record(schema: result.schema, result: result.result) }
            onEvent?(event)
        }
    }

    /// A short random id for one cycle's log lines.
    static func newCycleId() -> String {
        String((0..<4).map { _ in String(format: "%02x", UInt8.random(in: 0...255)) }.joined())
    }

    private func run(
        tenants: [String], shared existingShared: [String], listsWholeBucket: Bool, tools: Tools, cycleId: String
    ) async -> BackupReport {
        var tools = tools
        logger.info("backup cycle started", metadata: ["tenants": "\(tenants.count)", "shared": "\(existingShared.count)"])
        var report = BackupReport(startedAt: Date())
        report.cycleId = cycleId
        var sharedKeys: [String] = []
        for schema in existingShared {
            switch await backUpShared(schema, tools: tools) {
            case .reused(let key):
                sharedKeys.append(key)
            case .ran(let result):
                if case .success(let outcome) = result { sharedKeys.append(outcome.key) }
                let finished = SchemaResult(schema: .shared(schema), result: result)
                report.shared.append(finished)
                emit(.finished(finished))
            }
        }
        if !existingShared.isEmpty, sharedKeys.count < existingShared.count {
            logger.warning(
                "a shared schema's dump failed: this cycle's tenant backups do not name it and need an earlier shared dump to restore into a fresh database",
                metadata: ["shared": "\(existingShared.count)", "dumped": "\(sharedKeys.count)"])
        }
        if requireShared, sharedKeys.count < existingShared.count {
            let missing = existingShared.count - sharedKeys.count
            for schema in tenants {
                let error = BackupError(
                    schema: .tenant(schema), stage: .preparation,
                    cause: .other("\(missing) shared schema dump(s) of this backup failed, and a backup without them would not restore into a fresh database; nothing was stored"))
                let failed = SchemaResult(schema: .tenant(schema), result: .failure(error))
                report.tenants.append(failed)
                emit(.finished(failed))
            }
            logger.error("backup cycle finished: a shared dump failed, so no tenant was backed up", metadata: ["tenants": "\(tenants.count)"])
            return report
        }
        let limit = max(1, settings.backup.tenantConcurrency)
        let sharedBackups = sharedKeys
        if listsWholeBucket { tools.listing = await cycleListing(tools: tools) }
        let tenantTools = tools
        let emit = self.emit
        let outcomes = await Self.forEachTenant(
            tenants, limit: limit, shouldStart: shouldStartTenant, started: { emit(.tenantStarted($0, position: $1, count: $2)) }
        ) { schema in
            await backUpTenant(schema, tools: tenantTools, sharedBackups: sharedBackups)
        }
        for (schema, outcome) in zip(tenants, outcomes) {
            switch outcome {
            case .ran(let result)?: report.tenants.append(result)
            case .skipped(let skipped)?: report.skipped.append(skipped)
            case nil: report.skipped.append(SkippedTenant(schema: schema, reason: .shuttingDown))
            }
        }
        // Shared dumps live as long as a kept tenant backup names them: pruned once the tenants' retention ran,
        // and only when this cycle's shared dumps all succeeded (the tenants' brake, for the shared schemas).
        if applyRetention, !existingShared.isEmpty, report.shared.allSatisfy(\.succeeded), !report.shared.isEmpty {
            var runner = RetentionRunner(settings: settings.retention, client: tools.ports.store, prefix: settings.s3.prefix, logger: logger, now: tools.ports.now)
            runner.trust = context.manifestTrust()
            runner.manifests = context.manifestCache
            do {
                report.sharedRetention = .success(try await runner.runSharedSchemas())
            } catch {
                logger.error("shared retention failed; no shared dump was deleted", metadata: ["error": "\(error)"])
                report.sharedRetention = .failure(PruneRun.PruneFailure(tenant: nil, cause: PruneRun.PruneFailure.cause(of: error)))
            }
        }
        let failed = report.failures.count
        let retentionFailed = report.retentionFailures.count
        logger.log(
            level: failed == 0 && retentionFailed == 0 ? .info : .error, "backup cycle finished",
            metadata: [
                "tenants": "\(report.tenants.count)", "failed": "\(failed)", "retention_failed": "\(retentionFailed)", "skipped": "\(report.skipped.count)",
                "duration_ms": "\(Int64(Date().timeIntervalSince(report.startedAt) * 1000))",
            ])
        return report
    }

    /// The cycle's one listing of the tenants' backups (``CycleListing``); `nil` when it fails (logged: each
    /// tenant then lists its own folder, and fails on its own if the bucket cannot be listed).
    private func cycleListing(tools: Tools) async -> CycleListing? {
        do throws(S3Error) {
            let backups = try await tools.catalog.backupsOfEveryTenant()
            let uploads = applyRetention
                ? try? await tools.ports.store.incompleteUploads(prefix: StorageLayout(prefix: settings.s3.prefix).root(of: .tenant)) : nil
            return CycleListing(backups: backups, uploads: uploads)
        } catch {
            logger.warning("the bucket could not be listed for the whole cycle; each tenant lists its own backups", metadata: ["error": "\(error)"])
            return nil
        }
    }

    private enum SharedOutcome {
        case ran(Result<BackupOutcome, BackupError>)
        /// Another host dumped it within this cycle's window: its key goes into the tenants' manifests.
        case reused(String)
    }

    /// One shared schema under its own advisory lock. When another host's cycle has just dumped it (at or
    /// after ``reuseSharedSince``), that dump is used instead of a second one.
    private func backUpShared(_ name: String, tools: Tools) async -> SharedOutcome {
        let schema = BackupSchema.shared(name)
        var log = logger
        log[metadataKey: schema.metadataKey] = "\(name)"
        let lock: (any SchemaLock)?
        do {
            // Every tenant of this cycle restores on top of this dump: waiting for another host's shared dump
            // to finish (they take seconds) beats tenant manifests that name none.
            lock = try await tools.ports.database.lock(schema, waitingUpTo: max(lockWait, Self.sharedLockWait))
        } catch {
            return .ran(.failure(BackupError(schema: schema, stage: .lock, cause: BackupError.Cause(error))))
        }
        guard let lock else {
            return .ran(.failure(BackupError(schema: schema, stage: .lock, cause: .lockBusy(waited: max(lockWait, Self.sharedLockWait)))))
        }
        return await lock.holding { () async -> SharedOutcome in
            let (newest, reuse) = await Self.sharedDumpToReuse(
                of: schema, catalog: tools.catalog, trust: context.manifestTrust(), since: reuseSharedSince, snapshot: snapshotName)
            if let newest, reuse {
                log.info("shared schema already dumped in this cycle by another host; using that dump", metadata: ["s3_key": "\(newest.key)"])
                return .reused(newest.key)
            }
            // The newest vouched dump is not the newest key: the folder is listed for the new key's second.
            return .ran(await backUp(schema, tools: tools, sharedBackups: [], newest: try? await tools.catalog.newest(of: schema)))
        }
    }

    /// Runs `body` for each tenant in order, at most `limit` at once, each started as soon as a slot frees.
    /// `shouldStart` is asked before each start: a tenant it refuses (the daemon is stopping) is not started,
    /// nor is any later one it refuses; those answer `nil`. `started` hears of each start (name, position,
    /// count). Results keep the tenants' order.
    static func forEachTenant<Outcome: Sendable>(
        _ tenants: [String], limit: Int, shouldStart: (@Sendable () -> Bool)?, started: (@Sendable (String, Int, Int) -> Void)?,
        _ body: @escaping @Sendable (String) async -> Outcome
    ) async -> [Outcome?] {
        await withTaskGroup(of: (Int, Outcome).self) { group in
            var results = [Outcome?](repeating: nil, count: tenants.count)
            var next = 0
            /// Starts the next tenant that may start; `false` when none is left to start.
            func startNext() -> Bool {
                while next < tenants.count {
                    let index = next
                    next += 1
                    if let shouldStart, !shouldStart() { continue }
                    started?(tenants[index], index + 1, tenants.count)
                    group.addTask { (index, await body(tenants[index])) }
                    return true
                }
                return false
            }
            var running = 0
            while running < max(1, limit), startNext() { running += 1 }
            while let (index, outcome) = await group.next() {
                results[index] = outcome
                if !startNext() { running -= 1 }
            }
            return results
        }
    }

    private enum TenantOutcome: Sendable {
        case ran(SchemaResult)
        case skipped(SkippedTenant)
    }

    /// One tenant, start to end, under its advisory lock: wait for the lock, check the bucket again, back up,
    /// apply retention, release. Losing the lock's connection midway aborts the upload.
    private func backUpTenant(_ name: String, tools: Tools, sharedBackups: [String]) async -> TenantOutcome {
        let schema = BackupSchema.tenant(name)
        var log = logger
        log[metadataKey: schema.metadataKey] = "\(name)"
        /// A failure before or around the dump: logged, counted and returned like a failed dump.
        func failed(_ stage: BackupError.Stage, _ cause: BackupError.Cause) -> TenantOutcome {
            let error = BackupError(schema: schema, stage: stage, cause: cause)
            log.error("backup failed", metadata: ["error": "\(error.message)"])
            let result = SchemaResult(schema: schema, result: .failure(error))
            emit(.finished(result))
            return .ran(result)
        }
        let lock: (any SchemaLock)?
        do {
            lock = try await tools.ports.database.lock(schema, waitingUpTo: lockWait)
        } catch {
            return failed(.lock, BackupError.Cause(error))
        }
        guard let lock else {
            return failed(.lock, .lockBusy(waited: lockWait == .zero ? nil : lockWait))
        }
        return await lock.holding { await backUpLocked(name, lock: lock, tools: tools, sharedBackups: sharedBackups, log: log, failed: failed) }
    }

    /// ``backUpTenant(_:tools:sharedBackups:)`` once the lock is ours (its caller releases it).
    private func backUpLocked(
        _ name: String, lock: any SchemaLock, tools: Tools, sharedBackups: [String], log: Logger,
        failed: (BackupError.Stage, BackupError.Cause) -> TenantOutcome
    ) async -> TenantOutcome {
        let schema = BackupSchema.tenant(name)
        // The cycle's listing, unless another session held the lock when we first tried: it may just have
        // backed the tenant up (or pruned it), so the tenant's folder is listed again, now that it is ours.
        let fromCycle = lock.waited ? nil : tools.listing.map { $0.backups[name] ?? [] }
        var listed: [BackupCatalog.ListedBackup]?
        do throws(S3Error) {
            if let fromCycle { listed = fromCycle } else { listed = try await tools.catalog.backups(of: schema) }
        } catch {
            // Without the slot check, a listing that fails only costs the new key its second's check.
            if skipIfBackedUpSince != nil {
                return failed(.check, .s3(error))
            }
            listed = nil
        }
        // The new key's second is checked against the newest listed (none when the listing failed).
        let newest = listed.flatMap { tools.catalog.newest(among: $0, schema: schema) }
        if let since = skipIfBackedUpSince, let listed {
            do throws(S3Error) {
                let check = try await Self.slotCheck(among: listed, of: schema, catalog: tools.catalog, trust: context.manifestTrust(), slot: since)
                if let inSlot = check.inSlot {
                    log.info("already backed up in this slot; skipped", metadata: ["s3_key": "\(inSlot.key)"])
                    return .skipped(SkippedTenant(schema: name, reason: .alreadyBackedUp(key: inSlot.key)))
                }
            } catch {
                return failed(.check, .s3(error))
            }
        }
        let interval = lockCheckInterval
        let (finished, lost): (Result<BackupOutcome, BackupError>, Void?) = await withWatcher {
            await backUp(schema, tools: tools, sharedBackups: sharedBackups, newest: newest)
        } until: {
            // Losing the lock cancels the backup: pg_dump is stopped and the multipart upload aborted.
            await lock.waitUntilLost(checkingEvery: interval) ? () : nil
        }
        if lost != nil, case .failure = finished {
            return failed(.lock, .lockLost)
        }
        let result = finished
        var schemaResult = SchemaResult(schema: schema, result: result)
        let audit = AuditTrail(client: tools.ports.store, prefix: settings.s3.prefix, logger: log, retentionDays: settings.audit.retentionDays)
        if case .success(let outcome) = result {
            // The backup is stored and good whatever happens here: its record is written on a best-effort basis.
            do throws(S3Error) {
                try await audit.write(AuditRecord(
                    action: .backup, tenant: name, key: outcome.key, outcome: .ok, actor: actor, detail: "\(outcome.storedBytes) bytes", time: tools.ports.now()))
            } catch {
                log.error("the backup is stored, but its audit record could not be", metadata: ["error": "\(error)"])
            }
        }
        if applyRetention {
            var runner = RetentionRunner(settings: settings.retention, client: tools.ports.store, prefix: settings.s3.prefix, logger: logger, now: tools.ports.now)
            runner.audit = audit
            runner.actor = actor
            runner.trust = context.manifestTrust()
            runner.manifests = context.manifestCache
            // The listing the backup decided from, with the backup itself: retention sees what the cycle made.
            if case .success(let outcome) = result, let key = BackupKey.parse(outcome.key, prefix: settings.s3.prefix) {
                // What this cycle just wrote and signed is judged from what it wrote, not from a read-back a
                // lying store or a bucket writer could answer: its own backup never loses its place to a planted one.
                if let manifest = outcome.manifest, let eTag = outcome.manifestETag {
                    context.manifestCache.remember(key.manifestKey, eTag: eTag, manifest: manifest, trust: context.manifestTrust())
                }
                listed?.append(BackupCatalog.ListedBackup(
                    key: key, size: outcome.storedBytes, hasManifest: outcome.manifestKey != nil, manifestETag: outcome.manifestETag,
                    manifestSize: outcome.manifestBytes))
            }
            var given = (listed: listed, uploads: fromCycle == nil ? nil : tools.listing?.uploads)
            while schemaResult.retention == nil {
                do throws(S3Error) {
                    schemaResult.retention = .success(try await runner.run(
                        tenant: name, trigger: .afterBackup(succeeded: schemaResult.succeeded), listed: given.listed, uploads: given.uploads))
                } catch {
                    if fromCycle != nil, given.listed != nil, error.status == 404 {
                        // Gone since the cycle's listing (another host's prune, an operator's delete): list again.
                        log.debug("a backup the cycle's listing showed is gone; the tenant's folder is listed again", metadata: ["error": "\(error)"])
                        given = (nil, nil)
                        continue
                    }
                    log.error("retention of the tenant could not run; nothing of it was deleted", metadata: ["error": "\(error)"])
                    schemaResult.retention = .failure(error)
                }
            }
        }
        emit(.finished(schemaResult))
        return .ran(schemaResult)
    }

    /// The least a cycle waits for a shared schema's lock held by another run.
    static let sharedLockWait: Duration = .seconds(600)

    /// Keys have one-second resolution: a backup of the same schema made earlier in this second (by another
    /// run, or another host) would share our key, and the write would be refused. Waits for the next second.
    static func waitForAFreshSecond(after newest: BackupKey?) async {
        guard let newest, Int64(newest.timestamp.timeIntervalSince1970) >= Int64(Date().timeIntervalSince1970) else { return }
        try? await Task.sleep(for: .milliseconds(Int64((1 - Date().timeIntervalSince1970.truncatingRemainder(dividingBy: 1)) * 1000) + 10))
    }

    private func backUp(
        _ schema: BackupSchema, tools: Tools, sharedBackups: [String],
        newest: BackupKey?
    ) async -> Result<BackupOutcome, BackupError> {
        await Self.waitForAFreshSecond(after: newest)
        var job = SchemaBackup(
            schema: schema, settings: settings, pgDump: tools.pgDump, serverVersion: tools.serverVersion,
            environment: environment, sharedBackups: sharedBackups, logger: logger)
        if let onEvent { job.progress = { onEvent(.progress($0)) } }
        job.snapshot = snapshotName
        job.signer = tools.signer
        let startedAt = tools.ports.now()
        if let localCopy {
            job.localCopyPath = LocalCopy.isDirectory(localCopy)
                ? (localCopy as NSString).appendingPathComponent(
                    BackupKey(prefix: "", schema: schema, timestamp: startedAt, format: settings.backup.backupFormat).fileName)
                : localCopy
        }
        do {
            return .success(try await tools.ports.dumps.backUp(job, startedAt: startedAt))
        } catch {
            return .failure(error)
        }
    }
}
