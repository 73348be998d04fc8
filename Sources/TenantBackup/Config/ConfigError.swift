/// A configuration that cannot be used, with where it came from and what to change.
public enum ConfigError: Error, Equatable, CustomStringConvertible {
    /// A problem at a place in the YAML file.
    case file(path: String, line: Int, column: Int, message: String)
    /// The file could not be read or parsed at all.
    case unreadable(path: String, reason: String)
    /// An environment variable holds a value that cannot be used.
    case environment(variable: String, message: String)
    /// A file of `$CREDENTIALS_DIRECTORY` is unusable.
    case credential(name: String, message: String)
    /// The settings are individually valid but do not make sense together.
    case invalid(setting: String, message: String)

    public var description: String {
        switch self {
        case .file(let path, let line, let column, let message):
            return "\(path):\(line):\(column): \(message)"
        case .unreadable(let path, let reason):
            return "\(path): \(reason)"
        case .environment(let variable, let message):
            return "environment variable \(variable): \(message)"
        case .credential(let name, let message):
            return "credential \(name) (in $CREDENTIALS_DIRECTORY): \(message)"
        case .invalid(let setting, let message):
            return "setting \(setting): \(message)"
        }
    }
}
