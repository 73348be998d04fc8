import Foundation
import Testing
import TenantBackupTesting

@testable import TenantBackup

/// Authentication from our tokens file: the header's form, revocation without a restart, throttling.
@Suite struct TokenAuthenticatorTests {
    func authenticator(_ path: String) -> TokenAuthenticator {
        var settings = Settings()
        settings.api.tokensFile = path
        return TokenAuthenticator(settings: settings, environment: [:], logger: .quiet)
    }

    @Test func theHeaderIsDRFsTokenForm() {
        #expect(TokenAuthenticator.token(fromHeader: "Token abc") == "abc")
        #expect(TokenAuthenticator.token(fromHeader: "token  abc") == "abc")
        for header in [nil, "", "Token", "Token ", "Bearer abc", "Token a b", "Basic dXNlcjpwYXNz", "Token " + String(repeating: "x", count: 600)] {
            #expect(TokenAuthenticator.token(fromHeader: header) == nil, "\(header ?? "nil")")
        }
    }

    @Test func aRevokedTokenStopsWorkingWithTheNextRequest() async throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("auth-\(UUID().uuidString.prefix(8)).json").path
        defer { try? FileManager.default.removeItem(atPath: path); try? FileManager.default.removeItem(atPath: path + ".lock") }
        let file = TokenFile(path: path)
        let (token, record) = try file.create(tenant: "bienestar", note: nil)
        let (other, _) = try file.create(tenant: "mindcare", note: nil)
        let auth = authenticator(path)
        #expect(await auth.authenticate(token) == Authenticated(tenant: "bienestar", actor: "token:\(record.id)"))
        #expect(await auth.authenticate(other)?.tenant == "mindcare")
        #expect(await auth.authenticate("tbk_guess") == nil)
        try file.revoke(id: record.id)
        #expect(await auth.authenticate(token) == nil)
        #expect(await auth.authenticate(other)?.tenant == "mindcare")
        // A file that cannot be read refuses every token rather than keeping old ones.
        try "garbage".write(toFile: path, atomically: true, encoding: .utf8)
        #expect(await auth.authenticate(other) == nil)
    }

    @Test func theAPIListensOnLoopbackOnly() throws {
        for address in ["127.0.0.1:8080", "[::1]:8080", "localhost:8080"] {
            let settings = try SettingsLoader(environment: ["TENANT_BACKUP_API_LISTEN": address], defaultConfigPath: "/nonexistent").load()
            #expect(settings.api.listen?.port == 8080, "\(address)")
        }
        for address in ["0.0.0.0:8080", "10.0.0.5:8080", "example.org:443"] {
            #expect {
                try SettingsLoader(environment: ["TENANT_BACKUP_API_LISTEN": address], defaultConfigPath: "/nonexistent").load()
            } throws: { error in
                "\(error)".contains("loopback")
            }
        }
        #expect(try SettingsLoader(environment: [:], defaultConfigPath: "/nonexistent").load().api.listen == nil, "off by default")
    }

    @Test func repeatedFailuresFromOneAddressAreThrottledForTheWindow() {
        let throttle = AuthenticationThrottle(limit: 3, window: 60)
        let start = Date(timeIntervalSince1970: 1_796_000_000)
        for second in 0..<3 {
            #expect(!throttle.isLimited("10.0.0.1", now: start.addingTimeInterval(Double(second))))
            throttle.recordFailure("10.0.0.1", now: start.addingTimeInterval(Double(second)))
        }
        #expect(throttle.isLimited("10.0.0.1", now: start.addingTimeInterval(5)))
        #expect(!throttle.isLimited("10.0.0.2", now: start.addingTimeInterval(5)))
        #expect(!throttle.isLimited("10.0.0.1", now: start.addingTimeInterval(63)))
    }
}
