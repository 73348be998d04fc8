import Testing

@testable import TenantBackup

/// The pure part of tenant discovery: which of the existing schemas are tenants.
@Suite struct TenantSelectionTests {
    let schemas = ["public", "bienestar", "mindcare", "Clínica \"Sur\"", "demo", "clinic", "clinic2"]

    @Test func byDefaultEverySchemaButTheSharedOnesIsATenant() throws {
        let found = try TenantDiscovery(selection: TenantSelection()).select(candidates: schemas, listed: nil)
        #expect(found.tenants == ["Clínica \"Sur\"", "bienestar", "clinic", "clinic2", "demo", "mindcare"])
        #expect(found.unknownNames.isEmpty)
    }

    @Test func includeAndExcludeNarrowTheList() throws {
        let selection = TenantSelection(include: ["clinic*", "bienestar"], exclude: ["clinic2"])
        let found = try TenantDiscovery(selection: selection).select(candidates: schemas, listed: nil)
        #expect(found.tenants == ["bienestar", "clinic"])
    }

    @Test func queryResultsAreKeptOnlyWhenTheSchemaExists() throws {
        let found = try TenantDiscovery(selection: TenantSelection(query: "q"))
            .select(candidates: schemas, listed: ["mindcare", "gone", "public", "mindcare"])
        #expect(found.tenants == ["mindcare"])
        #expect(found.unknownNames == ["gone"])
    }

    @Test func patternCharactersInNamesAreNeverPatterns() throws {
        // A query returning "a*" names the schema "a*" only, not "ab".
        let found = try TenantDiscovery(selection: TenantSelection(query: "q")).select(candidates: ["a*", "ab", "a.b"], listed: ["a*"])
        #expect(found.tenants == ["a*"])
    }

    @Test func sharedSchemasAreConfigurable() throws {
        let found = try TenantDiscovery(selection: TenantSelection(sharedSchemas: ["public", "demo"])).select(candidates: schemas, listed: nil)
        #expect(found.tenants == ["Clínica \"Sur\"", "bienestar", "clinic", "clinic2", "mindcare"])
    }
}
