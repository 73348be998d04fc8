#if canImport(Glibc)
import Glibc
#endif

/// Process-wide allocator settings that keep memory flat however large a dump is.
public enum MemoryTuning {
    /// Makes glibc serve every allocation of 1 MiB or more (upload parts) with its own mapping, returned to
    /// the system when freed. Without it glibc's dynamic threshold soon serves 8 MiB parts from per-thread
    /// arenas that keep freed memory, and peak RSS creeps up with the number of parts (measured: 52 MiB for a
    /// 50 MiB schema, 67 MiB for a 1 GiB one; with the threshold fixed, 53 and 54).
    public static func apply() {
        #if canImport(Glibc)
        // mallopt lives in <malloc.h>, which Glibc's module does not export; M_MMAP_THRESHOLD is -3.
        typealias Mallopt = @convention(c) (Int32, Int32) -> Int32
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "mallopt") else { return }
        _ = unsafeBitCast(symbol, to: Mallopt.self)(-3, 1 << 20)
        #endif
    }
}
