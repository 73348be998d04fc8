import Foundation
import Testing

@testable import TenantBackup

/// Issue 17, acceptance 4: within a period, retention keeps a backup a manifest vouches for over one without,
/// and never a marked (proved broken or foreign) one in place of another; with every rank equal, restic's
/// newest-of-each-period rule is unchanged (the golden and oracle suites).
@Suite struct RetentionPreferenceTests {
    static let now = Date(timeIntervalSince1970: 1_764_633_600)  // 2025-12-02T00:00:00Z
    static let policy = RetentionPolicy(keepLast: 1, keepDaily: 7, keepWeekly: 4, keepMonthly: 12)

    static func at(daysAgo: Int, hour: Int) -> Date {
        now.addingTimeInterval(-Double(daysAgo) * 86400 + Double(hour) * 3600)
    }

    @Test func everyDayKeepsItsGoodDumpOverItsTruncatedRetries() {
        var candidates: [RetentionCandidate] = []
        for day in 1...10 {
            // The adopted, complete dump at 02:00; two truncated retries later that day, marked by adopt.
            candidates.append(RetentionCandidate(key: "good-\(day)", timestamp: Self.at(daysAgo: day, hour: 2), size: 100, vouched: true))
            candidates.append(RetentionCandidate(key: "retry-a-\(day)", timestamp: Self.at(daysAgo: day, hour: 9), size: 10, marked: true))
            candidates.append(RetentionCandidate(key: "retry-b-\(day)", timestamp: Self.at(daysAgo: day, hour: 10), size: 10, marked: true))
        }
        let plan = RetentionPlanner.plan(candidates, policy: Self.policy, now: Self.now)
        let kept = Set(plan.kept.map(\.candidate.key))
        for day in 1...7 { #expect(kept.contains("good-\(day)"), "day \(day) lost its good dump: \(kept.sorted())") }
        let markedKept = plan.kept.filter { $0.candidate.marked }
        // Only the newest may be a marked one (the brake: never deleted, and keep_last counts backups, not periods);
        // no period rule keeps a marked one.
        #expect(markedKept.map(\.candidate.key) == ["retry-b-1"], "\(markedKept)")
        #expect(markedKept.allSatisfy { Set($0.reasons).isSubset(of: [.last, .newest]) }, "\(markedKept)")
    }

    @Test func aBackupWithAManifestWinsItsDayOverANewerOneWithout() {
        let candidates = [
            RetentionCandidate(key: "newer-unvouched", timestamp: Self.at(daysAgo: 3, hour: 20), size: 10),
            RetentionCandidate(key: "older-vouched", timestamp: Self.at(daysAgo: 3, hour: 2), size: 10, vouched: true),
            RetentionCandidate(key: "today", timestamp: Self.at(daysAgo: 0, hour: -1), size: 10, vouched: true),
        ]
        let plan = RetentionPlanner.plan(candidates, policy: RetentionPolicy(keepLast: 1, keepDaily: 2, keepWeekly: 0, keepMonthly: 0), now: Self.now)
        let reasons = Dictionary(uniqueKeysWithValues: plan.decisions.map { ($0.candidate.key, $0.reasons) })
        #expect(reasons["older-vouched"]?.contains(.daily) == true)
        #expect(reasons["newer-unvouched"] == [])
    }

    @Test func equalRanksKeepTheNewestOfEachPeriodAsBefore() {
        let candidates = (0..<30).map { RetentionCandidate(key: "k\($0)", timestamp: Self.now.addingTimeInterval(-Double($0) * 43_200), size: 1) }
        let marked = candidates.map { RetentionCandidate(key: $0.key, timestamp: $0.timestamp, size: 1, marked: true) }
        let plain = RetentionPlanner.plan(candidates, policy: Self.policy, now: Self.now)
        let allMarked = RetentionPlanner.plan(marked, policy: Self.policy, now: Self.now)
        #expect(plain.decisions.map(\.reasons) == allMarked.decisions.map(\.reasons))
        // Twice a day (noon and midnight): each day's noon backup, the newer, is its daily one.
        #expect(plain.decisions.filter { $0.reasons.contains(.daily) }.allSatisfy { let n = Int($0.candidate.key.dropFirst())!; return n == 0 || n % 2 == 1 })
    }
}
