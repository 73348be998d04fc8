import Foundation

/// The check a restore's own transaction runs just before its `COMMIT`: that the dump acted only in the
/// schemas it restores. Rolls back (an error, with `ON_ERROR_STOP`) when
///
/// - the transaction is not the one the restore opened (something in the stream ended it),
/// - a row changed in a table outside the restored schemas (`pg_stat_xact_user_tables`),
/// - a catalog row outside them is not what it was before the restore started: schemas, relations (a
///   truncated table gets a new file), columns, their defaults, constraints and comments, functions, triggers,
///   rules, policies, roles and memberships,
///   databases, event triggers, default privileges, large objects, and (when no shared dump is applied)
///   extensions,
/// - a view or foreign key of the tenant's schema reaches into another clinic's schema.
///
/// The "before" fingerprint is taken on a connection of our own before psql starts, the "after" one inside
/// psql's transaction with the same query.
///
/// - Important: a superuser's session can defeat any check written in SQL (it may replace the functions the
///   check calls). This is a layer behind the manifest's signature and the dump filter, not a boundary.
public struct RestoreGuard: Sendable {
    /// The schemas the restore writes: the tenant's, and the shared ones whose dumps it applies.
    public let restored: [String]
    /// The tenant's schema (its views and foreign keys may reach only itself and the shared schemas).
    public let tenant: String
    /// The shared schemas (reachable from the tenant's, whether or not their dumps are applied).
    public let shared: [String]
    /// Whether shared dumps (with their extensions) are applied in this transaction.
    public var appliesShared: Bool { restored.count > 1 }

    public static let errorPrefix = "tenant-backup guard:"
    static let xidSetting = "tenant_backup.restore_xid"

    /// `sharedSchemas`: every schema the clinics share (`tenants.shared_schemas`); `applied`: those whose dumps
    /// this restore applies (none into the live database).
    public init(tenant: String, sharedSchemas: [String], applied: [String]) {
        self.tenant = tenant
        self.shared = Array(Set(sharedSchemas + applied)).sorted()
        self.restored = [tenant] + applied
    }

    static func literal(_ text: String) -> String {
        "'" + text.replacingOccurrences(of: "'", with: "''") + "'"
    }

    static func array(_ names: [String]) -> String {
        "ARRAY[" + names.map(literal).joined(separator: ", ") + "]::pg_catalog.text[]"
    }

