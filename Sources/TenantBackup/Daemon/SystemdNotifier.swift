import Foundation

/// Tells systemd the daemon's state over the notification socket (`$NOTIFY_SOCKET`): `READY=1`,
/// `STATUS=…`, `WATCHDOG=1`, `RELOADING=1` with `MONOTONIC_USEC=`, `STOPPING=1`.
///
/// The protocol is sd_notify(3)'s: one datagram of newline-separated assignments to a Unix socket, a path
/// or an abstract name (`@…`). It is spoken directly, from the settings' environment, so a test can point it
/// at a socket of its own; without `NOTIFY_SOCKET` every call is a silent no-op.
public struct SystemdNotifier: Sendable {
    /// The socket path (`@` for the abstract namespace), or `nil` when not run by systemd.
    public let socketPath: String?
    /// Half of `WATCHDOG_USEC`, when systemd expects watchdog pings from this process.
    public let watchdogInterval: Duration?

    public init(environment: [String: String] = ProcessInfo.processInfo.environment) {
        let path = environment["NOTIFY_SOCKET"]
        socketPath = (path?.isEmpty ?? true) ? nil : path
        var interval: Duration?
        if let text = environment["WATCHDOG_USEC"], let usec = Int64(text), usec > 0 {
            let pidMatches = environment["WATCHDOG_PID"].map { Int32($0) == getpid() } ?? true
            if pidMatches { interval = .microseconds(usec / 2) }
        }
        watchdogInterval = interval
    }

    public var isEnabled: Bool { socketPath != nil }

    /// Sends `assignments` (e.g. `["READY=1", "STATUS=idle"]`) in one datagram. Returns whether it was sent.
    @discardableResult
    public func notify(_ assignments: [String]) -> Bool {
        guard let socketPath else { return false }
        let message = Array(assignments.joined(separator: "\n").utf8)
        let descriptor = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard descriptor >= 0 else { return false }
        defer { close(descriptor) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        var pathBytes = Array(socketPath.utf8)
        if pathBytes.first == UInt8(ascii: "@") { pathBytes[0] = 0 }  // abstract namespace
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        guard pathBytes.count < capacity else { return false }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: pathBytes)
        }
        let length = socklen_t(MemoryLayout<sa_family_t>.size + pathBytes.count + (pathBytes.first == 0 ? 0 : 1))
        let sent = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { socketAddress in
                message.withUnsafeBytes { bytes in
                    sendto(descriptor, bytes.baseAddress, bytes.count, Int32(MSG_NOSIGNAL), socketAddress, length)
                }
            }
        }
        return sent == message.count
    }

    public func ready(status: String? = nil) { notify(["READY=1"] + (status.map { ["STATUS=\($0)"] } ?? [])) }
    public func status(_ text: String) { notify(["STATUS=\(text)"]) }
    public func watchdog() { notify(["WATCHDOG=1"]) }
    public func stopping() { notify(["STOPPING=1"]) }

    /// `RELOADING=1` with the monotonic time systemd (253+) uses to match it with the following `READY=1`.
    public func reloading() {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        let microseconds = Int64(now.tv_sec) * 1_000_000 + Int64(now.tv_nsec) / 1000
        notify(["RELOADING=1", "MONOTONIC_USEC=\(microseconds)"])
    }
}
