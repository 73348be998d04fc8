import Foundation
import Testing
import TenantBackupTesting

@testable import TenantBackup

/// `backup --output`, checked before anything runs (the adversarial run: `file/` passed every check and the
/// copy replaced an existing file, or a symbolic link, without --force, readable by everyone).
@Suite struct LocalCopyTests {
    @Test func aPathEndingInASlashMustBeAnExistingDirectory() throws {
        let file = TestProcess.temporaryFile("existing.sql.zst")
        try "a dump".write(toFile: file, atomically: true, encoding: .utf8)
        let link = TestProcess.temporaryFile("link.sql.zst")
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: file)
        defer { for path in [file, link] { try? FileManager.default.removeItem(atPath: path) } }
        for path in [file + "/", link + "/", TestProcess.temporaryFile("new.sql.zst") + "/"] {
            #expect(throws: LocalCopy.Unusable.self, "\(path)") { try LocalCopy.check(path, schemas: 1, overwrite: true) }
        }
        #expect(throws: LocalCopy.Unusable.self) { try LocalCopy.check(file, schemas: 1, overwrite: false) }
        #expect(throws: LocalCopy.Unusable.self) { try LocalCopy.check(link, schemas: 1, overwrite: true) }
        try LocalCopy.check(file, schemas: 1, overwrite: true)
        try LocalCopy.check(FileManager.default.temporaryDirectory.path + "/", schemas: 3, overwrite: false)
    }
}
