import Foundation
import Testing

@testable import TenantBackup

@Suite struct S3EndpointTests {
    @Test func awsUsesVirtualHostedStyle() {
        let endpoint = S3Endpoint(settings: S3Settings(region: "eu-west-1"), bucket: "clinic-backups")
        #expect(endpoint.host == "clinic-backups.s3.eu-west-1.amazonaws.com")
        #expect(!endpoint.usesPathStyle)
        #expect(endpoint.hostHeader == "clinic-backups.s3.eu-west-1.amazonaws.com")
        #expect(endpoint.url(path: endpoint.path(key: "backups/a b/x"), query: [])
            == "https://clinic-backups.s3.eu-west-1.amazonaws.com/backups/a%20b/x")
    }

    @Test(arguments: ["http://127.0.0.1:9000", "http://localhost:9000", "http://[::1]:9000"])
    func ipAndLocalhostEndpointsUsePathStyle(url: String) {
        let endpoint = S3Endpoint(settings: S3Settings(endpoint: URL(string: url)!), bucket: "b")
        #expect(endpoint.usesPathStyle)
        #expect(endpoint.path(key: "k") == "/b/k")
        #expect(endpoint.hostHeader.hasSuffix(":9000"))
    }

    @Test func pathStyleCanBeForced() {
        let endpoint = S3Endpoint(settings: S3Settings(endpoint: URL(string: "https://minio.example.org")!, addressingStyle: .path), bucket: "b")
        #expect(endpoint.usesPathStyle)
        #expect(endpoint.hostHeader == "minio.example.org")
    }

    @Test func defaultPortsAreLeftOutOfTheHostHeader() {
        let endpoint = S3Endpoint(settings: S3Settings(endpoint: URL(string: "https://minio.example.org:443")!, addressingStyle: .path), bucket: "b")
        #expect(endpoint.hostHeader == "minio.example.org")
    }

    @Test func queryValuesAreEncodedSlashesIncluded() {
        let endpoint = S3Endpoint(settings: S3Settings(endpoint: URL(string: "http://127.0.0.1:9000")!), bucket: "b")
        #expect(endpoint.url(path: endpoint.path(key: nil), query: [("list-type", "2"), ("prefix", "backups/clinic/")])
            == "http://127.0.0.1:9000/b?list-type=2&prefix=backups%2Fclinic%2F")
    }
}

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

@Suite struct LogfmtLogHandlerTests {
    @Test func valuesWithSpacesAndQuotesAreQuoted() {
        #expect(LogfmtLogHandler.quote("plain") == "plain")
        #expect(LogfmtLogHandler.quote("Clínica \"Sur\"") == "\"Clínica \\\"Sur\\\"\"")
        #expect(LogfmtLogHandler.quote("a=b") == "\"a=b\"")
        #expect(LogfmtLogHandler.quote("line\nbreak") == "\"line\\nbreak\"")
        #expect(LogfmtLogHandler.quote("") == "\"\"")
    }
}

@Suite struct DoctorReportTests {
    @Test func aSkippedCheckIsNotAPass() {
        var report = DoctorReport()
        report.checks = [DoctorCheck(name: "a", outcome: .passed, detail: ""), DoctorCheck(name: "b", outcome: .skipped, detail: "")]
        #expect(!report.allPassed)
        report.checks.removeLast()
        #expect(report.allPassed)
        #expect(!DoctorReport().allPassed)
    }

    @Test func schemaNamesAreShownAsAnOperatorTypesThem() {
        #expect(Doctor.display("bienestar") == "bienestar")
        #expect(Doctor.display("Clínica \"Sur\"") == "\"Clínica \"\"Sur\"\"\"")
    }
}
