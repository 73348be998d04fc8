import Foundation
import Subprocess
import TenantBackup
import TenantBackupTesting
import Testing

/// Issue 10, point 4: an endpoint that refuses, or speaks plain HTTP to our TLS, fails within seconds and
/// leaves the tenant's lock free. (It used to take ~90 s per attempt, 7.5 minutes per backup.)
@Suite struct UnreachableEndpointTests {
    let services: TestServices

    init() throws {
        services = try TestServices()
    }

    func environment(database: TestDatabase, endpoint: String) -> [String: String] {
        var environment = services.environment
        environment["PGDATABASE"] = database.name
        environment["AWS_STORAGE_BUCKET_NAME"] = "never-reached"
        environment["AWS_ENDPOINT_URL_S3"] = endpoint
        return environment
    }

    func expectTheLockIsFree(_ database: TestDatabase, tenant: String) async throws {
        var environment = services.environment
        environment["PGDATABASE"] = database.name
        let lock = try await TenantLock.acquire(.tenant(tenant), connectionString: nil, environment: environment)
        #expect(lock != nil, "the tenant's lock is still held")
        await lock?.release()
    }

    @Test func aBackupAgainstAClosedPortFailsWithinThirtySecondsAndFreesTheLock() async throws {
        try await TestDatabase.with(services) { database in
            let port = try TestProcess.freePort()
            let started = ContinuousClock.now
            let (status, output) = try await TestProcess.tenantBackup(
                ["backup", "--tenant", "bienestar", "--no-shared"], environment(database: database, endpoint: "http://127.0.0.1:\(port)"))
            let elapsed = ContinuousClock.now - started
            #expect(status == .exited(1), "\(output)")
            #expect(elapsed < .seconds(30), "took \(elapsed)")
            #expect(output.contains("bienestar"), "\(output)")
            #expect(output.lowercased().contains("refused"), "\(output)")
            try await expectTheLockIsFree(database, tenant: "bienestar")
        }
    }

    @Test func doctorSaysWithinFifteenSecondsThatTheEndpointIsUnreachable() async throws {
        try await TestDatabase.with(services) { database in
            let port = try TestProcess.freePort()
            let started = ContinuousClock.now
            let (status, output) = try await TestProcess.tenantBackup(
                ["doctor"], environment(database: database, endpoint: "http://127.0.0.1:\(port)"))
            let elapsed = ContinuousClock.now - started
            #expect(status == .exited(1), "\(output)")
            #expect(elapsed < .seconds(15), "took \(elapsed)")
            #expect(output.contains("✘ S3 bucket"), "\(output)")
        }
    }

    @Test func httpsAgainstAPlainHTTPPortFailsFast() async throws {
        try await TestDatabase.with(services) { database in
            // The verifying proxy speaks plain HTTP: the TLS handshake fails.
            let plain = services.s3Endpoint
            let endpoint = "https://\(plain.host ?? "127.0.0.1"):\(plain.port ?? 80)"
            let started = ContinuousClock.now
            let (status, output) = try await TestProcess.tenantBackup(
                ["backup", "--tenant", "bienestar", "--no-shared"], environment(database: database, endpoint: endpoint))
            let elapsed = ContinuousClock.now - started
            #expect(status == .exited(1), "\(output)")
            #expect(elapsed < .seconds(30), "took \(elapsed)")
            try await expectTheLockIsFree(database, tenant: "bienestar")
        }
    }

    /// Also issue 10: `--log-level trace` printed nothing beyond debug.
    @Test func traceShowsEachS3RequestAsItStarts() async throws {
        try await TestDatabase.with(services) { database in
            var environment = environment(database: database, endpoint: services.s3Endpoint.absoluteString)
            environment["TENANT_BACKUP_LOG_FORMAT"] = "logfmt"
            let (_, debug) = try await TestProcess.tenantBackup(["prune", "--dry-run", "--log-level", "debug"], environment)
            let (_, trace) = try await TestProcess.tenantBackup(["prune", "--dry-run", "--log-level", "trace"], environment)
            #expect(!debug.contains("level=trace"), "\(debug)")
            #expect(trace.contains("level=trace") && trace.contains("s3 request starting"), "\(trace)")
        }
    }
}
