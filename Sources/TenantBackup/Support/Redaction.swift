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
        for value in passwordKeywords(in: result).reversed() {
            result.replaceSubrange(value.span, with: "***")
        }
        return result
    }

    /// Every `password = value` in `text` (a libpq keyword, a URL query parameter, or either inside a message),
    /// with or without spaces around `=`: where its value lies (quotes included) and the value itself (quotes
    /// and backslash escapes removed). The one reader of this grammar, for finding secrets and for hiding them.
    static func passwordKeywords(in text: String) -> [(span: Range<String.Index>, value: String)] {
        var found: [(span: Range<String.Index>, value: String)] = []
        var searchFrom = text.startIndex
        while let match = text.range(of: "password", options: .caseInsensitive, range: searchFrom..<text.endIndex) {
            var index = match.upperBound
            while index < text.endIndex, text[index].isWhitespace { index = text.index(after: index) }
            guard index < text.endIndex, text[index] == "=" else {
                searchFrom = match.upperBound
                continue
            }
            index = text.index(after: index)
            while index < text.endIndex, text[index].isWhitespace { index = text.index(after: index) }
            let valueStart = index
            var value = ""
            let quoted = index < text.endIndex && text[index] == "'"
            if quoted { index = text.index(after: index) }
            while index < text.endIndex {
                let character = text[index]
                if quoted ? character == "'" : (character.isWhitespace || character == "&") { break }
                if quoted, character == "\\", text.index(after: index) < text.endIndex { index = text.index(after: index) }
                value.append(text[index])
                index = text.index(after: index)
            }
            if quoted, index < text.endIndex { index = text.index(after: index) }  // the closing quote
            found.append((valueStart..<index, value))
            searchFrom = index
        }
        return found
    }

    /// The secrets a connection string may hold, whether or not it parses: a URL's password (everything
    /// between the user's `:` and the last `@`, even when it holds `/` or `@` itself, or the scheme is
    /// missing), and every `password` keyword's value (`password=x`, `password = 'x y'`).
    static func passwords(in connectionString: String) -> [String] {
        var found: [String] = []
        let isURL = connectionString.contains("://") || !connectionString.contains("=")
        if isURL {
            var rest = Substring(connectionString)
            if let schemeEnd = connectionString.range(of: "://") { rest = connectionString[schemeEnd.upperBound...] }
            // The user info ends at the last "@": a password with "/" or "@" of its own (not percent-encoded)
            // is still found whole. Finding too much only hides more.
            if let at = rest.lastIndex(of: "@"), let colon = rest[..<at].firstIndex(of: ":") {
                let password = String(rest[rest.index(after: colon)..<at])
                if !password.isEmpty { found.append(password) }
            }
        }
        // `password=value` in keyword strings and URL queries.
        found += passwordKeywords(in: connectionString).map(\.value).filter { !$0.isEmpty }
        return found
    }

    /// A password and the pieces libpq may show of it when it misreads a URL (split at `@`, `/`, `:`, `?`,
    /// `#`, `&`, `=` or a space): each piece of three characters or more is a secret too.
    static func fragments(of password: String) -> [String] {
        let separators: Set<Character> = ["@", "/", ":", "?", "#", "&", "=", " "]
        return [password] + password.split(whereSeparator: { separators.contains($0) }).map(String.init).filter { $0.count >= 3 }
    }

    /// `text` with every secret of `connectionString` (and `PGPASSWORD`) replaced by `***`, and any
    /// connection string in it redacted: for libpq's messages, which repeat a malformed URL whole.
    public static func libpqMessage(_ text: String, connectionString: String?, environment: [String: String] = [:]) -> String {
        var secrets = (connectionString.map(passwords(in:)) ?? []).flatMap(fragments(of:))
        if let password = environment["PGPASSWORD"], !password.isEmpty { secrets += fragments(of: password) }
        // Percent-encoded passwords may be echoed decoded.
        secrets += secrets.compactMap { $0.removingPercentEncoding }.filter { !secrets.contains($0) }
        var result = text
        for secret in secrets.sorted(by: { $0.count > $1.count }) where !secret.isEmpty {
            result = result.replacingOccurrences(of: secret, with: "***")
        }
        return Self.connectionString(result)
    }
}
