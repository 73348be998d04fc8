import Foundation

extension BackupAccess {
    /// Refuses `--apply-as` where it cannot keep its promise, and checks the role and the owner on the target
    /// (``ApplyRole/checkProblem(_:role:database:)``). Returns the role that will own the restored objects.
    func checkApplyRole(
        _ role: ApplyRole, plan: RestorePlan, request: RestoreRequest, environment: [String: String], database: String, tenant: String,
        refused: (String) async -> AccessError
    ) async throws(AccessError) -> String {
        if !plan.shared.isEmpty, !request.createDatabase {
            throw await refused(
                "--apply-as with the shared dumps needs --create-database: the shared dumps are committed first (as the operator), and only a database this "
                    + "restore created can be dropped again if the clinic's dump then fails")
        }
        if request.afterRestoreSQL != nil {
            throw await refused("--after-restore does not run with --apply-as; restore first, then run the script in a transaction of your own")
        }
        let others = await forbiddenSchemas(tenant: tenant, target: environment).sorted()
        let row: [String?]?
        do {
            row = try await Blocking.run { () throws -> [String?]? in
                let connection = try PostgresConnection(connectionString: nil, applicationName: "tenant-backup restore", environment: environment)
                return try connection.query(
                    ApplyRole.checkQuery, [role.role, role.owner, ApplyRole.textArray(others)], purpose: "checking the --apply-as role").rows.first
            }
        } catch {
            throw AccessError(tenant: tenant, .database("cannot check the --apply-as role in database \(database): \(error)"))
        }
        switch ApplyRole.checkProblem(row, role: role, database: database) {
        case .owner(let owner): return owner
        case .refused(let problem): throw await refused(problem)
        }
    }

    /// The clinic's verified dump applied by `role` (see ``ApplyRole``): the role is given what it needs, psql
    /// logs in as it and applies the dump (without its `OWNER TO` statements) under the transaction guard;
    /// then, committed or not, what it created goes to `owner` and every right it was given is taken back.
    func applyAsRole(
        _ part: Spooled, role: ApplyRole, owner: String, sharedSchemas: [String], tenant: String, environment: [String: String], database: String
    ) async throws(AccessError) {
        let run = { (purpose: String, statements: [String]) async throws(AccessError) in
            do {
                try await Blocking.run { () throws in
                    let connection = try PostgresConnection(connectionString: nil, applicationName: "tenant-backup restore", environment: environment)
                    _ = try connection.query("BEGIN", purpose: purpose)
                    for statement in statements { _ = try connection.query(statement, purpose: purpose) }
                    _ = try connection.query("COMMIT", purpose: purpose)
                }
            } catch {
                throw AccessError(tenant: tenant, .database("\(purpose) in database \(database): \(error)"))
            }
        }
        let present: [String]
        do {
            present = try await Blocking.run { () throws -> [String] in
                let connection = try PostgresConnection(connectionString: nil, environment: environment)
                return try sharedSchemas.filter { try connection.schemaExists($0) }
            }
        } catch {
            throw AccessError(tenant: tenant, .database("cannot inspect database \(database) before the restore: \(error)"))
        }
        let handOver = ApplyRole.handOver(role: role.role, to: owner).split(separator: "\n").map(String.init)
        let revoke = [handOver[1]]
        try await run("giving role \(role.role) what the restore needs", role.grants(database: database, shared: present).split(separator: "\n").map(String.init))
        do throws(AccessError) {
            let guardCheck = RestoreGuard(tenant: tenant, sharedSchemas: sharedSchemas, applied: [])
            try await apply([part], guard: guardCheck, tenant: tenant, environment: environment, database: database, afterRestore: nil, role: role)
        } catch {
            // Rolled back: the role owns nothing; what it was given goes.
            do throws(AccessError) {
                try await run("taking back what role \(role.role) was given", revoke)
            } catch let revokeError {
                throw error.adding(
                    "; and role \(role.role) keeps the rights it was given for the restore (\(revokeError.message)): run DROP OWNED BY \(ApplyRole.quoted(role.role)); in database \(database)")
            }
            throw error
        }
        if role.throwaway { return }
        do throws(AccessError) {
            try await run("handing the restored objects from role \(role.role) to \(owner)", handOver)
        } catch {
            throw AccessError(
                tenant: tenant,
                .restoreFailed(
                    "schema \(BackupSchema.display(tenant)) was restored into database \(database), but its objects are still owned by role \(role.role) (\(error.message)); "
                        + "run: \(ApplyRole.handOver(role: role.role, to: owner).replacingOccurrences(of: "\n", with: " "))"))
        }
        logger.notice(
            "restored as a role that is not a superuser; its objects handed over",
            metadata: ["tenant": "\(tenant)", "role": "\(role.role)", "owner": "\(owner)", "database": "\(database)"])
    }
}
