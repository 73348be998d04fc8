import ArgumentParser
import Foundation
import TenantBackup

struct DoctorCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "doctor",
        abstract: "Check that everything a backup needs works, and say how to fix what does not.",
        discussion: """
            Checks, in order: the configuration parses; PostgreSQL is reachable; a pg_dump at least as new as \
            the server is installed; tenant discovery finds tenants (and lists them); the S3 bucket is reachable \
            with the credentials; an object written under <prefix>test/ reads back identical and is deleted; \
            then what the store does with what backups ask of it, tried on throwaway objects under <prefix>test/: \
            server-side encryption confirmed, If-None-Match: * honoured on PutObject and on \
            CompleteMultipartUpload, a part sent aws-chunked stored byte for byte, DeleteObjects with \
            Content-MD5. Each is ✔, ✘ (backups cannot keep a promise there: fix it) or ○ not supported (the tool \
            works around it; the line says how and which setting fits).
            Exits 0 only when no check fails.
            """)

    @OptionGroup var global: GlobalOptions

    func run() async throws {
        let environment = try global.environment()
        let logger = global.logger()
        let doctor = Doctor(loader: SettingsLoader(environment: environment), configFile: global.config, logger: logger)
        let report = await doctor.run { check in
            let mark: String
            switch check.outcome {
            case .passed: mark = "✔"
            case .failed: mark = "✘"
            case .skipped: mark = "–"
            case .notSupported: mark = "○"
            }
            var text = "\(mark) \(check.name): \(check.outcome == .notSupported ? "not supported: " : "")\(check.detail)\n"
            if check.outcome == .failed, let hint = check.hint { text += "    fix: \(hint)\n" }
            if check.outcome == .notSupported, let hint = check.hint { text += "    setting: \(hint)\n" }
            FileHandle.standardOutput.write(Data(text.utf8))
        }
        let failed = report.checks.filter { $0.outcome == .failed || $0.outcome == .skipped }.count
        if failed == 0 {
            print("all \(report.checks.count) checks passed")
        } else {
            print("\(failed) of \(report.checks.count) checks did not pass")
            throw ExitCode(1)
        }
    }
}