    /// One md5 over every catalog row outside the restored schemas that the check compares. Run with an empty
    /// `search_path` (definitions then name every object in full, whatever the session's path).
    public var fingerprintQuery: String {
        let outside = "n.nspname <> ALL (\(Self.array(restored))) AND n.nspname <> 'pg_toast' AND n.nspname !~ '^pg_(toast_)?temp_'"
        var parts = [
            "SELECT pg_catalog.concat_ws(':', 'n', n.oid, n.nspname, n.nspowner, coalesce(n.nspacl::pg_catalog.text, '')) FROM pg_catalog.pg_namespace n WHERE \(outside)",
            """
            SELECT pg_catalog.concat_ws(':', 'c', c.oid, c.relname, c.relnamespace, c.relfilenode, c.relkind, c.relowner, coalesce(c.relacl::pg_catalog.text, ''), c.relnatts, c.relhasrules, c.relrowsecurity, c.relpersistence) FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE \(outside)
            """,
            """
            SELECT pg_catalog.concat_ws(':', 'a', a.attrelid, a.attnum, a.attname, a.atttypid, a.attnotnull, a.attisdropped) FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_class c ON c.oid = a.attrelid JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
            WHERE \(outside) AND a.attnum > 0
            """,
            """
            SELECT pg_catalog.concat_ws(':', 'p', p.oid, p.proname, p.pronamespace, p.proowner, p.prosecdef, pg_catalog.md5(coalesce(p.prosrc, '')), coalesce(p.proconfig::pg_catalog.text, ''), coalesce(p.proacl::pg_catalog.text, '')) FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace WHERE \(outside)
            """,
            """
            SELECT pg_catalog.concat_ws(':', 't', t.oid, t.tgrelid, t.tgname, t.tgenabled, t.tgfoid) FROM pg_catalog.pg_trigger t \
            JOIN pg_catalog.pg_class c ON c.oid = t.tgrelid JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE \(outside) AND NOT t.tgisinternal
            """,
            """
            SELECT pg_catalog.concat_ws(':', 'w', r.oid, r.ev_class, r.rulename, r.ev_enabled) FROM pg_catalog.pg_rewrite r \
            JOIN pg_catalog.pg_class c ON c.oid = r.ev_class JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE \(outside)
            """,
            """
            SELECT pg_catalog.concat_ws(':', 'y', y.oid, y.polrelid, y.polname, y.polcmd) FROM pg_catalog.pg_policy y \
            JOIN pg_catalog.pg_class c ON c.oid = y.polrelid JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE \(outside)
            """,
            """
            SELECT pg_catalog.concat_ws(':', 'r', r.oid, r.rolname, r.rolsuper, r.rolinherit, r.rolcreaterole, r.rolcreatedb, r.rolcanlogin, r.rolreplication, r.rolbypassrls, coalesce(r.rolvaliduntil::pg_catalog.text, '')) FROM pg_catalog.pg_roles r
            """,
            "SELECT pg_catalog.concat_ws(':', 'm', m.roleid, m.member, m.admin_option) FROM pg_catalog.pg_auth_members m",
            // A role's defaults in every database (a role may set its own in another database too); a database's
            // own, of this one.
            "SELECT pg_catalog.concat_ws(':', 's', s.setdatabase, s.setrole, coalesce(s.setconfig::pg_catalog.text, '')) FROM pg_catalog.pg_db_role_setting s "
                + "WHERE s.setrole <> 0 OR s.setdatabase IN (0, (SELECT oid FROM pg_catalog.pg_database WHERE datname = pg_catalog.current_database()))",
            "SELECT pg_catalog.concat_ws(':', 'P', p.oid, p.pubname, p.pubowner, p.puballtables) FROM pg_catalog.pg_publication p",
            "SELECT pg_catalog.concat_ws(':', 'd', d.oid, d.datname, coalesce(d.datacl::pg_catalog.text, ''), d.datallowconn) FROM pg_catalog.pg_database d WHERE d.datname = pg_catalog.current_database()",
            "SELECT pg_catalog.concat_ws(':', 'e', e.oid, e.evtname, e.evtenabled, e.evtfoid) FROM pg_catalog.pg_event_trigger e",
            "SELECT pg_catalog.concat_ws(':', 'q', x.oid, x.defaclrole, x.defaclnamespace, coalesce(x.defaclacl::pg_catalog.text, '')) FROM pg_catalog.pg_default_acl x",
            "SELECT pg_catalog.concat_ws(':', 'l', l.oid, l.lomowner) FROM pg_catalog.pg_largeobject_metadata l",
            // Constraints, column defaults and comments of objects outside: a CHECK or DEFAULT calling the clinic's
            // function would be a door into another clinic's table.
            "SELECT pg_catalog.concat_ws(':', 'k', k.oid, k.conname, k.conrelid, k.contype, pg_catalog.md5(pg_catalog.pg_get_constraintdef(k.oid))) "
                + "FROM pg_catalog.pg_constraint k JOIN pg_catalog.pg_namespace n ON n.oid = k.connamespace WHERE \(outside)",
            "SELECT pg_catalog.concat_ws(':', 'f', d.oid, d.adrelid, d.adnum, pg_catalog.md5(pg_catalog.pg_get_expr(d.adbin, d.adrelid))) "
                + "FROM pg_catalog.pg_attrdef d JOIN pg_catalog.pg_class c ON c.oid = d.adrelid JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE \(outside)",
            "SELECT pg_catalog.concat_ws(':', 'o', o.objoid, o.classoid, o.objsubid, pg_catalog.md5(o.description)) FROM pg_catalog.pg_description o "
                + "JOIN pg_catalog.pg_class c ON o.classoid = 'pg_catalog.pg_class'::pg_catalog.regclass AND c.oid = o.objoid "
                + "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE \(outside)",
            "SELECT pg_catalog.concat_ws(':', 'O', o.objoid, pg_catalog.md5(o.description)) FROM pg_catalog.pg_description o "
                + "JOIN pg_catalog.pg_namespace n ON o.classoid = 'pg_catalog.pg_namespace'::pg_catalog.regclass AND n.oid = o.objoid WHERE \(outside)",
        ]
        if !appliesShared {
            parts.append("SELECT pg_catalog.concat_ws(':', 'X', x.oid, x.extname, x.extversion, x.extnamespace) FROM pg_catalog.pg_extension x")
        }
        return "SELECT pg_catalog.md5(coalesce(pg_catalog.string_agg(f, E'\\n' ORDER BY f), '')) FROM ("
            + parts.map { "(" + $0 + ")" }.joined(separator: " UNION ALL ") + ") AS fingerprint(f)"
    }

