/// Removes secrets from text that is about to reach a log line or an error message.
public enum Redaction {
    /// Replaces the password of a `postgresql://user:password@host/db` URL and any `password=...` keyword
    /// of a libpq connection string with `***`.
    public static func connectionString(_ value: String) -> String {
        var result = value
        // URL form: scheme://user:password@host
        if let schemeEnd = result.range(of: "://") {
            let afterScheme = result[schemeEnd.upperBound...]
            let authorityEnd = afterScheme.firstIndex(where: { $0 == "/" || $0 == "?" }) ?? afterScheme.endIndex
            let authority = afterScheme[..<authorityEnd]
            if let at = authority.lastIndex(of: "@"), let colon = authority[..<at].firstIndex(of: ":") {
                result.replaceSubrange(result.index(after: colon)..<at, with: "***")
            }
        }
        // Keyword form and URL query parameters: password=secret (quoted or not).
        var output = ""
        var rest = Substring(result)
        while let match = rest.range(of: "password=", options: .caseInsensitive) {
            output += rest[..<match.upperBound]
            output += "***"
            var index = match.upperBound
            if index < rest.endIndex, rest[index] == "'" {
                index = rest.index(after: index)
                while index < rest.endIndex, rest[index] != "'" {
                    if rest[index] == "\\" { index = rest.index(after: index) }
                    if index < rest.endIndex { index = rest.index(after: index) }
                }
                if index < rest.endIndex { index = rest.index(after: index) }
            } else {
                while index < rest.endIndex, rest[index] != " ", rest[index] != "&" {
                    index = rest.index(after: index)
                }
            }
            rest = rest[index...]
        }
        output += rest
        return output
    }

    /// The secrets a connection string may hold, whether or not it parses: a URL's password (everything
    /// between the user's `:` and the last `@` of the authority, even when the rest of the URL is malformed,
    /// or when the scheme is missing), and every `password=` value.
    static func passwords(in connectionString: String) -> [String] {
        var found: [String] = []
        var authority = Substring(connectionString)
        if let schemeEnd = connectionString.range(of: "://") { authority = connectionString[schemeEnd.upperBound...] }
        if let at = authority.lastIndex(of: "@") {
            let userInfo = authority[..<at]
            // The user info never holds a "/" before the "@" in a well-formed URL; a malformed one is cut at
            // the last "@" all the same, so its password is found.
            let start = userInfo.lastIndex(of: "/").map { userInfo.index(after: $0) } ?? userInfo.startIndex
            if let colon = userInfo[start...].firstIndex(of: ":") {
                let password = String(userInfo[userInfo.index(after: colon)...])
                if !password.isEmpty { found.append(password) }
            }
        }
        var rest = Substring(connectionString)
        while let match = rest.range(of: "password=", options: .caseInsensitive) {
            var index = match.upperBound
            var value = ""
            let quoted = index < rest.endIndex && rest[index] == "'"
            if quoted { index = rest.index(after: index) }
            while index < rest.endIndex {
                let character = rest[index]
                if quoted ? character == "'" : (character == " " || character == "&") { break }
                value.append(character)
                index = rest.index(after: index)
            }
            if !value.isEmpty { found.append(value) }
            rest = rest[index...]
        }
        return found
    }

    /// `text` with every secret of `connectionString` (and `PGPASSWORD`) replaced by `***`, and any
    /// connection string in it redacted: for libpq's messages, which repeat a malformed URL whole.
    public static func libpqMessage(_ text: String, connectionString: String?, environment: [String: String] = [:]) -> String {
        var secrets = connectionString.map(passwords(in:)) ?? []
        if let password = environment["PGPASSWORD"], !password.isEmpty { secrets.append(password) }
        // Percent-encoded passwords may be echoed decoded.
        secrets += secrets.compactMap { $0.removingPercentEncoding }.filter { !secrets.contains($0) }
        var result = text
        for secret in secrets.sorted(by: { $0.count > $1.count }) where !secret.isEmpty {
            result = result.replacingOccurrences(of: secret, with: "***")
        }
        return Self.connectionString(result)
    }
}
