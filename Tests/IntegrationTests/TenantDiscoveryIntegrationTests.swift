import Testing
import TenantBackup
import TenantBackupTesting

/// Discovery against a real PostgreSQL server loaded with the sample clinic database.
@Suite struct TenantDiscoveryIntegrationTests {
    let services: TestServices

    init() throws {
        services = try TestServices()
    }

    func discover(_ selection: TenantSelection, in database: TestDatabase) throws -> DiscoveredTenants {
        let connection = try database.connect()
        return try TenantDiscovery(selection: selection).discover(on: connection)
    }

    @Test func defaultDiscoveryFindsExactlyTheFixtureClinics() async throws {
        try await TestDatabase.with(services) { database in
            let found = try discover(TenantSelection(), in: database)
            #expect(found.tenants == ["Clínica \"Sur\"", "bienestar", "mindcare"])
            #expect(found.unknownNames.isEmpty)
        }
    }

    @Test func schemasOwnedByAnExtensionAreNotTenants() async throws {
        try await TestDatabase.with(services) { database in
            try await database.psql("CREATE SCHEMA ext_owned; ALTER EXTENSION citext ADD SCHEMA ext_owned;")
            try await database.psql("CREATE SCHEMA plain_new")
            let found = try discover(TenantSelection(), in: database)
            #expect(!found.tenants.contains("ext_owned"))
            #expect(found.tenants.contains("plain_new"))
        }
    }

    @Test func theTenantsQueryChoosesTheTenants() async throws {
        try await TestDatabase.with(services) { database in
            let query = "SELECT schema_name FROM public.tenants_clinic WHERE name <> 'MindCare Psicología'"
            let found = try discover(TenantSelection(query: query), in: database)
            #expect(found.tenants == ["Clínica \"Sur\"", "bienestar"])
        }
    }

    @Test func aQueryNamingAMissingSchemaReportsIt() async throws {
        try await TestDatabase.with(services) { database in
            try await database.psql("INSERT INTO public.tenants_clinic (schema_name, name) VALUES ('closed_clinic', 'Closed')")
            let found = try discover(TenantSelection(query: "SELECT schema_name FROM public.tenants_clinic"), in: database)
            #expect(found.tenants == ["Clínica \"Sur\"", "bienestar", "mindcare"])
            #expect(found.unknownNames == ["closed_clinic"])
        }
    }

    @Test func includeAndExcludeGlobsAreHonoured() async throws {
        try await TestDatabase.with(services) { database in
            try await database.psql("CREATE SCHEMA \"a*\"; CREATE SCHEMA ab; CREATE SCHEMA \"a.b\"")
            let included = try discover(TenantSelection(include: ["a*"]), in: database)
            #expect(included.tenants == ["a*", "a.b", "ab"])
            let literal = try discover(TenantSelection(include: ["a\\*"]), in: database)
            #expect(literal.tenants == ["a*"])
            let excluded = try discover(TenantSelection(exclude: ["a*", "mind*"]), in: database)
            #expect(excluded.tenants == ["Clínica \"Sur\"", "bienestar"])
        }
    }

    @Test func aQueryReturningNullIsAnError() async throws {
        try await TestDatabase.with(services) { database in
            #expect(throws: DiscoveryError.self) {
                try discover(TenantSelection(query: "SELECT NULL::text"), in: database)
            }
        }
    }

    @Test func aFailingQueryNamesTheSettingAndTheServerMessage() async throws {
        try await TestDatabase.with(services) { database in
            #expect {
                try discover(TenantSelection(query: "SELECT schema_name FROM public.no_such_table"), in: database)
            } throws: { error in
                guard case .database(.queryFailed(let purpose, let sqlState, let message)) = error as? DiscoveryError else { return false }
                return purpose.contains("tenants.query") && sqlState == "42P01" && message.contains("no_such_table")
            }
        }
    }
}
