import ArgumentParser
import Foundation
import TenantBackup

struct TokenCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "token",
        abstract: "Manage the HTTP API's own tokens (one tenant each).",
        discussion: """
            Tokens live in api.tokens_file (default \(APISettings.defaultTokensFile), mode 0600): only each \
            token's SHA-256 is stored, with an id, its tenant, a note, its creation and its last use. A token is \
            shown once, when it is created. The daemon rereads the file on SIGHUP and when it changes.
            """,
        subcommands: [Create.self, List.self, Revoke.self])

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a token for one tenant and print it once.")

        @OptionGroup var global: GlobalOptions

        @Option(help: ArgumentHelp("The tenant the token opens (exact schema name).", valueName: "name"))
        var tenant: String

        @Option(help: ArgumentHelp("Who or what it is for.", valueName: "text"))
        var note: String?

        @Flag(help: "Create it even though the database has no such clinic (yet).")
        var force = false

        func validate() throws {
            if tenant.isEmpty { throw ValidationError("--tenant must name a tenant") }
        }

        func run() async throws {
            let environment = try global.environment()
            let settings = try global.settings(environment: environment)
            let file = TokenFile(path: settings.api.tokensFile)
            if !force {
                let context = BackupContext(settings: settings, environment: environment, logger: global.logger(settings: settings))
                let tenants: [String]
                do {
                    tenants = try await context.inspectDatabase().discovered.tenants
                } catch {
                    FileHandle.standardError.write(Data("error: cannot check that \(BackupSchema.tenant(tenant)) exists: \(error); --force creates the token anyway\n".utf8))
                    throw ExitCode(1)
                }
                guard tenants.contains(tenant) else {
                    FileHandle.standardError.write(Data(
                        "error: the database has no clinic \(BackupSchema.display(tenant)) (names are exact); check the name, or pass --force to create a token for a clinic that does not exist yet\n".utf8))
                    throw ExitCode(1)
                }
            }
            do {
                let (token, record) = try file.create(tenant: tenant, note: note)
                print(token)
                FileHandle.standardError.write(Data("token \(record.id) for \(BackupSchema.tenant(tenant)) stored in \(file.path); it is not shown again\n".utf8))
            } catch {
                FileHandle.standardError.write(Data("error: \(error)\n".utf8))
                throw ExitCode(1)
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the tokens: ids, tenants, notes, creation and last use (never a token).")

        @OptionGroup var global: GlobalOptions

        @Flag(help: "Print JSON on stdout.")
        var json = false

        func run() async throws {
            let environment = try global.environment()
            let settings = try global.settings(environment: environment)
            let tokens: [APIToken]
            do {
                tokens = try TokenFile(path: settings.api.tokensFile).loadWithLastUse()
            } catch {
                FileHandle.standardError.write(Data("error: \(error)\n".utf8))
                throw ExitCode(1)
            }
            if json {
                try printJSON([
                    "tokens": tokens.map { token in
                        [
                            "id": token.id, "tenant": token.tenant, "note": token.note ?? NSNull(), "created_at": AuditRecord.iso8601(token.createdAt),
                            "last_used_at": token.lastUsedAt.map(AuditRecord.iso8601) ?? NSNull(),
                        ] as [String: Any]
                    }
                ])
                return
            }
            if tokens.isEmpty { print("no tokens in \(settings.api.tokensFile)") }
            for token in tokens {
                let used = token.lastUsedAt.map { "last used \(AuditRecord.iso8601($0))" } ?? "never used"
                print("\(token.id)  \(BackupSchema.display(token.tenant))  created \(AuditRecord.iso8601(token.createdAt))  \(used)\(token.note.map { "  \($0)" } ?? "")")
            }
        }
    }

    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Revoke a token by its id; the daemon refuses it from its next request.")

        @OptionGroup var global: GlobalOptions

        @Argument(help: ArgumentHelp("The token's id (token list).", valueName: "id"))
        var id: String

        func run() async throws {
            let environment = try global.environment()
            let settings = try global.settings(environment: environment)
            do {
                guard let removed = try TokenFile(path: settings.api.tokensFile).revoke(id: id) else {
                    FileHandle.standardError.write(Data("error: no token with id \(id) in \(settings.api.tokensFile) (token list shows them)\n".utf8))
                    throw ExitCode(1)
                }
                print("revoked token \(removed.id) of \(BackupSchema.tenant(removed.tenant))")
            } catch let error as TokenFileError {
                FileHandle.standardError.write(Data("error: \(error)\n".utf8))
                throw ExitCode(1)
            }
        }
    }
}
