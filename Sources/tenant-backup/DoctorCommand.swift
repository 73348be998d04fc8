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
            with the credentials; an object written under <prefix>test/ reads back identical and is deleted.
            Exits 0 only when every check passes.
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
            }
            var text = "\(mark) \(check.name): \(check.detail)\n"
            if check.outcome == .failed, let hint = check.hint { text += "    fix: \(hint)\n" }
            FileHandle.standardOutput.write(Data(text.utf8))
        }
        let failed = report.checks.filter { $0.outcome != .passed }.count
        if failed == 0 {
            print("all \(report.checks.count) checks passed")
        } else {
            print("\(failed) of \(report.checks.count) checks did not pass")
            throw ExitCode(1)
        }
    }
}
