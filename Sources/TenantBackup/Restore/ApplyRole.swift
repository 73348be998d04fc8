import Foundation

/// `restore --apply-as ROLE`: the tenant's dump is applied by psql logged in as `ROLE`, a role that is not a
/// superuser and can write nothing but the schema it creates, instead of the operator's (usually superuser)
/// connection. What the dump runs at run time (a function a DEFAULT or CHECK calls during COPY, `EXECUTE` of
/// a string the text filter cannot see, `RESET ROLE`) then runs with that role's rights: no server files or
/// programs, no other clinic's schema, no roles. Afterwards what it created is handed to `owner` and every
/// right the role was given is taken back.
///
/// The operator's connection, in transactions of its own:
/// 1. ``checkProblem(_:)`` on ``checkQuery``: the role exists, can log in, is no superuser and has none of
///    the role attributes that reach past one database, belongs to no other role, owns nothing and holds no
///    privilege in the target, and cannot use another clinic's schema; the owner exists and is no superuser
///    (its SECURITY DEFINER functions would run as one).
/// 2. ``grants(database:tenant:shared:)``: a connection limit of one (checked inside psql's session: no other
///    session of the role may act beside it), CONNECT on the database, the clinic's schema created empty and
///    owned by the role (the dump's own `CREATE SCHEMA` is left out: the role gets no CREATE on the database,
///    so no other schema, publication or extension), USAGE on the shared schemas and REFERENCES on their
///    tables (the clinic's foreign keys).
/// 3. After psql (as the role) committed, or failed: ``handOver``: `REASSIGN OWNED BY role TO owner` and
///    `DROP OWNED BY role` (which takes back every privilege granted to it in this database), its connection
///    limit back; a password the dump gave the role is put back and the restore undone.
public struct ApplyRole: Sendable, Equatable {
    public let role: String
    /// Who owns what the restore created, once it committed; `nil`: the target database's owner.
    public let owner: String?
    /// Into a database that is dropped afterwards (adopt's proof): nothing is handed over, so no owner is needed.
    public var throwaway = false

    public init(role: String, owner: String? = nil, throwaway: Bool = false) {
        self.role = role
        self.owner = owner
        self.throwaway = throwaway
    }

    static func quoted(_ name: String) -> String { BackupSchema.quoted(name) }

    /// One row: the role's attributes and what it holds, the owner's, and the database's owner. Parameters:
    /// `$1` the role, `$2` the owner (or NULL for the database's), `$3` the other clinics' schemas (a text array
    /// literal).
    static let checkQuery = """
        SELECT r.rolsuper, r.rolcreaterole, r.rolcreatedb, r.rolreplication, r.rolbypassrls, r.rolcanlogin,
            (SELECT pg_catalog.count(*) FROM pg_catalog.pg_auth_members m WHERE m.member = r.oid),
            (SELECT pg_catalog.count(*) FROM pg_catalog.pg_shdepend d WHERE d.refclassid = 'pg_catalog.pg_authid'::pg_catalog.regclass AND d.refobjid = r.oid
                AND d.dbid IN (0, (SELECT oid FROM pg_catalog.pg_database WHERE datname = pg_catalog.current_database()))),
            (SELECT pg_catalog.string_agg(n.nspname, ', ' ORDER BY n.nspname) FROM pg_catalog.pg_namespace n
                WHERE n.nspname = ANY ($3::pg_catalog.text[]) AND pg_catalog.has_schema_privilege(r.oid, n.oid, 'USAGE')),
            o.rolname, o.rolsuper,
            (SELECT d.rolname FROM pg_catalog.pg_roles d WHERE d.oid = (SELECT datdba FROM pg_catalog.pg_database WHERE datname = pg_catalog.current_database())),
            pg_catalog.concat_ws(', ', CASE WHEN o.rolcreaterole THEN 'CREATEROLE' END,
                (SELECT pg_catalog.string_agg(s.rolname, ', ' ORDER BY s.rolname) FROM pg_catalog.pg_roles s
                 WHERE s.oid <> o.oid AND (s.rolsuper OR s.rolname IN ('pg_execute_server_program', 'pg_read_server_files', 'pg_write_server_files'))
                   AND pg_catalog.pg_has_role(o.oid, s.oid, 'MEMBER')))
        FROM pg_catalog.pg_roles r
        LEFT JOIN pg_catalog.pg_roles o ON o.rolname = coalesce($2, (SELECT d.rolname FROM pg_catalog.pg_roles d
            WHERE d.oid = (SELECT datdba FROM pg_catalog.pg_database WHERE datname = pg_catalog.current_database())))
        WHERE r.rolname = $1
        """

    /// `$3` of ``checkQuery``.
    static func textArray(_ names: [String]) -> String {
        "{" + names.map { "\"" + $0.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\"" }.joined(separator: ",") + "}"
    }

    /// Why the role may not apply the dump (from ``checkQuery``'s row, `nil` for no row), or `nil` with the owner
    /// that will receive the objects.
    enum Checked: Equatable {
        case owner(String)
        case refused(String)
    }

