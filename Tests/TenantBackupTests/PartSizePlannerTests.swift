import Foundation
import NIOCore
import Testing

@testable import TenantBackup

@Suite struct PartSizePlannerTests {
    let planner = PartSizePlanner()

    @Test func smallSchemasUseTheDefault() throws {
        #expect(try planner.partSize(estimatedBytes: 0) == 8 << 20)
        #expect(try planner.partSize(estimatedBytes: 10 << 30) == 8 << 20)  // 40 GiB with margin / 10,000 < 8 MiB
    }

    @Test func largeSchemasGetPartsThatFitInTenThousand() throws {
        let estimate: Int64 = 100 << 30  // 100 GiB → 400 GiB with margin
        let size = try planner.partSize(estimatedBytes: estimate)
        #expect(size > 8 << 20)
        #expect(Int64(size) * 10_000 >= estimate * 4)
        #expect(size % (1 << 20) == 0)
    }

    @Test func aSchemaTooLargeEvenForFiveGiBPartsFailsEarly() {
        #expect {
            try planner.partSize(estimatedBytes: 20 << 40)  // 20 TiB × 4 > 5 GiB × 10,000
        } throws: { error in
            guard case .tooLarge(let estimated, _) = error as? PartSizePlanner.PlanError else { return false }
            return estimated >= 20 << 40 && "\(error)".contains("backup.part_size")
        }
    }

    @Test func aConfiguredSizeIsUsedAndChecked() throws {
        #expect(try PartSizePlanner(configuredPartSize: 16 << 20).partSize(estimatedBytes: 1 << 30) == 16 << 20)
        #expect(throws: PartSizePlanner.PlanError.partSizeOutOfRange(1 << 20)) {
            try PartSizePlanner(configuredPartSize: 1 << 20).partSize(estimatedBytes: 0)
        }
        #expect(throws: PartSizePlanner.PlanError.self) {
            try PartSizePlanner(configuredPartSize: 5 << 20).partSize(estimatedBytes: 100 << 30)
        }
    }
}
