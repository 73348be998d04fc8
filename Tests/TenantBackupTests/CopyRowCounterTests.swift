import Foundation
import NIOCore
import Testing

@testable import TenantBackup

@Suite struct CopyRowCounterTests {
    static let dump = """
        --
        -- PostgreSQL database dump
        --
        COPY "Clínica ""Sur"" x".patients (id, full_name, note) FROM stdin;
        1\tAna\tline one\\nline two
        2\tLuis\t\\.not the end
        3\tEva\t\\N
        \\.

        COPY bienestar.empty (id) FROM stdin;
        \\.
        COPY bienestar.appointments FROM stdin;
        10\t1
        \\.
        SELECT pg_catalog.setval('x', 3, true);

        """

    @Test(arguments: [1, 2, 3, 7, 64, 100_000])
    func countsRowsWhateverTheChunking(chunkSize: Int) {
        var counter = CopyRowCounter()
        let bytes = Array(Self.dump.utf8)
        var offset = 0
        while offset < bytes.count {
            counter.consume(ByteBuffer(bytes: bytes[offset..<min(offset + chunkSize, bytes.count)]))
            offset += chunkSize
        }
        #expect(counter.rowCounts == ["\"Clínica \"\"Sur\"\" x\".patients": 3, "bienestar.empty": 0, "bienestar.appointments": 1])
    }
}
