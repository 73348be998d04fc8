import ArgumentParser
import Foundation
import Logging
import TenantBackup

@main
struct TenantBackupCommand: AsyncParsableCommand {
    static func main() async {
        MemoryTuning.apply()
        do {
            var command = try parseAsRoot()
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch {
            exit(withError: error)
        }
    }

    static let configuration = CommandConfiguration(
        commandName: "tenant-backup",
        abstract: "Back up each tenant schema of a PostgreSQL database into S3, and manage those backups.",
        discussion: """
            Settings come from an optional YAML file (--config, $TENANT_BACKUP_CONFIG, or \
            /etc/tenant-backup/config.yaml when present), then the environment, then the files of \
            $CREDENTIALS_DIRECTORY. With no file, the environment is enough:

              PostgreSQL   PGHOST PGPORT PGUSER PGDATABASE PGPASSWORD ... (libpq), or DATABASE_URL
              S3           AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY [AWS_SESSION_TOKEN]
                           AWS_STORAGE_BUCKET_NAME AWS_S3_REGION_NAME [AWS_ENDPOINT_URL_S3]
                           [AWS_CA_BUNDLE] (a private CA's PEM file, for an https:// endpoint)
              tenants      TENANT_BACKUP_TENANT_QUERY TENANT_BACKUP_INCLUDE TENANT_BACKUP_EXCLUDE
                           TENANT_BACKUP_SHARED_SCHEMAS (default: public)
              other        TENANT_BACKUP_S3_PREFIX TENANT_BACKUP_S3_ADDRESSING_STYLE TENANT_BACKUP_PG_DUMP

            An existing .env file (the old system's) can be used as it is with --env-file.
            """,
        version: TenantBackupVersion.current,
        subcommands: [
            RunCommand.self, BackupCommand.self, PruneCommand.self, ListCommand.self, DownloadCommand.self, DeleteCommand.self, UndeleteCommand.self, PresignCommand.self,
            RestoreCommand.self, VerifyCommand.self, AdoptCommand.self, AuditCommand.self, TokenCommand.self, SigningKeyCommand.self, DoctorCommand.self, ConfigCommand.self,
        ])
}

/// Options every subcommand shares.
struct GlobalOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("YAML configuration file.", valueName: "file"))
    var config: String?

    @Option(name: .long, help: ArgumentHelp(
        "Read KEY=value lines from this .env file; variables already set in the environment win.", valueName: "file"))
    var envFile: String?

    @Option(name: .long, help: ArgumentHelp(
        "Log level: trace, debug, info, notice, warning, error, critical (default: logging.level, info). debug adds each S3 "
            + "request's outcome and each part; trace also each S3 request as it starts and each backup considered by retention.",
        valueName: "level"))
    var logLevel: Logger.Level?

    /// Applies --env-file to this process (libpq and pg_dump read PG* from it) and returns the environment.
    func environment() throws -> [String: String] {
        if let envFile {
            let text: String
            do {
                text = try String(contentsOfFile: envFile, encoding: .utf8)
            } catch {
                throw ValidationError("--env-file \(envFile): cannot be read (\(error.localizedDescription))")
            }
            for (key, value) in try DotEnv.parse(text, path: envFile) where ProcessInfo.processInfo.environment[key] == nil {
                setenv(key, value, 0)
            }
        }
        return ProcessInfo.processInfo.environment
    }

    /// The validated settings. An invalid configuration is not a usage error: it exits 78 (EX_CONFIG), as
    /// `config check` does, with the file, line and column of the problem.
    func settings(environment: [String: String]) throws -> Settings {
        do {
            return try SettingsLoader(environment: environment).load(configFile: config)
        } catch {
            FileHandle.standardError.write(Data("error: configuration invalid: \(error)\n".utf8))
            throw ExitCode(78)
        }
    }

    /// Sends logs where the settings say (journald or logfmt on stderr), at --log-level or the settings' level.
    func logger(settings: Settings? = nil, label: String = "tenant-backup") -> Logger {
        let level = logLevel
        let logging = settings?.logging ?? LoggingSettings()
        LoggingSystem.bootstrap { label in logging.makeHandler(label: label, level: level) }
        return Logger(label: label)
    }
}

extension Logger.Level: @retroactive ExpressibleByArgument {}
