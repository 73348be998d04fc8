import Foundation
import TenantBackup
import TenantBackupTesting
import Testing

/// `api.token_query` against the real database: the platform's own tokens (DRF's authtoken joined to its
/// clinic-admin table) open exactly one tenant, or nothing.
@Suite struct PlatformTokenQueryTests {
    let services: TestServices

    init() throws {
        services = try TestServices()
    }

    @Test func exactlyOneRowOpensItsTenantAndAnythingElseOpensNothing() async throws {
        try await TestDatabase.with(services) { database in
            try await database.psql("""
                CREATE TABLE public.authtoken_token (key text PRIMARY KEY, user_id int NOT NULL);
                CREATE TABLE public.clinic_admin (user_id int NOT NULL, schema_name text NOT NULL);
                INSERT INTO public.authtoken_token VALUES ('t-bienestar', 1), ('t-two', 2), ('t-none', 3);
                INSERT INTO public.clinic_admin VALUES (1, 'bienestar'), (2, 'bienestar'), (2, 'mindcare');
                """)
            var settings = Settings()
            settings.api.tokensFile = "/nonexistent/tokens.json"
            settings.api.tokenQuery = "SELECT a.schema_name FROM public.authtoken_token t JOIN public.clinic_admin a USING (user_id) WHERE t.key = $1"
            var environment = services.environment
            environment["PGDATABASE"] = database.name
            let auth = TokenAuthenticator(settings: settings, environment: environment, logger: .quiet)
            #expect(await auth.authenticate("t-bienestar") == Authenticated(tenant: "bienestar", actor: "platform-token:\(TokenFile.hash("t-bienestar").prefix(12))"))
            #expect(await auth.authenticate("t-two") == nil, "two clinics: refused")
            #expect(await auth.authenticate("t-none") == nil, "no clinic: refused")
            #expect(await auth.authenticate("' OR '1'='1") == nil, "the token is a parameter, never SQL")
            settings.api.tokenQuery = "SELECT schema_name FROM public.no_such_table WHERE key = $1"
            #expect(await TokenAuthenticator(settings: settings, environment: environment, logger: .quiet).authenticate("t-bienestar") == nil)
        }
    }
}
