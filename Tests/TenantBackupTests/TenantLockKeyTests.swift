import Testing

@testable import TenantBackup

/// The advisory lock's keys: every host and every version must agree on them, or two hosts back one tenant
/// up at once.
@Suite struct TenantLockKeyTests {
    @Test func tenantLockKeysAreStableAndDistinct() {
        // The first four bytes of SHA-256 of the name, big-endian (computed independently with Python's hashlib).
        #expect(TenantLock.tenantKey("bienestar") == -563_801_193)
        #expect(TenantLock.tenantKey("clinic") == -1_140_934_838)
        #expect(TenantLock.tenantKey("clinic2") == -1_297_108_552)
        #expect(TenantLock.tenantKey("Clínica \"Sur\"") == 351_709_159)
        #expect(TenantLock.projectKey == 0x5442_4B50)
        // A shared schema's lock differs from a tenant's of the same name.
        #expect(TenantLock.sharedProjectKey == 0x5442_4B53 && TenantLock.sharedProjectKey != TenantLock.projectKey)
    }
}
