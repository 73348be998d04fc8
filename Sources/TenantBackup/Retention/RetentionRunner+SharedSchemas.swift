import Foundation
import Logging
import NIOFoundationCompat

/// Retention of the shared schemas' dumps (`<prefix>shared/<schema>/`): a dump lives exactly as long as a
/// kept tenant backup names it in its manifest (restoring that backup into a fresh database needs it),
/// and the newest always lives. The rest is deleted, behind the same brakes as a tenant's backups.
///
/// Run it after the tenants' retention, so the tenant backups left are the kept ones. What it keeps:
/// - every dump a tenant manifest in the bucket names (or would still name after `ignoring` is deleted);
/// - the newest dump of each schema, and dumps dated in the future;
/// - dumps younger than `incompleteUploadGrace`: a cycle in flight, here or on another host, may be about
///   to write tenant manifests that name them.
/// A manifest that cannot be read stops the schema's pruning (it might name any dump), and so does, with the
/// trusted keys known, one no trusted key signed: a bucket writer (or a lying store) must not un-name the dump a
/// signed backup restores on by serving an edited manifest while the prune runs. The runner's settings, store,
/// prefix, logger and clock are the tenants' own.
extension RetentionRunner {
    /// A tenant manifest that could not be read: nothing shared is pruned, since it might name any dump.
    public struct UnreadableManifest: Error, Equatable, CustomStringConvertible {
        public let key: String
        public let reason: String
        public var description: String {
            "cannot read the tenant manifest \(key) (\(reason)); no shared dump is deleted until every manifest can be read"
        }
    }

    /// Every shared dump named by a tenant manifest in the bucket, leaving out the manifests of `ignoring`
    /// (tenant backups a dry run plans to delete).
    public func namedSharedDumps(ignoring: Set<String> = []) async throws -> Set<String> {
        let listed = try await BackupCatalog(client: client, prefix: prefix).allBackups(area: .tenant).filter(\.hasManifest)
        manifests.keepOnly(Set(listed.map(\.key.manifestKey)), under: StorageLayout(prefix: prefix).root(of: .tenant))
        let wanted = listed.filter { !ignoring.contains($0.key.key) }
        let (client, trust, cache) = (self.client, self.trust, self.manifests)
        return try await withThrowingTaskGroup(of: [String].self) { group in
            var named: Set<String> = []
            var next = 0
            func start() {
                let backup = wanted[next]
                next += 1
                group.addTask {
                    let key = backup.key.manifestKey
                    let manifest: ManifestCache.Entry
                    do {
                        manifest = try await cache.read(key, eTag: backup.manifestETag, size: backup.manifestSize, from: client, trust: trust)
                    } catch {
                        throw UnreadableManifest(key: key, reason: "\(error)")
                    }
                    if trust != nil, !manifest.verdict.isTrusted {
                        throw UnreadableManifest(
                            key: key,
                            reason: "no trusted key signed it (\(manifest.verdict.summary)): what it names cannot be believed; check the backup with "
                                + "tenant-backup verify, and delete it or its manifest if it is not ours")
                    }
                    return manifest.sharedBackups
                }
            }
            while next < min(16, wanted.count) { start() }
            while let names = try await group.next() {
                named.formUnion(names)
                if next < wanted.count { start() }
            }
            return named
        }
    }

    /// Plans and, unless `dryRun` or a brake says no, deletes the shared dumps no kept tenant backup needs (run
    /// it after the tenants' retention, so the tenant backups left are the kept ones).
    public func runSharedSchemas(force: Bool = false, dryRun: Bool = false, ignoring: Set<String> = []) async throws -> [RetentionOutcome] {
        let named = try await namedSharedDumps(ignoring: ignoring)
        var bySchema: [String: [RetentionCandidate]] = [:]
        for backup in try await BackupCatalog(client: client, prefix: prefix).allBackups(area: .shared) {
            bySchema[backup.key.schema, default: []].append(RetentionCandidate(key: backup.key.key, timestamp: backup.key.timestamp, size: backup.size))
        }
        var outcomes: [RetentionOutcome] = []
        for schema in bySchema.keys.sorted() {
            outcomes.append(try await pruneShared(schema: schema, candidates: bySchema[schema] ?? [], named: named, force: force, dryRun: dryRun))
        }
        return outcomes
    }

