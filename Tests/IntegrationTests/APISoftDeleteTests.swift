import Foundation
import NIOCore
import NIOFoundationCompat
import TenantBackup
import TenantBackupTesting
import Testing

/// Issue 18, acceptance 2: a clinic's token cannot destroy the clinic's history. Every delete through the API
/// is soft (a signed mark beside the backup hides it from the clinic; retention purges it after the grace),
/// and a floor (retention's newest, newest verified, monthly and yearly backups) is never deleted at all.
extension HTTPAPITests {
    /// Earlier days of bienestar's history: its newest real backup copied to one key per day (``copyBackup(_:to:client:)``,
    /// each manifest re-signed for its key, as the backup host would have written it). Oldest last.
    func history(days: Int, server: Server) async throws -> [String] {
        let client = services.s3Client(bucket: server.bucket)
        var keys: [String] = []
        for day in 1...days { keys.append(try await copyBackup(server.keys[1], to: Date().addingTimeInterval(-Double(day) * 86400), client: client)) }
        return keys
    }

    func delete(_ key: String, server: Server) async throws -> Answer {
        try await request("DELETE", server.base + "/api/backups/cloud/delete/", token: server.bienestar, body: "{\"s3_key\": \"\(key)\"}")
    }

    func listedKeys(server: Server) async throws -> [String] {
        let list = try await get(server.base + "/api/backups/cloud/list/", token: server.bienestar)
        try #require(list.status == 200)
        return (list.json?["backups"] as? [[String: Any]] ?? []).compactMap { $0["s3_key"] as? String }
    }

