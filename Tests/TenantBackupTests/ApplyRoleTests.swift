import Testing

@testable import TenantBackup

/// `--apply-as`: which roles may apply a dump, from the row the target's catalog answers.
@Suite struct ApplyRoleTests {
    /// rolsuper, createrole, createdb, replication, bypassrls, canlogin, memberships, held, reachable, owner, owner is superuser, database owner
    static let good: [String?] = ["f", "f", "f", "f", "f", "t", "0", "0", nil, "clinic_app", "f", "postgres", ""]

    func problem(_ change: (inout [String?]) -> Void, owner: String? = "clinic_app") -> String? {
        var row = Self.good
        change(&row)
        if case .refused(let problem) = ApplyRole.checkProblem(row, role: ApplyRole(role: "tb_apply", owner: owner), database: "live") { return problem }
        return nil
    }

    @Test func aPlainLoginRoleWithAnOrdinaryOwnerMayApply() {
        #expect(ApplyRole.checkProblem(Self.good, role: ApplyRole(role: "tb_apply", owner: "clinic_app"), database: "live") == .owner("clinic_app"))
    }

    @Test func everyRightPastOneSchemaIsRefused() {
        #expect(ApplyRole.checkProblem(nil, role: ApplyRole(role: "tb_apply"), database: "live") != .owner("clinic_app"))
        for (index, attribute) in [(0, "SUPERUSER"), (1, "CREATEROLE"), (2, "CREATEDB"), (3, "REPLICATION"), (4, "BYPASSRLS")] {
            #expect(problem { $0[index] = "t" }?.contains(attribute) == true)
        }
        #expect(problem { $0[5] = "f" }?.contains("cannot log in") == true)
        #expect(problem { $0[6] = "1" }?.contains("member of other roles") == true)
        #expect(problem { $0[7] = "2" }?.contains("owns objects or holds privileges") == true)
        #expect(problem { $0[8] = "mindcare" }?.contains("other clinics' schemas (mindcare)") == true)
        #expect(problem { $0[9] = nil }?.contains("no such role") == true)
        #expect(problem { $0[9] = "tb_apply" }?.contains("the --apply-as role itself") == true)
        #expect(problem({ $0[10] = "t" }, owner: nil)?.contains("owned by superuser") == true)
        #expect(problem { $0[10] = "t" }?.contains("is a superuser") == true)
        #expect(problem { $0[12] = "pg_execute_server_program" }?.contains("--owner clinic_app has pg_execute_server_program") == true)
        #expect(problem { $0[12] = "CREATEROLE" }?.contains("CREATEROLE") == true)
    }

    @Test func theGrantsAndTheHandOverQuoteEveryName() {
        let sql = ApplyRole(role: "tb \"apply\"").grants(database: "my db", tenant: "bienestar", shared: ["public"]).joined(separator: ";\n")
        #expect(sql.contains("GRANT CONNECT ON DATABASE \"my db\" TO \"tb \"\"apply\"\"\""))
        #expect(sql.contains("CREATE SCHEMA \"bienestar\" AUTHORIZATION \"tb \"\"apply\"\"\""))
        #expect(sql.contains("CONNECTION LIMIT 1") && !sql.contains("CREATE ON DATABASE"))
        #expect(sql.contains("GRANT REFERENCES ON ALL TABLES IN SCHEMA \"public\" TO"))
        #expect(ApplyRole.handOver(role: "tb_apply", to: "Clinic") == ["REASSIGN OWNED BY \"tb_apply\" TO \"Clinic\"", "DROP OWNED BY \"tb_apply\""])
        #expect(ApplyRole.textArray(["a\"b", "c"]) == "{\"a\\\"b\",\"c\"}")
    }
}
