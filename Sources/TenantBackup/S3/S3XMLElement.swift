/// An element of an S3 XML answer: name, text and child elements. Attributes are not kept (S3's answers
/// carry only the namespace in them).
///
/// S3's XML is small and regular, so a reader of our own keeps the library free of libxml2 and is
/// exercised directly by unit tests.
struct S3XMLElement: Sendable, Equatable {
    var name: String
    var text: String = ""
    var children: [S3XMLElement] = []

    /// The first child named `name`.
    func child(_ name: String) -> S3XMLElement? { children.first { $0.name == name } }

    /// Every child named `name`.
    func children(_ name: String) -> [S3XMLElement] { children.filter { $0.name == name } }

    /// The text of the first child named `name`.
    subscript(_ name: String) -> String? { child(name)?.text }

    struct SyntaxError: Error, CustomStringConvertible {
        let offset: Int
        let problem: String
        var description: String { "malformed XML at byte \(offset): \(problem)" }
    }

    /// Parses a document and returns its root element.
    static func parse(_ text: String) throws(SyntaxError) -> S3XMLElement {
        var reader = Reader(bytes: Array(text.utf8))
        return try reader.document()
    }

    private struct Reader {
        let bytes: [UInt8]
        var index = 0

        init(bytes: [UInt8]) { self.bytes = bytes }

        mutating func document() throws(SyntaxError) -> S3XMLElement {
            try skipMisc()
            guard peek() == UInt8(ascii: "<") else { throw SyntaxError(offset: index, problem: "no root element") }
            let root = try element()
            try skipMisc()
            guard index >= bytes.count else { throw SyntaxError(offset: index, problem: "content after the root element") }
            return root
        }

        func peek(_ offset: Int = 0) -> UInt8? {
            index + offset < bytes.count ? bytes[index + offset] : nil
        }

        func starts(with literal: String) -> Bool {
            let utf8 = Array(literal.utf8)
            guard index + utf8.count <= bytes.count else { return false }
            return Array(bytes[index..<index + utf8.count]) == utf8
        }

        mutating func skip(past literal: String) throws(SyntaxError) {
            let utf8 = Array(literal.utf8)
            while index + utf8.count <= bytes.count {
                if Array(bytes[index..<index + utf8.count]) == utf8 {
                    index += utf8.count
                    return
                }
                index += 1
            }
            throw SyntaxError(offset: index, problem: "unterminated construct, expected '\(literal)'")
        }

        mutating func skipWhitespace() {
            while let byte = peek(), byte == 0x20 || byte == 0x09 || byte == 0x0A || byte == 0x0D { index += 1 }
        }

        /// Skips whitespace, the XML declaration, processing instructions, comments and a DOCTYPE.
        mutating func skipMisc() throws(SyntaxError) {
            while true {
                skipWhitespace()
                if starts(with: "<?") {
                    try skip(past: "?>")
                } else if starts(with: "<!--") {
                    try skip(past: "-->")
                } else if starts(with: "<!DOCTYPE") {
                    try skip(past: ">")
                } else {
                    return
                }
            }
        }

        mutating func name() throws(SyntaxError) -> String {
            let start = index
            while let byte = peek(), !(byte == 0x20 || byte == 0x09 || byte == 0x0A || byte == 0x0D || byte == UInt8(ascii: ">") || byte == UInt8(ascii: "/") || byte == UInt8(ascii: "=")) {
                index += 1
            }
            guard index > start else { throw SyntaxError(offset: index, problem: "expected a name") }
            let full = String(decoding: bytes[start..<index], as: UTF8.self)
            // Keep the local name: `s3:Key` and `Key` are the same element to us.
            if let colon = full.lastIndex(of: ":") { return String(full[full.index(after: colon)...]) }
            return full
        }