    @Test func aClinicTokenDeletingEverythingInALoopLeavesItsHistoryRecoverable() async throws {
        let grace = 60.0
        try await withServer(extra: ["TENANT_BACKUP_API_DELETE_GRACE": "\(Int(grace))s"]) { server in
            let client = services.s3Client(bucket: server.bucket)
            let all = server.keys + (try await history(days: 20, server: server))
            #expect(Set(try await listedKeys(server: server)) == Set(all))

            // The hostile token holder: delete whatever the list shows, again and again, until nothing more goes.
            var deleted: [String] = []
            var deletedAt: [String: Date] = [:]
            var refused: Set<String> = []
            let started = Date()
            while true {
                var progress = false
                for key in try await listedKeys(server: server) where !refused.contains(key) {
                    let answer = try await delete(key, server: server)
                    if answer.status == 200 {
                        #expect(answer.json?["s3_key"] as? String == key && answer.json?["message"] as? String == "Backup deleted")
                        let purgeAfter = try #require(answer.json?["purge_after"] as? String)
                        #expect(purgeAfter.range(of: #"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$"#, options: .regularExpression) != nil)
                        deleted.append(key)
                        deletedAt[key] = Date()
                        progress = true
                    } else {
                        #expect(answer.status == 409, "\(key): \(answer.status) \(String(buffer: answer.body))")
                        #expect((answer.json?["error"] as? String)?.contains("kept by the retention policy") == true)
                        refused.insert(key)
                    }
                }
                if !progress { break }
            }
            let lastDeletion = Date()
            // Every byte of what the clinic deleted is still in the bucket (checked before any prune: on a slow
            // machine the grace of the first deletions may pass while the loop runs).
            for key in deleted {
                #expect(try await client.headObject(key: key).size > 0)
                #expect(try await client.headObject(key: key + BackupKey.manifestSuffix).size > 0)
            }
            let firstPurge = started.addingTimeInterval(grace)
            // Before the grace passes, a prune purges nothing (it holds each deleted backup).
            let (earlyStatus, earlyOutput) = try await TestProcess.tenantBackup(["prune", "--tenant", "bienestar"], server.environment)
            if Date() < firstPurge {
                #expect(earlyStatus == .exited(0) && !earlyOutput.contains("purge ") && earlyOutput.contains("hold "), "\(earlyOutput)")
                for key in deleted { #expect((try? await client.headObject(key: key))?.size ?? 0 > 0, "\(key) purged before its grace") }
            }
            // The floor held: the newest (also the newest verified and December's monthly), November's monthly, and
            // the oldest (a monthly rule with months left keeps it); everything else went.
            let floor = Set(all).subtracting(deleted)
            #expect(floor == refused)
            #expect(floor.contains(server.keys[1]) && floor.contains(all.last!), "\(floor.sorted())")
            #expect(floor.count <= 4 && deleted.count >= all.count - 4, "\(floor.sorted())")
            // What the floor keeps is exactly what a plan of the backups not deleted keeps as newest/verified/monthly.
            let candidates = floor.map { key in
                RetentionCandidate(key: key, timestamp: BackupKey.parse(key, prefix: "")!.timestamp, size: 1, verified: true, vouched: true)
            }
            for decision in RetentionPlanner.plan(candidates, policy: RetentionPolicy(), now: Date()).decisions {
                #expect(!Set(decision.reasons).isDisjoint(with: BackupAccess.floorRules), "\(decision.candidate.key): \(decision.reasons)")
            }

            // The clinic no longer sees what it deleted; a second delete, a download, a get-url: as if it were gone.
            #expect(Set(try await listedKeys(server: server)) == floor)
            let gone = deleted[0]
            #expect(try await delete(gone, server: server).status == 404)
            #expect(try await request("POST", server.base + "/api/backups/cloud/download/", token: server.bienestar, body: "{\"s3_key\": \"\(gone)\"}").status == 404)
            #expect(try await request("POST", server.base + "/api/backups/cloud/get-url/", token: server.bienestar, body: "{\"s3_key\": \"\(gone)\"}").status == 404)
            // ... and the operator sees each one, deleted, with its purge time.
            let (listStatus, listOutput, listErrors) = try await TestProcess.tenantBackupBytes(["list", "--tenant", "bienestar", "--json"], server.environment)
            try #require(listStatus == .exited(0), "\(listErrors)")
            let operatorList = try #require(try JSONSerialization.jsonObject(with: Data(listOutput)) as? [String: Any])
            let states = Dictionary(uniqueKeysWithValues: (operatorList["backups"] as? [[String: Any]] ?? []).map { ($0["s3_key"] as? String ?? "", $0["state"] as? String ?? "") })
            #expect(states.count == all.count && deleted.allSatisfy { states[$0] == "deleted" } && floor.allSatisfy { states[$0] == "verified" })

            // The bucket writer: an unsigned deletion mark beside a floor backup hides nothing and purges nothing.
            let target = floor.sorted().first { $0 != server.keys[1] }!
            let forged = DeletionMark(key: target, bytes: try await client.headObject(key: target).size, deletedBy: "attacker", deletedAt: Date(), purgeAfter: Date())
            _ = try await client.putObject(key: target + BackupKey.deletionSuffix, body: ByteBuffer(data: try forged.encoded()))
            #expect(Set(try await listedKeys(server: server)) == floor)

            // The operator brings back yesterday's (a daily one: retention keeps it).
            let back = deleted.filter { !server.keys.contains($0) }.sorted().last!
            let savedMark = try await client.getObject(key: back + BackupKey.deletionSuffix)
            let (undeleteStatus, undeleteOutput) = try await TestProcess.tenantBackup(["undelete", "--tenant", "bienestar", back], server.environment)
            #expect(undeleteStatus == .exited(0) && undeleteOutput.contains("brought back"), "\(undeleteOutput)")
            #expect(Set(try await listedKeys(server: server)) == floor.union([back]))
            let (againStatus, againOutput) = try await TestProcess.tenantBackup(["undelete", "--tenant", "bienestar", back], server.environment)
            #expect(againStatus != .exited(0) && againOutput.contains("is not deleted"), "\(againOutput)")

            // After the grace, every deleted backup goes for good.
            let wait = grace - Date().timeIntervalSince(lastDeletion) + 2
            if wait > 0 { try await Task.sleep(for: .seconds(wait)) }
            let (pruneStatus, pruneOutput, pruneErrors) = try await TestProcess.tenantBackupBytes(["prune", "--tenant", "bienestar", "--json"], server.environment)
            try #require(pruneStatus == .exited(0), "\(pruneErrors)")
            let report = try #require(try JSONSerialization.jsonObject(with: Data(pruneOutput)) as? [String: Any])
            let purged = ((report["tenants"] as? [[String: Any]])?.first?["purged"] as? [String]) ?? []
            #expect(Set(purged) == Set(deleted).subtracting([back]))
            let left = Set(try await client.listKeys(prefix: "backups/bienestar/"))
            for key in deleted where key != back {
                #expect(!left.contains(key) && !left.contains(key + BackupKey.manifestSuffix) && !left.contains(key + BackupKey.deletionSuffix))
            }
            #expect(floor.union([back]).isSubset(of: left), "\(left.sorted())")
            #expect(left.contains(target + BackupKey.deletionSuffix), "the forged mark is no mark of ours: retention neither honours nor removes it")

            // The bucket writer puts the saved, genuinely signed mark of the backup brought back in place again (a
            // replay, after its grace): the store's time of the object is not the mark's, so it counts no more: the
            // backup stays visible, and retention does not purge it.
            let replayAfter = deletedAt[back]!.addingTimeInterval(DeletionMark.writeWindow + 5)
            if replayAfter > Date() { try await Task.sleep(for: .seconds(replayAfter.timeIntervalSinceNow)) }
            _ = try await client.putObject(key: back + BackupKey.deletionSuffix, body: savedMark)
            #expect(Set(try await listedKeys(server: server)).contains(back))
            let (replayStatus, replayOutput) = try await TestProcess.tenantBackup(["prune", "--tenant", "bienestar"], server.environment)
            #expect(replayStatus == .exited(0) && !replayOutput.contains("purge "), "\(replayOutput)")
            #expect(try await client.headObject(key: back).size > 0)

            // Both steps are on the clinic's audit trail.
            let audit = try #require(try await get(server.base + "/api/auditlog/?page=1", token: server.bienestar).json)
            let actions = (audit["results"] as? [[String: Any]] ?? []).compactMap { $0["action"] as? String }
            #expect(actions.contains("undelete") && actions.filter { $0 == "purge" }.count == min(deleted.count - 1, 40), "\(actions)")
        }
    }
}
