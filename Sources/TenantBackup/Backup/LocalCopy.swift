import Foundation

/// `backup --output`: where the stored bytes are also written, checked by the command before any dump starts,
/// so a typo in the path costs nothing.
public enum LocalCopy {
    /// Why the local copy's path cannot be used.
    public struct Unusable: Error, Equatable, CustomStringConvertible {
        public let description: String
    }

    /// A directory for several schemas; for one, an existing directory or a new file in an existing, writable
    /// directory. An existing file is refused unless `overwrite`; what is not a regular file, always.
    public static func check(_ path: String, schemas: Int, overwrite: Bool) throws(Unusable) {
        func unusable(_ message: String) -> Unusable { Unusable(description: message) }
        guard !path.isEmpty else { throw unusable("the local copy's path is empty") }
        if isDirectory(path) {
            guard access(path, W_OK) == 0 else { throw unusable("the local copy's directory \(path) is not writable") }
            return
        }
        // `file/` names a directory: lstat and the existence checks would look at nothing, and the copy would
        // be written to `file`, past them.
        guard !path.hasSuffix("/") else {
            throw unusable("the local copy's path \(path) ends in / but is not an existing directory; create the directory, or name a file")
        }
        guard schemas <= 1 else {
            throw unusable("the local copy path \(path) must be an existing directory when more than one schema is backed up")
        }
        let parent = (path as NSString).deletingLastPathComponent.isEmpty ? "." : (path as NSString).deletingLastPathComponent
        guard isDirectory(parent) else {
            throw unusable("the local copy cannot be written to \(path): the directory \(parent) does not exist")
        }
        guard access(parent, W_OK) == 0 else {
            throw unusable("the local copy cannot be written to \(path): the directory \(parent) is not writable")
        }
        var status = stat()
        if lstat(path, &status) == 0, status.st_mode & S_IFMT != S_IFREG {
            // A device, a socket, a symbolic link: never replaced by a dump, --force or not.
            throw unusable("the local copy's path \(path) exists and is not a regular file; choose another path")
        }
        if FileManager.default.fileExists(atPath: path), !overwrite {
            throw unusable("the local copy's file \(path) already exists; nothing was backed up (choose another path, or allow overwriting it)")
        }
    }

    static func isDirectory(_ path: String) -> Bool {
        var isDirectory: ObjCBool = false
        return FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) && isDirectory.boolValue
    }
}
