import Foundation
import Yams

/// Reads the YAML configuration file into ``Settings``, reporting unknown keys and bad values with the
/// line and column where they are.
///
/// The file is walked node by node instead of being decoded with `Codable`, so that every error can point
/// at its place in the file and a misspelt key is an error rather than a silently ignored setting.
struct YAMLSettingsReader {
    let path: String

    func read(_ text: String, into settings: inout Settings) throws(ConfigError) {
        let root: Node?
        do {
            root = try Yams.compose(yaml: text)
        } catch let error as YamlError {
            throw describe(error)
        } catch {
            throw .unreadable(path: path, reason: "not valid YAML: \(error)")
        }
        guard let root else { return }  // an empty file means "all defaults"
        let top = try section(root, name: "the top level")
        // The sections and keys are the settings table's (``SettingDefinition/all``): a key it does not
        // declare is an error at its line, never a setting silently ignored.
        var sectionNames: [String] = []
        for definition in SettingDefinition.all where !sectionNames.contains(definition.section) { sectionNames.append(definition.section) }
        try top.only(sectionNames)
        var sections: [String: Section] = [:]
        for name in sectionNames {
            guard let node = top[name] else { continue }
            let section = try section(node, name: name)
            try section.only(SettingDefinition.all.filter { $0.section == name }.map(\.name))
            sections[name] = section
        }
        for definition in SettingDefinition.all {
            guard let section = sections[definition.section], let apply = definition.apply else { continue }
            var input = SettingDefinition.Input(
                fail: { message in section.error(at: definition.name, message) },
                sibling: { key in SettingDefinition.named(key).flatMap { other in (try? section.string(other.name)) ?? nil } })
            if definition.isList {
                guard let items = try section.strings(definition.name) else { continue }
                input.list = items
            } else {
                guard let text = try section.string(definition.name) else { continue }
                input.text = text
            }
            try apply(input, &settings)
        }
        if let s3 = sections["s3"] {
            // The credentials go together (the credentials chain): a key id without its secret is an error.
            let accessKey = try s3.string("access_key_id")
            let secret = try s3.string("secret_access_key")
            switch (accessKey, secret) {
            case (let accessKey?, let secret?):
                settings.s3.credentials = S3Credentials(
                    accessKeyId: accessKey, secretAccessKey: secret, sessionToken: try s3.string("session_token"))
            case (nil, nil):
                break
            case (.some, nil):
                throw s3.error(at: "access_key_id", "access_key_id is set but secret_access_key is not")
            case (nil, .some):
                throw s3.error(at: "secret_access_key", "secret_access_key is set but access_key_id is not")
            }
        }
    }

    private func section(_ node: Node, name: String) throws(ConfigError) -> Section {
        // A section whose settings are all commented out (as in the example file) means "all defaults".
        if node.null != nil { return Section(reader: self, name: name, mapping: Node.Mapping([])) }
        guard let mapping = node.mapping else {
            throw error(node.mark, "\(name) must be a mapping of settings")
        }
        return Section(reader: self, name: name, mapping: mapping)
    }

    fileprivate func error(_ mark: Mark?, _ message: String) -> ConfigError {
        .file(path: path, line: mark?.line ?? 1, column: mark?.column ?? 1, message: message)
    }

    private func describe(_ error: YamlError) -> ConfigError {
        switch error {
        case .scanner(_, let problem, let mark, _), .parser(_, let problem, let mark, _), .composer(_, let problem, let mark, _):
            return .file(path: path, line: mark.line, column: mark.column, message: "not valid YAML: \(problem)")
        case .duplicatedKeysInMapping(let duplicates, _):
            return .unreadable(path: path, reason: "duplicated keys: \(duplicates.joined(separator: ", "))")
        default:
            return .unreadable(path: path, reason: "not valid YAML: \(error)")
        }
    }

    /// One mapping of the file, e.g. `s3:`.
    struct Section {
        let reader: YAMLSettingsReader
        let name: String
        let mapping: Node.Mapping

        subscript(key: String) -> Node? {
            mapping.first(where: { $0.key.string == key })?.value
        }

        func only(_ known: [String]) throws(ConfigError) {
            for (key, _) in mapping {
                guard let name = key.string, known.contains(name) else {
                    let suggestion = known.sorted().joined(separator: ", ")
                    throw reader.error(key.mark, "unknown key '\(key.string ?? "?")' in \(self.name) (known keys: \(suggestion))")
                }
            }
        }

        func error(at key: String, _ message: String) -> ConfigError {
            let mark = mapping.first(where: { $0.key.string == key })?.value.mark
            return reader.error(mark, "\(name).\(key): \(message)")
        }

        func string(_ key: String) throws(ConfigError) -> String? {
            guard let node = self[key] else { return nil }
            if node.null != nil { return nil }
            guard let scalar = node.scalar else {
                throw error(at: key, "expected a single value, found a \(node.sequence != nil ? "list" : "mapping")")
            }
            return scalar.string
        }

        func strings(_ key: String) throws(ConfigError) -> [String]? {
            guard let node = self[key] else { return nil }
            if node.null != nil { return [] }
            guard let sequence = node.sequence else {
                throw error(at: key, "expected a list, e.g. [\"clinic_*\"]")
            }
            var values: [String] = []
            for item in sequence {
                guard let scalar = item.scalar else {
                    throw reader.error(item.mark, "\(name).\(key): every item must be a single value")
                }
                values.append(scalar.string)
            }
            return values
        }
    }
}
