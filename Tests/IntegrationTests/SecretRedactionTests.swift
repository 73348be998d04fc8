import Foundation
import Subprocess
import TenantBackup
import TenantBackupTesting
import Testing

/// Issue 10, point 5: a malformed `DATABASE_URL` made libpq's error repeat the whole URL, password included,
/// in `doctor` and `backup` output (and so in the journal).
@Suite struct SecretRedactionTests {
    let services: TestServices
    static let password = "Zq-throwaway-\(UUID().uuidString.prefix(8))"

    init() throws {
        services = try TestServices()
    }

    /// Runs each command with `DATABASE_URL=url` (and a bucket that is never reached).
    func run(_ commands: [[String]], url: String) async throws -> [(arguments: [String], status: TerminationStatus, output: String)] {
        var environment = services.environment
        environment["DATABASE_URL"] = url
        environment["AWS_STORAGE_BUCKET_NAME"] = "never-reached"
        var results: [(arguments: [String], status: TerminationStatus, output: String)] = []
        for arguments in commands {
            let (status, output) = try await TestProcess.tenantBackup(arguments, environment)
            results.append((arguments, status, output))
        }
        return results
    }

    @Test(arguments: [
        "postgresql://postgres:\(password)@[127.0.0.1/clinic",
        "postgres:\(password)@127.0.0.1/clinic",
    ])
    func noCommandPrintsThePasswordOfAMalformedURL(url: String) async throws {
        for (arguments, status, output) in try await run([["doctor"], ["backup"], ["config", "check"], ["prune", "--dry-run"]], url: url) {
            #expect(status != .exited(0), "\(arguments): \(output)")
            #expect(!output.contains(Self.password), "\(arguments) printed the password:\n\(output)")
            #expect(output.contains("postgres.url"), "\(arguments): \(output)")
        }
    }

    /// Found by the adversarial trial: a password holding "/" or "@" (not percent-encoded) parses, and libpq
    /// then shows its pieces as a host or a port; a keyword string with spaces around "=" was shown whole.
    @Test(arguments: [
        "postgresql://postgres:Zq7Sec/\(password)@127.0.0.1:1/clinic",
        "postgresql://postgres:Zq7Sec@\(password)@127.0.0.1:1/clinic",
        "host=127.0.0.1 port=1 password = \(password) dbname=clinic bogus=1",
        "host=127.0.0.1 port=1 password = '\(password) with spaces' dbname=clinic",
    ])
    func passwordsWithSeparatorsOrSpacesAreNeverPrinted(url: String) async throws {
        for (arguments, _, output) in try await run([["doctor"], ["backup"], ["config", "check"], ["run", "--once"]], url: url) {
            #expect(!output.contains(Self.password), "\(arguments) printed the password:\n\(output)")
            #expect(!output.contains("Zq7Sec"), "\(arguments) printed part of the password:\n\(output)")
        }
    }

    @Test func aConnectionErrorNeverCarriesThePassword() throws {
        // Past the configuration's check (a library caller): libpq's own message is redacted too.
        let url = "postgresql://postgres:\(Self.password)@[127.0.0.1/clinic"
        #expect {
            _ = try PostgresConnection(connectionString: url, environment: services.environment)
        } throws: { error in
            let text = "\(error)"
            return text.contains("cannot connect") && !text.contains(Self.password)
        }
    }
}
