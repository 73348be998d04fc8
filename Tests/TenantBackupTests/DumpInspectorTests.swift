import Foundation
import NIOCore
import Testing

@testable import TenantBackup

/// What `adopt` learns from an old backup with no manifest, pure: whether the dump is complete, which schemas
/// its statements create objects in, and which other clinics' names it reaches for, fed in any chunking.
@Suite struct DumpInspectorTests {
    static let header = """
        --
        -- PostgreSQL database dump
        --

        -- Dumped from database version 15.8 (Debian 15.8-1.pgdg120+1)
        -- Dumped by pg_dump version 15.8 (Debian 15.8-1.pgdg120+1)

        SET statement_timeout = 0;

        """

    static let footer = """

        --
        -- PostgreSQL database dump complete
        --


        """

    static func dump(_ body: String, complete: Bool = true) -> String {
        header + body + (complete ? footer : "")
    }

    static let clinic = """
        CREATE SCHEMA bienestar;
        CREATE TABLE bienestar.notes (
            id integer NOT NULL,
            body text
        );
        CREATE SEQUENCE bienestar.notes_id_seq
            AS integer;
        COPY bienestar.notes (id, body) FROM stdin;
        1\tthe note names mindcare.patients and ends with -- PostgreSQL database dump complete
        \\.

        """

    /// Feeds `text` in chunks of `size` bytes, as a stream arrives.
    static func inspect(_ text: String, chunk size: Int, watching: Set<String> = []) -> DumpInspector {
        var inspector = DumpInspector()
        inspector.watching = watching
        let bytes = Array(text.utf8)
        var start = 0
        while start < bytes.count {
            let end = min(bytes.count, start + size)
            inspector.consume(ByteBuffer(bytes: bytes[start..<end]))
            start = end
        }
        inspector.finish()
        return inspector
    }

    @Test(arguments: [1, 7, 4096])
    func aCompleteDumpOfOneSchemaSaysSoInAnyChunking(chunk: Int) {
        let inspector = Self.inspect(Self.dump(Self.clinic), chunk: chunk, watching: ["mindcare"])
        #expect(inspector.isComplete)
        #expect(inspector.schemas == ["bienestar"])
        #expect(inspector.pgDumpVersion == "15.8 (Debian 15.8-1.pgdg120+1)")
        #expect(inspector.serverVersion == "15.8 (Debian 15.8-1.pgdg120+1)")
        // COPY data is a clinic's text, not SQL: a name in it reaches for nothing.
        #expect(inspector.referenced.isEmpty)
    }

    @Test func aDumpCutShortIsNotComplete() {
        #expect(!Self.inspect(Self.dump(Self.clinic, complete: false), chunk: 64).isComplete)
        // Cut inside the COPY data, right after a line that reads like the closing one.
        let insideCopy = Self.header + "COPY bienestar.notes (id, body) FROM stdin;\n-- PostgreSQL database dump complete\n"
        #expect(!Self.inspect(insideCopy, chunk: 64).isComplete)
        // Statements after the closing line: not what pg_dump writes.
        #expect(!Self.inspect(Self.dump(Self.clinic) + "DROP SCHEMA mindcare CASCADE;\n", chunk: 64).isComplete)
        // pg_dump 17's closing \unrestrict, after the line, is still complete.
        #expect(Self.inspect(Self.dump(Self.clinic) + "\\unrestrict abc123\n", chunk: 64).isComplete)
    }

    @Test func everySchemaAStatementCreatesObjectsInIsFound() {
        let body = Self.clinic + """
            CREATE TABLE "Clínica \"\"Sur\"\"".agenda (id integer);
            CREATE UNLOGGED TABLE cache.hits (id integer);
            CREATE VIEW reports.daily AS SELECT 1;
            CREATE MATERIALIZED VIEW reports.monthly AS SELECT 1;
            COPY mindcare.patients (id) FROM stdin;
            \\.

            """
        let inspector = Self.inspect(Self.dump(body), chunk: 13)
        #expect(inspector.schemas == ["bienestar", "Clínica \"Sur\"", "cache", "reports", "mindcare"])
        #expect(inspector.isComplete)
    }

    @Test func aStatementNamingAWatchedSchemaIsReported() {
        let body = Self.clinic + "CREATE TABLE bienestar.stolen AS SELECT * FROM mindcare.patients;\nSELECT maxmindcare.f();\n"
        let inspector = Self.inspect(Self.dump(body), chunk: 5, watching: ["mindcare", "maxmindcare", "other"])
        #expect(inspector.referenced == ["mindcare", "maxmindcare"])
        // `maxmindcare.` contains `mindcare.`: only a name that starts an identifier counts.
        #expect(!DumpInspector.names("mindcare.", in: "SELECT maxmindcare.f()"))
        #expect(DumpInspector.names("mindcare.", in: "SELECT (mindcare.f())"))
        #expect(!DumpInspector.names("mindcare.", in: "SELECT \"xmindcare.f\""))
    }

    @Test func anOverlongLineNeverCountsAsTheClosingOne() {
        let long = String(repeating: "x", count: 9000)
        let text = Self.dump(Self.clinic) + "-- " + long + "\n"
        #expect(!Self.inspect(text, chunk: 1000).isComplete)
    }

    @Test func identifiersAreReadAsPgDumpQuotesThem() {
        #expect(QualifiedName.parseIdentifier("bienestar") == "bienestar")
        #expect(QualifiedName.parseIdentifier("\"Clínica \"\"Sur\"\"\"") == "Clínica \"Sur\"")
        #expect(QualifiedName.parseIdentifier("two words") == nil)
        #expect(QualifiedName.parseIdentifier("a.b") == nil)
        #expect(QualifiedName.parseIdentifier("") == nil)
        #expect(DumpInspector.qualifiedPrefix("\"a b\".\"c (d)\" (id integer)") == "\"a b\".\"c (d)\"")
    }
}
