import Foundation
import Testing

@testable import TenantBackup

@Suite struct DotEnvTests {
    @Test func readsTheUsualForms() throws {
        let text = """
            # Django settings
            AWS_ACCESS_KEY_ID=AKID
            export AWS_STORAGE_BUCKET_NAME="clinic backups"
            AWS_S3_REGION_NAME='eu-west-1'
            EMPTY=
            PLAIN=value # trailing comment

            """
        let values = try DotEnv.parse(text, path: ".env")
        #expect(values == [
            "AWS_ACCESS_KEY_ID": "AKID", "AWS_STORAGE_BUCKET_NAME": "clinic backups",
            "AWS_S3_REGION_NAME": "eu-west-1", "EMPTY": "", "PLAIN": "value",
        ])
    }

    @Test func aLineThatIsNotAnAssignmentIsReportedWithItsNumber() {
        #expect(throws: ConfigError.file(path: ".env", line: 2, column: 1, message: "expected KEY=value")) {
            try DotEnv.parse("A=1\nnot an assignment\n", path: ".env")
        }
    }
}
