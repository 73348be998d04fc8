import ArgumentParser
import Foundation
import TenantBackup

struct SigningKeyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "signing-key",
        abstract: "Create the manifest signing key, or print its public key.",
        discussion: """
            Every manifest a backup writes is signed (Ed25519) with a key the bucket does not hold, so whoever can \
            write to the bucket cannot make a replaced object restore. The key lives in signing.key_file \
            ($TENANT_BACKUP_SIGNING_KEY_FILE; default: the credential signing-key under systemd's LoadCredential=, \
            else $STATE_DIRECTORY/signing.key, else ~/.local/state/tenant-backup/signing.key); a backup creates it \
            there when it is missing. Restore and drill hosts need only its public key, in signing.public_keys. \
            To rotate: generate a new key, keep the old public key in signing.public_keys for as long as backups \
            signed by it are kept.
            """,
        subcommands: [Generate.self, Public.self])

    struct Generate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Write a new private key (0600) and print its public key.")

        @OptionGroup var global: GlobalOptions

        @Option(help: ArgumentHelp("Where to write it (default: signing.key_file); refused when it exists.", valueName: "file"))
        var output: String?

        func run() async throws {
            let environment = try global.environment()
            let settings = try global.settings(environment: environment)
            let path = output ?? settings.signing.resolvedKeyFile(environment: environment)
            guard !FileManager.default.fileExists(atPath: path) else {
                FileHandle.standardError.write(Data("error: \(path) exists; a signing key is never replaced (move it away first, and keep its public key trusted while its backups are kept)\n".utf8))
                throw ExitCode(1)
            }
            do {
                let (key, _) = try SigningKey.loadOrCreate(path: path)
                print(key.publicKey)
                FileHandle.standardError.write(Data("signing key written to \(path) (0600); put the public key above in signing.public_keys on restore and drill hosts\n".utf8))
            } catch {
                FileHandle.standardError.write(Data("error: \(error)\n".utf8))
                throw ExitCode(1)
            }
        }
    }

    struct Public: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print the public key of signing.key_file, and the other trusted keys.")

        @OptionGroup var global: GlobalOptions

        func run() async throws {
            let environment = try global.environment()
            let settings = try global.settings(environment: environment)
            let path = settings.signing.resolvedKeyFile(environment: environment)
            do {
                let key = try SigningKey.load(path: path)
                print(key.publicKey)
                FileHandle.standardError.write(Data("key \(key.publicKey.id), from \(path)\n".utf8))
            } catch {
                FileHandle.standardError.write(Data("error: \(error)\n".utf8))
                if settings.signing.publicKeys.isEmpty { throw ExitCode(1) }
            }
            for text in settings.signing.publicKeys {
                if let key = TrustedKey(text: text) { print("\(key)  # trusted (signing.public_keys), key \(key.id)") }
            }
        }
    }
}
