import ArgumentParser
import Foundation
import TenantBackup

struct ConfigCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "config",
        abstract: "Work with the configuration.",
        subcommands: [Check.self, SettingsList.self])

    struct SettingsList: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "settings",
            abstract: "List every setting: its YAML key, environment variables, credential file and whether a reload applies it.",
            discussion: """
                One line per setting, from the table the file, the environment and $CREDENTIALS_DIRECTORY are read \
                by. A reload (systemctl reload, SIGHUP) applies every setting marked live from the next cycle on; \
                those marked restart take effect at the next start. config/tenant-backup.example.yaml shows each \
                with its default.
                """)

        func run() async throws {
            for definition in SettingDefinition.all {
                var sources = definition.environment
                if let credential = definition.credential { sources.append("credential \(credential)") }
                let from = sources.isEmpty ? "" : " [\(sources.joined(separator: ", "))]"
                print("\(definition.key)\(from) (\(definition.reload.rawValue)): \(definition.documentation)")
            }
        }
    }

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
