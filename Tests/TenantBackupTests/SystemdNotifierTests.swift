import Foundation
import Testing

@testable import TenantBackup

/// The notifier against a real datagram socket, as systemd would listen.
@Suite struct SystemdNotifierTests {
    /// Binds a datagram socket at a fresh path and returns its descriptor and path.
    static func listen() throws -> (Int32, String) {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("tb-notify-\(UUID().uuidString.prefix(8))").path
        let descriptor = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: Array(path.utf8)) }
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        try #require(result == 0)
        var timeout = timeval(tv_sec: 2, tv_usec: 0)
        setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        return (descriptor, path)
    }

    static func receive(_ descriptor: Int32) -> String? {
        var buffer = [UInt8](repeating: 0, count: 4096)
        let count = recv(descriptor, &buffer, buffer.count, 0)
        return count > 0 ? String(decoding: buffer.prefix(count), as: UTF8.self) : nil
    }

    @Test func messagesArriveAsSystemdExpectsThem() throws {
        let (descriptor, path) = try Self.listen()
        defer {
            close(descriptor)
            unlink(path)
        }
        let notifier = SystemdNotifier(environment: ["NOTIFY_SOCKET": path])
        notifier.ready(status: "idle, next cycle 02:00 CET")
        #expect(Self.receive(descriptor) == "READY=1\nSTATUS=idle, next cycle 02:00 CET")
        notifier.reloading()
        let reloading = Self.receive(descriptor) ?? ""
        #expect(reloading.hasPrefix("RELOADING=1\nMONOTONIC_USEC="))
        #expect(Int64(reloading.split(separator: "=").last ?? "") ?? 0 > 0)
        notifier.watchdog()
        #expect(Self.receive(descriptor) == "WATCHDOG=1")
        notifier.stopping()
        #expect(Self.receive(descriptor) == "STOPPING=1")
    }

    @Test func withoutNotifySocketEverythingIsSilentlySkipped() {
        let notifier = SystemdNotifier(environment: [:])
        #expect(!notifier.isEnabled)
        #expect(!notifier.notify(["READY=1"]))
        #expect(notifier.watchdogInterval == nil)
    }

    @Test func theWatchdogPingsAtHalfTheIntervalForThisProcessOnly() {
        #expect(SystemdNotifier(environment: ["WATCHDOG_USEC": "30000000"]).watchdogInterval == .seconds(15))
        #expect(SystemdNotifier(environment: ["WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "\(getpid())"]).watchdogInterval == .seconds(15))
        #expect(SystemdNotifier(environment: ["WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"]).watchdogInterval == nil)
    }
}
