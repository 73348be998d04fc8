/// Finds the tenant schemas: exact schema names, never patterns.
///
/// By default every schema is a tenant except the system schemas (`pg_catalog`, `information_schema`,
/// `pg_toast*`, `pg_temp*`), schemas that belong to an extension, and the shared schemas (`public`). With a
/// configured query, the tenants are the names it returns, kept only when such a schema exists. Include and
/// exclude globs then narrow either list.
public struct TenantDiscovery: Sendable {
    public let selection: TenantSelection

    public init(selection: TenantSelection) {
        self.selection = selection
    }

    /// The SQL listing every schema that can be a tenant (system and extension schemas left out).
    static let candidateSchemasSQL = """
        SELECT n.nspname
        FROM pg_catalog.pg_namespace n
        WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')
          AND n.nspname NOT LIKE 'pg\\_toast%'
          AND n.nspname NOT LIKE 'pg\\_temp%'
          AND NOT EXISTS (
              SELECT 1 FROM pg_catalog.pg_depend d
              WHERE d.classid = 'pg_catalog.pg_namespace'::pg_catalog.regclass
                AND d.objid = n.oid
                AND d.deptype = 'e')
        """

    /// Discovers the tenants on `connection`.
    public func discover(on connection: PostgresConnection) throws(DiscoveryError) -> DiscoveredTenants {
        let candidates: [String]
        do {
            candidates = try connection.query(Self.candidateSchemasSQL, purpose: "listing schemas").rows.compactMap { $0.first ?? nil }
        } catch {
            throw .database(error)
        }
        var listed: [String]? = nil
        if let query = selection.query {
            let result: PostgresResult
            do {
                result = try connection.query(query, purpose: "running tenants.query")
            } catch {
                throw .database(error)
            }
            guard !result.columns.isEmpty else {
                throw .badQuery("tenants.query returns no columns; it must return schema names in its first column")
            }
            var names: [String] = []
            for (index, row) in result.rows.enumerated() {
                guard let name = row[0] else {
                    throw .badQuery("tenants.query returned NULL in row \(index + 1); schema names cannot be NULL")
                }
                names.append(name)
            }
            listed = names
        }
        return try select(candidates: candidates, listed: listed)
    }

    /// The selection applied to known names: pure, so it is unit-tested without a database.
    ///
    /// - Parameters:
    ///   - candidates: every schema that may be a tenant (system and extension schemas already removed).
    ///   - listed: the names the tenants query returned, or `nil` when no query is configured.
    public func select(candidates: [String], listed: [String]?) throws(DiscoveryError) -> DiscoveredTenants {
        let include: [Glob]
        let exclude: [Glob]
        do {
            include = try selection.include.map { pattern throws(Glob.SyntaxError) in try Glob(pattern) }
            exclude = try selection.exclude.map { pattern throws(Glob.SyntaxError) in try Glob(pattern) }
        } catch {
            throw .badPattern(error)
        }
        let existing = Set(candidates)
        let shared = Set(selection.sharedSchemas)
        var unknown: [String] = []
        var names: [String]
        if let listed {
            names = []
            for name in listed {
                if existing.contains(name) {
                    names.append(name)
                } else if !shared.contains(name) {
                    unknown.append(name)
                }
            }
        } else {
            names = candidates
        }
        var tenants = Set<String>()
        for name in names where !shared.contains(name) {
            if !include.isEmpty, !include.contains(where: { $0.matches(name) }) { continue }
            if exclude.contains(where: { $0.matches(name) }) { continue }
            tenants.insert(name)
        }
        return DiscoveredTenants(
            tenants: tenants.sorted(by: Self.byteOrder),
            unknownNames: Array(Set(unknown)).sorted(by: Self.byteOrder))
    }

    /// Sorts names by their UTF-8 bytes, the order PostgreSQL's "C" collation and S3 listings use.
    static func byteOrder(_ left: String, _ right: String) -> Bool {
        left.utf8.lexicographicallyPrecedes(right.utf8)
    }
}

/// The result of tenant discovery.
public struct DiscoveredTenants: Sendable, Equatable {
    /// Exact schema names, sorted by bytes.
    public let tenants: [String]
    /// Names the tenants query returned for which no such schema exists (a registry out of step with the
    /// database): not backed up, reported so an operator can look.
    public let unknownNames: [String]
}

/// Why tenants could not be discovered.
public enum DiscoveryError: Error, Equatable, CustomStringConvertible {
    case database(PostgresError)
    case badQuery(String)
    case badPattern(Glob.SyntaxError)

    public var description: String {
        switch self {
        case .database(let error): return "tenant discovery failed: \(error)"
        case .badQuery(let message): return "tenant discovery failed: \(message)"
        case .badPattern(let error): return "tenant discovery failed: \(error)"
        }
    }
}
