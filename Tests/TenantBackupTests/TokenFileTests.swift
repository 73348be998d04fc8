import Foundation
import Testing

@testable import TenantBackup

/// The API's own tokens: only hashes stored, 0600, matched by hash, revoked by id, no update lost.
@Suite struct TokenFileTests {
    func temporaryPath() -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("tokens-\(UUID().uuidString.prefix(8)).json").path
    }

    @Test func aTokenIsStoredAsItsHashOnlyInAFileOnlyItsOwnerReads() throws {
        let path = temporaryPath()
        defer { try? FileManager.default.removeItem(atPath: path); try? FileManager.default.removeItem(atPath: path + ".lock") }
        let file = TokenFile(path: path)
        let (token, record) = try file.create(tenant: "bienestar", note: "platform")
        #expect(token.hasPrefix("tbk_") && token.count >= 4 + 43, "256 bits in base64url")
        let text = try String(contentsOfFile: path, encoding: .utf8)
        #expect(!text.contains(token) && !text.contains(String(token.dropFirst(4))))
        #expect(text.contains(TokenFile.hash(token)))
        let mode = try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? NSNumber
        #expect(mode?.intValue == 0o600)
        let tokens = try file.load()
        #expect(tokens == [record])
        #expect(TokenFile.match(token, in: TokenFile.index(tokens))?.tenant == "bienestar")
        #expect(TokenFile.match(token + "x", in: TokenFile.index(tokens)) == nil)
        #expect(TokenFile.match("", in: TokenFile.index(tokens)) == nil)
        #expect(TokenFile.match(TokenFile.hash(token), in: TokenFile.index(tokens)) == nil, "the stored hash is not a token")
    }

    @Test func revokingRemovesOnlyThatTokenAndAnUnknownIdChangesNothing() throws {
        let path = temporaryPath()
        defer { try? FileManager.default.removeItem(atPath: path); try? FileManager.default.removeItem(atPath: path + ".lock") }
        let file = TokenFile(path: path)
        let (first, one) = try file.create(tenant: "bienestar", note: nil)
        let (second, _) = try file.create(tenant: "mindcare", note: nil)
        #expect(try file.revoke(id: "nope") == nil)
        #expect(try file.revoke(id: one.id) == one)
        let tokens = try file.load()
        #expect(TokenFile.match(first, in: TokenFile.index(tokens)) == nil)
        #expect(TokenFile.match(second, in: TokenFile.index(tokens))?.tenant == "mindcare")
    }

    @Test func concurrentCreatesLoseNothing() async throws {
        let path = temporaryPath()
        defer { try? FileManager.default.removeItem(atPath: path); try? FileManager.default.removeItem(atPath: path + ".lock") }
        await withTaskGroup(of: Void.self) { group in
            for index in 0..<40 {
                group.addTask { _ = try? TokenFile(path: path).create(tenant: "t\(index)", note: nil) }
            }
        }
        #expect(try TokenFile(path: path).load().count == 40)
    }

    @Test func aFileOthersMayReadOrWriteIsRefusedAsSshRefusesAKey() throws {
        let path = temporaryPath()
        defer { try? FileManager.default.removeItem(atPath: path) }
        _ = try TokenFile(path: path).create(tenant: "bienestar", note: nil)
        #expect(try TokenFile(path: path).load().count == 1)
        for mode in [0o644, 0o640, 0o602] {
            chmod(path, mode_t(mode))
            #expect {
                try TokenFile(path: path).load()
            } throws: { error in
                "\(error)".contains(path) && "\(error)".contains("chmod 600") && "\(error)".contains(String(mode, radix: 8))
            }
        }
    }

    @Test func aLookupByHashFindsExactlyTheToken() throws {
        let path = temporaryPath()
        defer { try? FileManager.default.removeItem(atPath: path) }
        let file = TokenFile(path: path)
        let (token, _) = try file.create(tenant: "bienestar", note: nil)
        _ = try file.create(tenant: "mindcare", note: nil)
        let index = TokenFile.index(try file.load())
        #expect(TokenFile.match(token, in: index)?.tenant == "bienestar")
        #expect(TokenFile.match(token + "x", in: index) == nil && TokenFile.match("", in: index) == nil)
        #expect(index.count == 2)
    }

    @Test func aCorruptFileIsAnErrorThatSaysWhatToDo() throws {
        let path = temporaryPath()
        defer { try? FileManager.default.removeItem(atPath: path) }
        try "not json".write(toFile: path, atomically: true, encoding: .utf8)
        chmod(path, 0o600)
        #expect {
            try TokenFile(path: path).load()
        } throws: { error in
            "\(error)".contains(path) && "\(error)".contains("create new tokens")
        }
    }
}
