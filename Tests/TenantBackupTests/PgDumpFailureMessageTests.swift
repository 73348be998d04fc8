import Foundation
import NIOCore
import Testing

@testable import TenantBackup

@Suite struct PgDumpFailureMessageTests {
    @Test func pgDumpsAnswerToOurOwnStopIsLeftOut() {
        let stderr = "pg_dump: dumping contents of table \"clinic.visits\"\npg_dump: terminated by user\n"
        let timeout = PgDumpFailure(reason: .noOutputTimeout(.seconds(600)), stderr: stderr)
        #expect(!timeout.description.contains("terminated by user"))
        #expect(timeout.description.contains("backup.no_output_timeout"))
        #expect(!PgDumpFailure(reason: .cancelled, stderr: stderr).description.contains("terminated by user"))
        // Someone else stopped it: pg_dump's words are the evidence, and stay.
        #expect(PgDumpFailure(reason: .exited(1), stderr: stderr).description.contains("terminated by user"))
    }
}