    static func checkProblem(_ row: [String?]?, role: ApplyRole, database: String) -> Checked {
        let name = BackupSchema.display(role.role)
        guard let row, row.count == 13 else {
            return .refused("--apply-as \(name): no such role on the target's server; create one for restores: CREATE ROLE \(quoted(role.role)) LOGIN (not a superuser)")
        }
        func flag(_ index: Int) -> Bool { row[index] == "t" }
        let attributes = [(0, "SUPERUSER"), (1, "CREATEROLE"), (2, "CREATEDB"), (3, "REPLICATION"), (4, "BYPASSRLS")].filter { flag($0.0) }.map(\.1)
        if !attributes.isEmpty {
            return .refused(
                "--apply-as \(name): the role has \(attributes.joined(separator: ", ")), rights past one database's schema: a dump applied by it could still act outside the clinic; "
                    + "use a role of its own for restores, without them")
        }
        if !flag(5) { return .refused("--apply-as \(name): the role cannot log in (ALTER ROLE \(quoted(role.role)) LOGIN); psql connects as it") }
        if (Int(row[6] ?? "0") ?? 1) > 0 {
            return .refused("--apply-as \(name): the role is a member of other roles and would act with their rights; use a role that belongs to none")
        }
        if let reachable = row[8], !reachable.isEmpty {
            return .refused("--apply-as \(name): the role can use other clinics' schemas (\(reachable)); revoke that (REVOKE USAGE ON SCHEMA … FROM PUBLIC, …)")
        }
        if (Int(row[7] ?? "0") ?? 1) > 0 {
            return .refused(
                "--apply-as \(name): the role owns objects or holds privileges in database \(database) (a restore killed before it handed them over?); "
                    + "hand them to their owner and clear it: REASSIGN OWNED BY \(quoted(role.role)) TO <owner>; DROP OWNED BY \(quoted(role.role));")
        }
        if role.throwaway { return .owner(row[9] ?? "") }
        guard let owner = row[9] else {
            return .refused("--owner \(role.owner.map(BackupSchema.display) ?? "(the database's owner)"): no such role on the target's server")
        }
        if owner == role.role {
            return .refused("--owner \(BackupSchema.display(owner)) is the --apply-as role itself: name the role that should own the clinic's objects")
        }
        if row[10] == "t" {
            let which = role.owner == nil ? "database \(database) is owned by superuser \(BackupSchema.display(owner)), who would" : "--owner \(BackupSchema.display(owner)) is a superuser and would"
            return .refused(
                "\(which) receive what the dump created: its SECURITY DEFINER functions would run as a superuser; name a role that is not one with --owner (the clinic platform's own role)")
        }
        if let powers = row[12], !powers.isEmpty {
            return .refused(
                "--owner \(BackupSchema.display(owner)) has \(powers) (or their rights): what the dump created would run with them (its SECURITY DEFINER functions run as their owner); "
                    + "name a role without them with --owner (the clinic platform's own role)")
        }
        return .owner(owner)
    }

    /// What the role is given for the restore, in the operator's transaction before psql starts: one
    /// statement each.
    func grants(database: String, tenant: String, shared: [String]) -> [String] {
        var statements = [
            "ALTER ROLE \(Self.quoted(role)) CONNECTION LIMIT 1",
            "GRANT CONNECT ON DATABASE \(Self.quoted(database)) TO \(Self.quoted(role))",
            "CREATE SCHEMA \(Self.quoted(tenant)) AUTHORIZATION \(Self.quoted(role))",
        ]
        for schema in shared {
            statements.append("GRANT USAGE ON SCHEMA \(Self.quoted(schema)) TO \(Self.quoted(role))")
            statements.append("GRANT REFERENCES ON ALL TABLES IN SCHEMA \(Self.quoted(schema)) TO \(Self.quoted(role))")
        }
        return statements
    }

    /// Every privilege of the role in this database taken back, and whatever it still owns dropped.
    static func dropOwned(role: String) -> String { "DROP OWNED BY \(quoted(role))" }

    /// What the restore created goes to `owner`; every privilege of the role in this database is taken back.
    static func handOver(role: String, to owner: String) -> [String] {
        ["REASSIGN OWNED BY \(quoted(role)) TO \(quoted(owner))", dropOwned(role: role)]
    }

    /// Inside psql's transaction, first: that it is logged in as the role (a service file or a connection
    /// string naming another user would otherwise apply the dump as that user).
    func openingCheck() -> String {
        let literal = "'" + role.replacingOccurrences(of: "'", with: "''") + "'"
        return """
            DO $tenant_backup_role$
            BEGIN
                IF session_user <> \(literal) OR current_user <> \(literal) THEN
                    RAISE EXCEPTION 'tenant-backup: psql is logged in as %, not as the --apply-as role; check the service file and the target''s user=', session_user;
                END IF;
                IF EXISTS (SELECT FROM pg_catalog.pg_stat_activity a WHERE a.usename = \(literal) AND a.pid <> pg_catalog.pg_backend_pid()) THEN
                    RAISE EXCEPTION 'tenant-backup: another session is logged in as the --apply-as role; a restore as it needs it alone';
                END IF;
            END
            $tenant_backup_role$;

            """
    }
}
