import ArgumentParser
import Foundation
import TenantBackup

struct ConfigCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "config",
        abstract: "Work with the configuration.",
        subcommands: [Check.self])

    struct Check: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "check",
            abstract: "Validate the configuration as a whole without running anything.",
            discussion: """
                Reads the file (--config, $TENANT_BACKUP_CONFIG or /etc/tenant-backup/config.yaml), the environment \
                and $CREDENTIALS_DIRECTORY exactly as the daemon does. Exits 0 when valid, 78 (EX_CONFIG) with the \
                file, line and column of the problem otherwise — systemd's ExecReload= runs it before a reload.
                """)

        @OptionGroup var global: GlobalOptions

        func run() async throws {
            let environment = try global.environment()
            let loader = SettingsLoader(environment: environment)
            do {
                let settings = try loader.load(configFile: global.config)
                let source = loader.configPath(explicit: global.config) ?? "the environment (no config file)"
                print("configuration OK: \(source); bucket \(settings.s3.bucket ?? "(none)"), \(settings.backup.compression.rawValue) compression")
            } catch {
                FileHandle.standardError.write(Data("configuration invalid: \(error)\n".utf8))
                throw ExitCode(78)
            }
        }
    }
}
