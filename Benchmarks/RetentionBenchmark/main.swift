// Times RetentionPlanner.plan over 1,000,000 backups (one every 5 minutes, about 9.5 years, in
// Europe/Madrid with the default policy plus yearly), five runs, in a release build:
//
//   swift run -c release retention-benchmark
import Foundation
import TenantBackup

let count = Int(CommandLine.arguments.dropFirst().first ?? "") ?? 1_000_000
let newest = Date(timeIntervalSince1970: 1_795_918_530)
var candidates: [RetentionCandidate] = []
candidates.reserveCapacity(count)
for index in 0..<count {
    let timestamp = newest.addingTimeInterval(-Double(index) * 300)
    candidates.append(RetentionCandidate(key: "backups/t/\(index)", timestamp: timestamp, size: 1, verified: index % 7 == 0))
}
candidates.shuffle()
let policy = RetentionPolicy(keepYearly: 5, timeZone: TimeZone(identifier: "Europe/Madrid")!)
var timings: [Double] = []
var kept = 0
for _ in 0..<5 {
    let start = ContinuousClock.now
    let plan = RetentionPlanner.plan(candidates, policy: policy, now: newest)
    let elapsed = ContinuousClock.now - start
    timings.append(Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)
    kept = plan.kept.count
}
timings.sort()
print(String(format: "planned %d backups: kept %d; best %.3f s, median %.3f s, worst %.3f s", count, kept, timings[0], timings[2], timings[4]))
