import Testing

@testable import TenantBackup

@Suite struct GlobTests {
    @Test(arguments: [
        ("clinic_*", "clinic_norte", true),
        ("clinic_*", "clinic_", true),
        ("clinic_*", "clinic", false),
        ("clinic_*", "xclinic_a", false),
        ("a?c", "abc", true),
        ("a?c", "ac", false),
        ("[bm]*", "bienestar", true),
        ("[bm]*", "mindcare", true),
        ("[bm]*", "Clínica \"Sur\"", false),
        ("[!bm]*", "Clínica \"Sur\"", true),
        ("[a-c]x", "bx", true),
        ("[a-c]x", "dx", false),
        ("a\\*", "a*", true),
        ("a\\*", "ab", false),
        ("*", "", true),
        ("", "", true),
        ("", "a", false),
        ("*a*b*", "xxaYYbZZ", true),
        ("*a*b*", "xxbYYaZZ", false),
        ("Clínica*", "Clínica \"Sur\"", true),
        ("demo", "demo", true),
        ("demo", "demo2", false),
    ])
    func matchesWholeNames(pattern: String, name: String, expected: Bool) throws {
        #expect(try Glob(pattern).matches(name) == expected)
    }

    @Test(arguments: ["[abc", "a\\", "[z-a]"])
    func rejectsMalformedPatterns(pattern: String) {
        #expect(throws: Glob.SyntaxError.self) { try Glob(pattern) }
    }

    @Test func manyStarsDoNotBacktrackExponentially() throws {
        let glob = try Glob(String(repeating: "*a", count: 30) + "b")
        #expect(!glob.matches(String(repeating: "a", count: 200)))
    }
}
