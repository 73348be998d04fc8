import Foundation
import Testing

@testable import TenantBackup

@Suite struct PgDumpLocatorTests {
    @Test func theServersMajorComesFirstThenNewerThenPath() {
        let candidates = PgDumpLocator.candidates(configured: nil, serverMajor: 15, installedMajors: [13, 16, 15], path: "/usr/bin:/bin")
        #expect(candidates == [
            "/usr/lib/postgresql/15/bin/pg_dump", "/usr/lib/postgresql/16/bin/pg_dump", "/usr/bin/pg_dump", "/bin/pg_dump",
        ])
    }

    @Test func aConfiguredPathIsTheOnlyCandidate() {
        #expect(PgDumpLocator.candidates(configured: "/opt/pg/pg_dump", serverMajor: 15, installedMajors: [15], path: "/usr/bin") == ["/opt/pg/pg_dump"])
    }

    @Test(arguments: [
        ("pg_dump (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)\n", 15, 18),
        ("pg_dump (PostgreSQL) 17.2\n", 17, 2),
        ("pg_dump (PostgreSQL) 18beta1\n", 18, 0),
    ])
    func versionIsParsed(output: String, major: Int, minor: Int) {
        let version = PgDumpLocator.parseVersion(output)
        #expect(version?.major == major)
        #expect(version?.minor == minor)
    }

    @Test func anOlderPgDumpCannotDumpANewerServer() {
        #expect(!PgDumpBinary(path: "p", major: 14, minor: 9).canDump(serverMajor: 15))
        #expect(PgDumpBinary(path: "p", major: 16, minor: 1).canDump(serverMajor: 15))
    }
}
