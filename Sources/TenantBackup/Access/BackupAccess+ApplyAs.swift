import Foundation

extension BackupAccess {
    /// Refuses `--apply-as` where it cannot keep its promise, and checks the role and the owner on the target
    /// (``ApplyRole/checkProblem(_:role:database:)``); `others`: the other clinics' schemas
    /// (``forbiddenSchemas(tenant:target:)``). Returns the role that will own the restored objects.
    func checkApplyRole(
        _ role: ApplyRole, plan: RestorePlan, request: RestoreRequest, environment: [String: String], database: String, tenant: String,
        others: Set<String>, refused: (String) async -> AccessError
    ) async throws(AccessError) -> String {
        if !plan.shared.isEmpty, !request.createDatabase {
            throw await refused(
                "--apply-as with the shared dumps needs --create-database: the shared dumps are committed first (as the operator), and only a database this "
                    + "restore created can be dropped again if the clinic's dump then fails")
        }
        if request.afterRestoreSQL != nil {
            throw await refused("--after-restore does not run with --apply-as; restore first, then run the script in a transaction of your own")
        }
        let others = others.sorted()
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

    /// The clinic's verified dump applied by `role` (see ``ApplyRole``): the role is given what it needs and
    /// its schema, psql logs in as it and applies the dump (without its `OWNER TO` and `CREATE SCHEMA`
    /// statements) under the transaction guard; then, committed or not, what it created goes to `owner`,
    /// every right it was given is taken back and its connection limit restored.
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
        struct Before: Sendable {
            let shared: [String]
            let connectionLimit: Int
            let password: String?
            let sessions: Int
        }
        let name = role.role
        let before: Before
        do {
            before = try await Blocking.run { () throws -> Before in
                let connection = try PostgresConnection(connectionString: nil, environment: environment)
                let row = try connection.query(
                    "SELECT a.rolconnlimit::pg_catalog.text, a.rolpassword, (SELECT pg_catalog.count(*) FROM pg_catalog.pg_stat_activity s WHERE s.usename = a.rolname)::pg_catalog.text "
                        + "FROM pg_catalog.pg_authid a WHERE a.rolname = $1", [name], purpose: "reading the --apply-as role"
                ).rows.first
                return Before(
                    shared: try sharedSchemas.filter { try connection.schemaExists($0) }, connectionLimit: Int((row?[0] ?? nil) ?? "") ?? -1,
                    password: row?[1] ?? nil,
                    sessions: Int((row?[2] ?? nil) ?? "0") ?? 0)
            }
        } catch {
            throw AccessError(tenant: tenant, .database("cannot inspect database \(database) before the restore: \(error)"))
        }
        if before.sessions > 0 {
            throw AccessError(
                tenant: tenant,
                .restoreRefused(
                    "--apply-as \(BackupSchema.display(name)): \(before.sessions) session(s) are logged in as the role; a restore as it needs it alone "
                        + "(whoever else is logged in could add objects that the restore would hand over); nothing was changed"))
        }
        let limit = "ALTER ROLE \(ApplyRole.quoted(name)) CONNECTION LIMIT \(before.connectionLimit)"
        let dropOwned = ApplyRole.dropOwned(role: name)
        try await run("giving role \(name) what the restore needs", role.grants(database: database, tenant: tenant, shared: before.shared))
        do throws(AccessError) {
            let guardCheck = RestoreGuard(tenant: tenant, sharedSchemas: sharedSchemas, applied: [])
            try await apply([part], guard: guardCheck, tenant: tenant, environment: environment, database: database, afterRestore: nil, role: role)
        } catch {
            // Rolled back: the schema made for it is empty again; it and what the role was given go.
            do throws(AccessError) {
                try await run("taking back what role \(name) was given", ["DROP SCHEMA IF EXISTS \(ApplyRole.quoted(tenant))", dropOwned, limit])
            } catch let revokeError {
                throw error.adding(
                    "; and role \(name) keeps what it was given for the restore (\(revokeError.message)): in database \(database) run "
                        + "DROP SCHEMA \(ApplyRole.quoted(tenant)); \(dropOwned); \(limit);")
            }
            throw error
        }
        // A role may change its own password; the transaction guard, running as the role, cannot see it. A
        // dump that did is hostile: the password goes back and the restore is undone.
        let passwordNow = try? await Blocking.run { () throws -> String? in
            try PostgresConnection(connectionString: nil, environment: environment)
                .query("SELECT rolpassword FROM pg_catalog.pg_authid WHERE rolname = $1", [name], purpose: "reading the --apply-as role").rows.first?.first ?? nil
        }
        if passwordNow != before.password {
            let reset = "ALTER ROLE \(ApplyRole.quoted(name)) PASSWORD " + (before.password.map { "'" + $0.replacingOccurrences(of: "'", with: "''") + "'" } ?? "NULL")
            let undone = (try? await run("undoing the restore", [reset, "DROP SCHEMA \(ApplyRole.quoted(tenant)) CASCADE", dropOwned, limit])) != nil
            throw AccessError(
                tenant: tenant,
                .restoreRefused(
                    "\(part.part.key): the dump changed the password of role \(name) while it ran: it is hostile; "
                        + (undone ? "the password was put back and the restored schema dropped" : "put the role's password back and drop schema \(BackupSchema.display(tenant)) yourself")))
        }
        if role.throwaway {
            try await run("taking back role \(name)'s connection limit", [limit])
            return
        }
        do throws(AccessError) {
            try await run("handing the restored objects from role \(name) to \(owner)", ApplyRole.handOver(role: name, to: owner) + [limit])
        } catch {
            throw AccessError(
                tenant: tenant,
                .restoreFailed(
                    "schema \(BackupSchema.display(tenant)) was restored into database \(database), but its objects are still owned by role \(name) (\(error.message)); "
                        + "run: \((ApplyRole.handOver(role: name, to: owner) + [limit]).joined(separator: "; "));"))
        }
        logger.notice(
            "restored as a role that is not a superuser; its objects handed over",
            metadata: ["tenant": "\(tenant)", "role": "\(name)", "owner": "\(owner)", "database": "\(database)"])
    }
}