    /// The statement that opens the check inside the restore's transaction (right after `BEGIN`).
    public var opening: String {
        "SELECT pg_catalog.set_config(\(Self.literal(Self.xidSetting)), pg_catalog.pg_current_xact_id()::pg_catalog.text, true);\n"
    }

    /// The check itself, run just before `COMMIT`, given the fingerprint taken before the restore started.
    public func closing(expectedFingerprint: String) -> String {
        let tag = "$tenant_backup_guard_\(UUID().uuidString.prefix(8).lowercased())$"
        let reachable = Self.array([tenant] + shared + ["pg_catalog", "information_schema"])
        return """

            DO \(tag)
            DECLARE
                found pg_catalog.text;
            BEGIN
                -- As the fingerprint before the restore was taken: object names qualified in full.
                PERFORM pg_catalog.set_config('search_path', '', true);
                IF pg_catalog.current_setting(\(Self.literal(Self.xidSetting)), true) IS DISTINCT FROM pg_catalog.pg_current_xact_id()::pg_catalog.text THEN
                    RAISE EXCEPTION '\(Self.errorPrefix) the restore''s transaction was ended inside the dump (COMMIT or ROLLBACK in the stream)';
                END IF;
                SELECT pg_catalog.string_agg(pg_catalog.quote_ident(s.schemaname) || '.' || pg_catalog.quote_ident(s.relname), ', ') INTO found
                    FROM pg_catalog.pg_stat_xact_user_tables s
                    WHERE s.schemaname <> ALL (\(Self.array(restored))) AND (s.n_tup_ins + s.n_tup_upd + s.n_tup_del) > 0;
                IF found IS NOT NULL THEN
                    RAISE EXCEPTION '\(Self.errorPrefix) rows changed outside the restored schemas, in %', found;
                END IF;
                IF (\(fingerprintQuery)) IS DISTINCT FROM \(Self.literal(expectedFingerprint)) THEN
                    RAISE EXCEPTION '\(Self.errorPrefix) objects outside the restored schemas changed (schemas, tables, columns, functions, triggers, roles, databases or extensions)';
                END IF;
                SELECT pg_catalog.string_agg(DISTINCT rn.nspname, ', ') INTO found
                    FROM pg_catalog.pg_depend d
                    JOIN pg_catalog.pg_rewrite r ON d.classid = 'pg_catalog.pg_rewrite'::pg_catalog.regclass AND d.objid = r.oid
                    JOIN pg_catalog.pg_class v ON v.oid = r.ev_class JOIN pg_catalog.pg_namespace vn ON vn.oid = v.relnamespace
                    JOIN pg_catalog.pg_class rc ON d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass AND rc.oid = d.refobjid
                    JOIN pg_catalog.pg_namespace rn ON rn.oid = rc.relnamespace
                    WHERE vn.nspname = \(Self.literal(tenant)) AND rn.nspname <> ALL (\(reachable));
                IF found IS NOT NULL THEN
                    RAISE EXCEPTION '\(Self.errorPrefix) a view of the restored schema reads another schema (%)', found;
                END IF;
                SELECT pg_catalog.string_agg(DISTINCT fn.nspname, ', ') INTO found
                    FROM pg_catalog.pg_constraint k
                    JOIN pg_catalog.pg_class c ON c.oid = k.conrelid JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
                    JOIN pg_catalog.pg_class fc ON fc.oid = k.confrelid JOIN pg_catalog.pg_namespace fn ON fn.oid = fc.relnamespace
                    WHERE n.nspname = \(Self.literal(tenant)) AND fn.nspname <> ALL (\(reachable));
                IF found IS NOT NULL THEN
                    RAISE EXCEPTION '\(Self.errorPrefix) a foreign key of the restored schema references another schema (%)', found;
                END IF;
            END
            \(tag);

            """
    }
}
