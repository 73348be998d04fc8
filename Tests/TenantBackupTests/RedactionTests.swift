import Foundation
import Testing

@testable import TenantBackup

@Suite struct RedactionTests {
    @Test(arguments: [
        ("postgresql://backup:s3cr3t@db.internal:5432/app", "postgresql://backup:***@db.internal:5432/app"),
        ("postgresql://backup@db/app", "postgresql://backup@db/app"),
        ("host=db user=backup password=s3cr3t dbname=app", "host=db user=backup password=*** dbname=app"),
        ("host=db password='a b\\' c' dbname=app", "host=db password=*** dbname=app"),
        ("postgresql://db/app?user=u&password=s3cr3t&sslmode=require", "postgresql://db/app?user=u&password=***&sslmode=require"),
    ])
    func passwordsAreRemoved(input: String, expected: String) {
        #expect(Redaction.connectionString(input) == expected)
    }

    /// Issue 10, point 5: libpq repeats a malformed URL whole; a URL without its scheme is a database name.
    @Test(arguments: [
        "postgresql://backup:Pa55-w0rd@[::1/app",
        "backup:Pa55-w0rd@db.internal/app",
        "postgresql://backup:Pa55-w0rd@db/app?nosuchoption=1",
        "postgresql://backup:Pa55%2Dw0rd@[db/app",
    ])
    func aMalformedURLIsRefusedWithoutItsPassword(url: String) {
        #expect {
            _ = try SettingsLoader(environment: ["DATABASE_URL": url], defaultConfigPath: "/nonexistent").load(yaml: "")
        } throws: { error in
            let text = "\(error)"
            return text.contains("postgres.url") && !text.contains("Pa55") && text.contains("***")
        }
        let message = Redaction.libpqMessage("invalid URI: \"\(url)\" and \(url.removingPercentEncoding ?? "")", connectionString: url)
        #expect(!message.contains("Pa55-w0rd") && !message.contains("Pa55%2Dw0rd"), "\(message)")
    }

    @Test func wellFormedConnectionStringsParse() {
        for url in ["postgresql://u@db/app", "postgres://u:p@db:5432/app?sslmode=require", "host=db user=u dbname=app", "postgresql:///app"] {
            #expect(PostgresConnection.parseProblem(url) == nil, "\(url)")
        }
    }

    @Test func pgpasswordIsRemovedFromLibpqMessages() {
        #expect(Redaction.libpqMessage("password authentication failed: hunter22", connectionString: nil, environment: ["PGPASSWORD": "hunter22"])
            == "password authentication failed: ***")
    }
}
