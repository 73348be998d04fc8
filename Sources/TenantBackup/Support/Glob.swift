/// A shell-style pattern for schema names: `*` any run of characters, `?` one character, `[abc]`,
/// `[a-z]` and `[!abc]` character sets, `\` to match the next character literally.
///
/// Used only to select among names that already exist; a pattern never reaches `pg_dump`.
public struct Glob: Sendable, Equatable, CustomStringConvertible {
    /// A pattern that cannot be compiled, such as an unclosed `[`.
    public struct SyntaxError: Error, Equatable, CustomStringConvertible {
        public let pattern: String
        public let problem: String
        public var description: String { "pattern '\(pattern)': \(problem)" }
    }

    enum Token: Equatable {
        case literal(Character)
        case any
        case anyRun
        case set(negated: Bool, items: [SetItem])
    }

    enum SetItem: Equatable {
        case single(Character)
        case range(Character, Character)
    }

    public let pattern: String
    let tokens: [Token]

    public var description: String { pattern }

    public init(_ pattern: String) throws(SyntaxError) {
        self.pattern = pattern
        var tokens: [Token] = []
        let characters = Array(pattern)
        var index = 0
        while index < characters.count {
            let character = characters[index]
            switch character {
            case "*":
                if tokens.last != .anyRun { tokens.append(.anyRun) }
            case "?":
                tokens.append(.any)
            case "\\":
                index += 1
                guard index < characters.count else {
                    throw SyntaxError(pattern: pattern, problem: "ends with an escaping '\\'")
                }
                tokens.append(.literal(characters[index]))
            case "[":
                var cursor = index + 1
                var negated = false
                if cursor < characters.count, characters[cursor] == "!" || characters[cursor] == "^" {
                    negated = true
                    cursor += 1
                }
                var items: [SetItem] = []
                var first = true
                while cursor < characters.count, characters[cursor] != "]" || first {
                    first = false
                    let low = characters[cursor]
                    if cursor + 2 < characters.count, characters[cursor + 1] == "-", characters[cursor + 2] != "]" {
                        let high = characters[cursor + 2]
                        guard low <= high else {
                            throw SyntaxError(pattern: pattern, problem: "range \(low)-\(high) is reversed")
                        }
                        items.append(.range(low, high))
                        cursor += 3
                    } else {
                        items.append(.single(low))
                        cursor += 1
                    }
                }
                guard cursor < characters.count else {
                    throw SyntaxError(pattern: pattern, problem: "'[' at position \(index + 1) is never closed by ']'")
                }
                tokens.append(.set(negated: negated, items: items))
                index = cursor
            default:
                tokens.append(.literal(character))
            }
            index += 1
        }
        self.tokens = tokens
    }

    /// Whether the whole of `name` matches the pattern.
    public func matches(_ name: String) -> Bool {
        let characters = Array(name)
        // Iterative matching with backtracking to the last `*` (linear in practice, no recursion).
        var t = 0
        var c = 0
        var starToken = -1
        var starCharacter = 0
        while c < characters.count {
            if t < tokens.count {
                switch tokens[t] {
                case .anyRun:
                    starToken = t
                    starCharacter = c
                    t += 1
                    continue
                case .any:
                    t += 1
                    c += 1
                    continue
                case .literal(let literal) where literal == characters[c]:
                    t += 1
                    c += 1
                    continue
                case .set(let negated, let items) where Self.inSet(characters[c], items) != negated:
                    t += 1
                    c += 1
                    continue
                default:
                    break
                }
            }
            guard starToken >= 0 else { return false }
            t = starToken + 1
            starCharacter += 1
            c = starCharacter
        }
        while t < tokens.count, tokens[t] == .anyRun { t += 1 }
        return t == tokens.count
    }

    private static func inSet(_ character: Character, _ items: [SetItem]) -> Bool {
        items.contains { item in
            switch item {
            case .single(let single): return single == character
            case .range(let low, let high): return low <= character && character <= high
            }
        }
    }
}
