import Foundation
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

    @Test(arguments: [
        "postgresql://postgres:\(password)@[127.0.0.1/clinic",
        "postgres:\(password)@127.0.0.1/clinic",
    ])
    func noCommandPrintsThePasswordOfAMalformedURL(url: String) async throws {
        var environment = services.environment
        environment["DATABASE_URL"] = url
        environment["AWS_STORAGE_BUCKET_NAME"] = "never-reached"
        for arguments in [["doctor"], ["backup"], ["config", "check"], ["prune", "--dry-run"]] {
            let (status, output) = try await DoctorCommandTests.runExecutable(arguments, environment: environment)
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
        var environment = services.environment
        environment["DATABASE_URL"] = url
        environment["AWS_STORAGE_BUCKET_NAME"] = "never-reached"
        for arguments in [["doctor"], ["backup"], ["config", "check"], ["run", "--once"]] {
            let (_, output) = try await DoctorCommandTests.runExecutable(arguments, environment: environment)
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
