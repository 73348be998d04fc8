import Foundation
import Testing

@testable import TenantBackup

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
        #expect(BackupSchema.display("bienestar") == "bienestar")
        #expect(BackupSchema.display("Clínica \"Sur\"") == "\"Clínica \"\"Sur\"\"\"")
    }
}
