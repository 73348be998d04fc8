import ArgumentParser
import Foundation
import TenantBackup

struct PruneCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "prune",
        abstract: "Delete each tenant's expired backups by the retention policy (daily/weekly/monthly).",
        discussion: """
            Prints every backup with keep or delete and the reasons. Brakes: runs only when the tenant's newest \
            backup is younger than retention.max_newest_age; never deletes the newest backup nor the newest one \
            with a verified manifest; never touches keys that are not backups of that tenant; refuses a plan that \
            would delete more than retention.max_delete_fraction of them. --force lifts the age and fraction \
            brakes only. Exits non-zero when a tenant's plan was refused or a deletion failed.

            Without --tenant, the shared schemas' dumps (<prefix>shared/) are pruned after the tenants: a shared \
            dump is kept while a tenant backup's manifest names it (restoring that backup needs it), when it is \
            the newest, or when it is younger than retention.incomplete_upload_grace; the rest is deleted, behind \
            the same fraction brake. A tenant manifest that cannot be read stops it.
            """)

    @OptionGroup var global: GlobalOptions

    @Option(name: .customLong("tenant"), help: ArgumentHelp("A tenant to prune (repeatable); default: every discovered tenant.", valueName: "name"))
    var tenants: [String] = []

    @Flag(help: "Show the plan; delete nothing.")
    var dryRun = false

    @Flag(help: "Lift the freshness and max-delete-fraction brakes (never the newest-backup brakes).")
    var force = false

    @Flag(help: "Print the plans as JSON on stdout.")
    var json = false

    func run() async throws {
        let environment = try global.environment()
        let settings = try global.settings(environment: environment)
        let logger = global.logger(settings: settings)
        let results: [PruneRun.TenantResult]
        do {
            var run = PruneRun(context: BackupContext(settings: settings, environment: environment, logger: logger))
            run.actor = AccessOptions.localUser(environment)
            results = try await run
                .run(tenants: tenants, force: force, dryRun: dryRun)
        } catch {
            FileHandle.standardError.write(Data("error: \(error)\n".utf8))
            throw ExitCode(1)
        }
        var reports: [[String: Any]] = []
        for result in results {
            switch result.result {
            case .success(let outcome):
                if json { reports.append(Self.json(outcome)) } else { print(Self.text(outcome)) }
            case .failure(let failure):
                FileHandle.standardError.write(Data("✘ \(failure)\n".utf8))
            }
        }
        let failed = results.contains(where: \.needsAttention)
        if json {
            let data = try JSONSerialization.data(withJSONObject: ["tenants": reports], options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
            print(String(decoding: data, as: UTF8.self))
        }
        if failed { throw ExitCode(1) }
    }

    static func text(_ outcome: RetentionOutcome) -> String {
        var lines = ["\(outcome.schema):"]
        for decision in outcome.plan.decisions {
            // A refused plan deleted nothing: its lines say what it would have done.
            let refused = if case .refused = outcome.status { true } else { false }
            let verdict = decision.keep ? "keep  " : (outcome.dryRun || refused ? "would delete" : "delete")
            let reasons = decision.reasons.map(\.rawValue).joined(separator: ",")
            lines.append("  \(verdict) \(decision.candidate.key)\(reasons.isEmpty ? "" : "  (\(reasons))")")
        }
        let refused = if case .refused = outcome.status { true } else { false }
        for key in outcome.purged { lines.append("  \(outcome.dryRun || refused ? "would purge" : "purge") \(key)  (deleted through the API, grace over)") }
        for key in outcome.softDeleted { lines.append("  hold   \(key)  (deleted through the API, in its grace: tenant-backup undelete brings it back)") }
        for warning in outcome.warnings { lines.append("  ⚠ \(warning)") }
        switch outcome.status {
        case .applied:
            let verb = outcome.dryRun ? "would delete" : "deleted"
            lines.append("  \(outcome.plan.kept.count) kept, \(outcome.plan.deleted.count) \(verb)"
                + (outcome.abortedUploads.isEmpty ? "" : ", \(outcome.abortedUploads.count) stale uploads \(outcome.dryRun ? "to abort" : "aborted")"))
        case .refused(let refusal):
            lines.append("  ✘ refused, nothing deleted: \(Self.advice(refusal))")
        }
        return lines.joined(separator: "\n")
    }

    /// The refusal, with what this command can do about it.
    static func advice(_ refusal: RetentionRefusal) -> String {
        refusal.canBeForced ? "\(refusal), or pass --force" : "\(refusal)"
    }

    static func json(_ outcome: RetentionOutcome) -> [String: Any] {
        var status: [String: Any] = ["applied": true]
        if case .refused(let refusal) = outcome.status { status = ["applied": false, "refused": advice(refusal)] }
        return [
            "tenant": outcome.tenant,
            "area": outcome.schema.kind,
            "dry_run": outcome.dryRun,
            "status": status,
            "backups": outcome.plan.decisions.map { decision in
                ["key": decision.candidate.key, "keep": decision.keep, "reasons": decision.reasons.map(\.rawValue)] as [String: Any]
            },
            "deleted_keys": outcome.deletedKeys,
            "failed_keys": outcome.failedKeys,
            "aborted_uploads": outcome.abortedUploads,
            "warnings": outcome.warnings,
            "purged": outcome.purged,
            "soft_deleted": outcome.softDeleted,
        ]
    }
}
