import Testing

@testable import TenantBackup

@Suite struct RetentionRefusalTests {
    @Test func refusalsSayWhatHappenedWithoutTheAdviceOfOneInterface() {
        let refusals: [RetentionRefusal] = [
            .backupFailed, .noBackups, .newestTooOld(key: "backups/t/k", age: .seconds(100 * 3600), limit: .seconds(48 * 3600)),
            .tooManyDeletions(planned: 40, of: 60, limit: 0.5),
        ]
        for refusal in refusals { #expect(!refusal.description.contains("--"), "\(refusal)") }
        #expect(RetentionRefusal.newestTooOld(key: "backups/t/k", age: .seconds(100 * 3600), limit: .seconds(48 * 3600)).description
            == "the newest backup (backups/t/k) is 100 h old, older than retention.max_newest_age (48 h); back the tenant up first")
        #expect(RetentionRefusal.tooManyDeletions(planned: 40, of: 60, limit: 0.5).description.contains("40 of 60 (67 %)"))
    }

    @Test func onlyTheAgeAndFractionBrakesCanBeForced() {
        #expect(!RetentionRefusal.backupFailed.canBeForced)
        #expect(!RetentionRefusal.noBackups.canBeForced)
        #expect(RetentionRefusal.tooManyDeletions(planned: 2, of: 3, limit: 0.5).canBeForced)
    }
}
