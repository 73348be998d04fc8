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
}
