import Foundation
import Testing

@testable import TenantBackup

@Suite struct LogfmtLogHandlerTests {
    @Test func valuesWithSpacesAndQuotesAreQuoted() {
        #expect(LogfmtLogHandler.quote("plain") == "plain")
        #expect(LogfmtLogHandler.quote("Clínica \"Sur\"") == "\"Clínica \\\"Sur\\\"\"")
        #expect(LogfmtLogHandler.quote("a=b") == "\"a=b\"")
        #expect(LogfmtLogHandler.quote("line\nbreak") == "\"line\\nbreak\"")
        #expect(LogfmtLogHandler.quote("") == "\"\"")
    }
}
