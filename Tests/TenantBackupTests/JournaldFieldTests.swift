import Foundation
import Logging
import Testing

@testable import TenantBackup

@Suite struct JournaldFieldTests {
    @Test func metadataKeysBecomeValidJournaldFieldNames() {
        #expect(JournaldLogHandler.fieldName("tenant") == "TENANT")
        #expect(JournaldLogHandler.fieldName("s3_key") == "S3_KEY")
        #expect(JournaldLogHandler.fieldName("duration_ms") == "DURATION_MS")
        #expect(JournaldLogHandler.fieldName("sl-service") == "SL_SERVICE")
        #expect(JournaldLogHandler.fieldName("_private") == "PRIVATE")  // a leading _ is journald's own
        #expect(JournaldLogHandler.fieldName("3d.view") == "D_VIEW")
        #expect(JournaldLogHandler.fieldName("clínica") == "CL_NICA")
        #expect(JournaldLogHandler.fieldName("__") == nil)
    }

    @Test func levelsMapToSyslogPriorities() {
        #expect(JournaldLogHandler.priority(.critical) == 2)
        #expect(JournaldLogHandler.priority(.error) == 3)
        #expect(JournaldLogHandler.priority(.warning) == 4)
        #expect(JournaldLogHandler.priority(.notice) == 5)
        #expect(JournaldLogHandler.priority(.info) == 6)
        #expect(JournaldLogHandler.priority(.debug) == 7)
    }

    @Test func journaldIsChosenOnlyWhenStderrIsTheJournal() {
        var status = stat()
        fstat(2, &status)
        let ours = "\(status.st_dev):\(status.st_ino)"
        #expect(JournaldLogHandler.standardErrorIsJournal(environment: ["JOURNAL_STREAM": ours]))
        #expect(!JournaldLogHandler.standardErrorIsJournal(environment: ["JOURNAL_STREAM": "1:2"]))
        #expect(!JournaldLogHandler.standardErrorIsJournal(environment: [:]))
        #expect(LoggingSettings(format: .automatic).makeHandler(label: "t", environment: ["JOURNAL_STREAM": ours]) is JournaldLogHandler)
        #expect(LoggingSettings(format: .automatic).makeHandler(label: "t", environment: [:]) is LogfmtLogHandler)
        #expect(LoggingSettings(format: .logfmt).makeHandler(label: "t", environment: ["JOURNAL_STREAM": ours]) is LogfmtLogHandler)
    }
}
