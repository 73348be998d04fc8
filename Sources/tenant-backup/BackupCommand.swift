import ArgumentParser
import Foundation
import TenantBackup

struct BackupCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "backup",
        abstract: "Back up tenants now: pg_dump of each schema streamed, compressed, into S3.",
        discussion: """
            Without --tenant, backs up every discovered tenant (as --all). The shared schemas (public) are \
            dumped once first, under <prefix>shared/, and each tenant's manifest names them. Each backup lands \
            at <prefix>backups/<tenant>/backup-sql-<tenant>-YYYY-MM-DD-HHMMSS.sql.zst with a .manifest.json \
            beside it. A failed or killed pg_dump never leaves an object behind. Exits non-zero if any schema failed.
            """)

    @OptionGroup var global: GlobalOptions

    @Option(name: .customLong("tenant"), help: ArgumentHelp("A tenant schema to back up (repeatable); exact name.", valueName: "name"))
    var tenants: [String] = []

    @Flag(help: "Back up every discovered tenant (the default when no --tenant is given).")
    var all = false

    @Flag(help: "Skip the shared schemas (public) in this run; such backups name no shared dump and restore only into a database that has the shared tables.")
    var noShared = false

    @Option(help: ArgumentHelp("Also keep a local copy of what is stored: a file for one schema, else an existing directory.", valueName: "path"))
    var output: String?

    @Flag(help: "Replace the --output file when it already exists (otherwise refused before anything runs).")
    var force = false

    @Flag(help: "Print the results as JSON on stdout.")
    var json = false

    func validate() throws {
        if all, !tenants.isEmpty { throw ValidationError("--all and --tenant exclude each other") }
        if force, output == nil { throw ValidationError("--force only applies to --output") }
    }

    func run() async throws {
        let environment = try global.environment()
        let settings = try global.settings(environment: environment)
        let logger = global.logger(settings: settings)
        var cycle = BackupCycle(settings: settings, environment: environment, logger: logger)
        cycle.localCopy = output
        cycle.actor = AccessOptions.localUser(environment)
        let showProgress = !json && isatty(STDERR_FILENO) == 1
        if showProgress {
            cycle.onEvent = { event in
                guard case .progress(let progress) = event else { return }
                let seconds = max(0.001, Double(progress.elapsed.components.seconds) + Double(progress.elapsed.components.attoseconds) / 1e18)
                let rate = Double(progress.dumpBytes) / seconds / 1_048_576
                let line = String(
                    format: "\r%@: %.1f MiB dumped, %.1f MiB stored, %.1f MiB/s   ",
                    "\(progress.schema)", Double(progress.dumpBytes) / 1_048_576, Double(progress.storedBytes) / 1_048_576, rate)
                FileHandle.standardError.write(Data(line.utf8))
            }
        }
        let report: BackupReport
        let requested = tenants.isEmpty ? nil : tenants
        let includeShared = !noShared
        let configured = cycle
        let overwrite = force
        let output = self.output
        do {
            report = try await SignalInterruption.run(logger: logger) {
                let plan = try await configured.plan(tenants: requested, includeShared: includeShared)
                // Before anything runs: a typo in the path costs nothing.
                if let output { try LocalCopy.check(output, schemas: plan.schemas, overwrite: overwrite) }
                return try await configured.run(plan)
            }
        } catch let interrupted as Interrupted {
            if showProgress { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }
            FileHandle.standardError.write(Data("error: \(interrupted)\n".utf8))
            throw ExitCode(interrupted.exitCode)
        } catch {
            FileHandle.standardError.write(Data("error: \(error)\n".utf8))
            throw ExitCode(1)
        }
        if showProgress { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }
        if json {
            print(String(decoding: try BackupReportJSON(report).encoded(), as: UTF8.self))
        } else {
            for result in report.shared + report.tenants {
                switch result.result {
                case .success(let outcome):
                    print(String(
                        format: "✔ %@: %@ (%.1f MiB, %.1f s)%@", "\(result.schema)",
                        outcome.key, Double(outcome.storedBytes) / 1_048_576, Double(outcome.duration.milliseconds) / 1000,
                        outcome.manifestKey == nil ? " — manifest not written" : ""))
                case .failure(let error):
                    print("✘ \(error)")
                }
            }
        }
        if !report.allSucceeded { throw ExitCode(1) }
    }
}

/// The JSON shape of `backup --json`.
struct BackupReportJSON: Encodable {
    struct Entry: Encodable {
        let schema: String
        let area: String
        let ok: Bool
        let key: String?
        let manifestKey: String?
        let bytes: Int64?
        let dumpBytes: Int64?
        let sha256: String?
        let durationMs: Int64?
        let error: String?

        enum CodingKeys: String, CodingKey {
            case schema, area, ok, key, bytes, sha256, error
            case manifestKey = "manifest_key"
            case dumpBytes = "dump_bytes"
            case durationMs = "duration_ms"
        }
    }

    let startedAt: Date
    let ok: Bool
    let results: [Entry]

    enum CodingKeys: String, CodingKey {
        case startedAt = "started_at"
        case ok, results
    }

    init(_ report: BackupReport) {
        startedAt = report.startedAt
        ok = report.allSucceeded
        results = (report.shared + report.tenants).map { result in
            switch result.result {
            case .success(let outcome):
                return Entry(
                    schema: result.schema.name, area: result.schema.kind, ok: true, key: outcome.key,
                    manifestKey: outcome.manifestKey, bytes: outcome.storedBytes, dumpBytes: outcome.dumpBytes, sha256: outcome.sha256,
                    durationMs: outcome.duration.milliseconds,
                    error: nil)
            case .failure(let error):
                return Entry(
                    schema: result.schema.name, area: result.schema.kind, ok: false, key: nil, manifestKey: nil,
                    bytes: nil, dumpBytes: nil, sha256: nil, durationMs: nil, error: error.description)
            }
        }
    }

    func encoded() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .iso8601
        return try encoder.encode(self)
    }
}
