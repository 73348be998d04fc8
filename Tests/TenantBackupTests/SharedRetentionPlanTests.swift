import Foundation
import Testing

@testable import TenantBackup

@Suite struct SharedRetentionPlanTests {
    let now = Date(timeIntervalSince1970: 1_795_918_530)

    func dump(_ hoursAgo: Double) -> RetentionCandidate {
        let key = BackupKey(prefix: "", area: .shared, schema: "public", timestamp: now.addingTimeInterval(-hoursAgo * 3600), suffix: ".sql.zst")
        return RetentionCandidate(key: key.key, timestamp: key.timestamp)
    }

    @Test func aSharedDumpIsKeptWhileNamedWhileRecentAndWhenNewest() {
        let dumps = [dump(-24 * 30), dump(1), dump(30), dump(60), dump(90)]
        let plan = RetentionRunner.planSharedDumps(dumps, named: [dumps[3].key], now: now, grace: 24 * 3600)
        let reasons = Dictionary(uniqueKeysWithValues: plan.decisions.map { ($0.candidate.key, $0.reasons) })
        #expect(reasons[dumps[0].key] == [.future])
        #expect(reasons[dumps[1].key] == [.newest, .recent])
        #expect(reasons[dumps[2].key] == [])
        #expect(reasons[dumps[3].key] == [.named])
        #expect(reasons[dumps[4].key] == [])
        #expect(plan.deleted.map(\.candidate.key).sorted() == [dumps[2].key, dumps[4].key].sorted())
    }

    @Test func theNewestSharedDumpSurvivesWhenNothingNamesIt() {
        let plan = RetentionRunner.planSharedDumps([dump(100), dump(200)], named: [], now: now, grace: 0)
        #expect(plan.kept.map(\.reasons) == [[.newest]])
    }
}