        mutating func element() throws(SyntaxError) -> S3XMLElement {
            index += 1  // "<"
            var element = S3XMLElement(name: try name())
            // Attributes: skipped, but quoted values may hold '>' or '/'.
            while true {
                skipWhitespace()
                guard let byte = peek() else { throw SyntaxError(offset: index, problem: "unterminated tag <\(element.name)>") }
                if byte == UInt8(ascii: "/") {
                    guard peek(1) == UInt8(ascii: ">") else { throw SyntaxError(offset: index, problem: "expected '/>'") }
                    index += 2
                    return element
                }
                if byte == UInt8(ascii: ">") {
                    index += 1
                    break
                }
                _ = try name()
                skipWhitespace()
                guard peek() == UInt8(ascii: "=") else { throw SyntaxError(offset: index, problem: "expected '=' in an attribute") }
                index += 1
                skipWhitespace()
                guard let quote = peek(), quote == UInt8(ascii: "\"") || quote == UInt8(ascii: "'") else {
                    throw SyntaxError(offset: index, problem: "expected a quoted attribute value")
                }
                index += 1
                while let byte = peek(), byte != quote { index += 1 }
                guard peek() == quote else { throw SyntaxError(offset: index, problem: "unterminated attribute value") }
                index += 1
            }
            var text: [UInt8] = []
            while true {
                guard let byte = peek() else { throw SyntaxError(offset: index, problem: "<\(element.name)> is never closed") }
                if byte == UInt8(ascii: "<") {
                    if starts(with: "</") {
                        index += 2
                        let closing = try name()
                        guard closing == element.name else {
                            throw SyntaxError(offset: index, problem: "</\(closing)> closes <\(element.name)>")
                        }
                        skipWhitespace()
                        guard peek() == UInt8(ascii: ">") else { throw SyntaxError(offset: index, problem: "expected '>'") }
                        index += 1
                        element.text = try Self.decodeEntities(text, at: index)
                        return element
                    } else if starts(with: "<![CDATA[") {
                        index += 9
                        let start = index
                        try skip(past: "]]>")
                        // CDATA is literal: escape '&' so entity decoding leaves it as it is.
                        for byte in bytes[start..<index - 3] {
                            if byte == UInt8(ascii: "&") { text += Array("&amp;".utf8) } else { text.append(byte) }
                        }
                    } else if starts(with: "<!--") {
                        try skip(past: "-->")
                    } else if starts(with: "<?") {
                        try skip(past: "?>")
                    } else {
                        element.children.append(try self.element())
                    }
                } else {
                    text.append(byte)
                    index += 1
                }
            }
        }

        static func decodeEntities(_ raw: [UInt8], at offset: Int) throws(SyntaxError) -> String {
            guard raw.contains(UInt8(ascii: "&")) else { return String(decoding: raw, as: UTF8.self) }
            var output: [UInt8] = []
            var index = 0
            while index < raw.count {
                let byte = raw[index]
                guard byte == UInt8(ascii: "&") else {
                    output.append(byte)
                    index += 1
                    continue
                }
                guard let end = raw[index...].firstIndex(of: UInt8(ascii: ";")), end - index <= 12 else {
                    throw SyntaxError(offset: offset, problem: "unterminated entity")
                }
                let entity = String(decoding: raw[(index + 1)..<end], as: UTF8.self)
                switch entity {
                case "lt": output.append(UInt8(ascii: "<"))
                case "gt": output.append(UInt8(ascii: ">"))
                case "amp": output.append(UInt8(ascii: "&"))
                case "quot": output.append(UInt8(ascii: "\""))
                case "apos": output.append(UInt8(ascii: "'"))
                default:
                    let scalarValue: UInt32?
                    if entity.hasPrefix("#x") || entity.hasPrefix("#X") {
                        scalarValue = UInt32(entity.dropFirst(2), radix: 16)
                    } else if entity.hasPrefix("#") {
                        scalarValue = UInt32(entity.dropFirst())
                    } else {
                        scalarValue = nil
                    }
                    guard let value = scalarValue, let scalar = Unicode.Scalar(value) else {
                        throw SyntaxError(offset: offset, problem: "unknown entity &\(entity);")
                    }
                    output += Array(String(Character(scalar)).utf8)
                }
                index = end + 1
            }
            return String(decoding: output, as: UTF8.self)
        }
    }
}
