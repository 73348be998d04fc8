import Foundation
import NIOCore
import Testing

@testable import TenantBackup

@Suite struct PgDumpArgumentsTests {
    @Test func theSchemaIsAnExactQuotedPatternWithStrictNames() {
        let arguments = PgDumpArguments().arguments(schema: .tenant("a*\"b"))
        #expect(arguments.contains("--schema=\"a*\"\"b\""))
        #expect(arguments.contains("--strict-names"))
        #expect(arguments.contains("--format=plain"))
        #expect(!arguments.contains { $0.hasPrefix("--extension") })
    }

    @Test func sharedSchemasBringTheirExtensions() {
        #expect(PgDumpArguments().arguments(schema: .shared("public")).contains("--extension=*"))
    }

    @Test func theCyclesSnapshotIsPassedWhenThereIsOne() {
        #expect(PgDumpArguments().arguments(schema: .tenant("s"), snapshot: "00000003-0000001B-1").contains("--snapshot=00000003-0000001B-1"))
        #expect(!PgDumpArguments().arguments(schema: .tenant("s")).contains { $0.hasPrefix("--snapshot") })
    }

    @Test func customFormatIsUncompressedAndOptionsFollow() {
        let arguments = PgDumpArguments(format: .custom, extraOptions: ["--no-owner"], lockWaitTimeoutSeconds: 30)
            .arguments(schema: .tenant("s"))
        #expect(arguments.suffix(4) == ["--format=custom", "--compress=0", "--lock-wait-timeout=30s", "--no-owner"])
    }

    @Test func aConnectionStringBecomesVariablesNotArguments() throws {
        let variables = try DumpConnection.variables(for: "postgresql://backup:s3cr%40t@db.internal:6543/clinics?sslmode=require")
        #expect(variables["PGHOST"] == "db.internal")
        #expect(variables["PGPORT"] == "6543")
        #expect(variables["PGDATABASE"] == "clinics")
        #expect(variables["PGUSER"] == "backup")
        #expect(variables["PGPASSWORD"] == "s3cr@t")
        #expect(variables["PGSSLMODE"] == "require")
        #expect(throws: DumpConnection.InvalidConnectionString.self) { try DumpConnection.variables(for: "host=db bogus_keyword=1") }
    }
}