    /// The plan for one shared schema's dumps: pure, newest first.
    public static func planSharedDumps(_ candidates: [RetentionCandidate], named: Set<String>, now: Date, grace: TimeInterval) -> RetentionPlan {
        let horizon = now.addingTimeInterval(RetentionPlanner.defaultClockSkewAllowance)
        let sorted = candidates.sorted(by: RetentionCandidate.newestFirst)
        var newestSeen = false
        let decisions = sorted.map { candidate -> RetentionDecision in
            var reasons: [RetentionReason] = []
            if candidate.timestamp > horizon {
                reasons.append(.future)
            } else if !newestSeen {
                newestSeen = true
                reasons.append(.newest)
            }
            if named.contains(candidate.key) { reasons.append(.named) }
            if now.timeIntervalSince(candidate.timestamp) < grace, !reasons.contains(.future) { reasons.append(.recent) }
            return RetentionDecision(candidate: candidate, reasons: reasons)
        }
        return RetentionPlan(decisions: decisions)
    }

    private func pruneShared(schema: String, candidates: [RetentionCandidate], named: Set<String>, force: Bool, dryRun: Bool) async throws -> RetentionOutcome {
        var log = logger
        log[metadataKey: BackupSchema.shared(schema).metadataKey] = "\(schema)"
        let current = now()
        let grace = Double(settings.incompleteUploadGrace.components.seconds)
        let plan = Self.planSharedDumps(candidates, named: named, now: current, grace: grace)
        func outcome(_ status: RetentionOutcome.Status, deleted: [String] = [], failed: [String] = [], aborted: [String] = []) -> RetentionOutcome {
            RetentionOutcome(
                schema: .shared(schema), status: status, plan: plan, deletedKeys: deleted, failedKeys: failed, abortedUploads: aborted, dryRun: dryRun)
        }
        let toDelete = plan.deleted
        let fraction = candidates.isEmpty ? 0 : Double(toDelete.count) / Double(candidates.count)
        if !force, fraction > settings.maxDeleteFraction {
            let refusal = RetentionRefusal.tooManyDeletions(planned: toDelete.count, of: candidates.count, limit: settings.maxDeleteFraction)
            log.warning("shared retention refused", metadata: ["reason": "\(refusal)"])
            return outcome(.refused(refusal))
        }
        let folder = BackupKey.folder(prefix: prefix, of: .shared(schema))
        var aborted: [String] = []
        for upload in try await client.incompleteUploads(prefix: folder) {
            guard let initiated = upload.initiated, current.timeIntervalSince(initiated) > grace else { continue }
            if !dryRun { try await client.abortUpload(key: upload.key, uploadId: upload.uploadId) }
            aborted.append(upload.key)
        }
        guard !dryRun, !toDelete.isEmpty else { return outcome(.applied, aborted: aborted) }
        var keys: [String] = []
        for decision in toDelete {
            precondition(decision.candidate.key.hasPrefix(folder), "shared retention planned a key outside the schema's folder")
            keys.append(decision.candidate.key)
            keys.append(decision.candidate.key + BackupKey.manifestSuffix)
        }
        let result = try await client.delete(keys: keys)
        for failure in result.failures {
            log.error("shared retention could not delete a key", metadata: ["s3_key": "\(failure.key)", "code": "\(failure.code)"])
        }
        for decision in toDelete {
            log.info("shared dump deleted by retention", metadata: ["s3_key": "\(decision.candidate.key)", "bytes": "\(decision.candidate.size)"])
        }
        BackupMetrics.recordDeletions(toDelete.count)
        log.info("shared retention applied", metadata: ["kept": "\(plan.kept.count)", "deleted": "\(toDelete.count)"])
        return outcome(.applied, deleted: result.deleted, failed: result.failures.map(\.key), aborted: aborted)
    }
}
