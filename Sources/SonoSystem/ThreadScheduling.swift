#if canImport(Glibc)
import Glibc
#endif

/// Real-time scheduling of the calling thread: the control loop, the board links that feed it
/// and the simulated boards all ask for SCHED_FIFO the same way.
public enum ThreadScheduling {
    /// Puts the calling thread under SCHED_FIFO at `priority` (1–99). Returns nil on success, else
    /// why not (usually "Operation not permitted": no CAP_SYS_NICE and no RLIMIT_RTPRIO).
    @discardableResult
    public static func useFIFO(priority: Int32) -> String? {
        var parameters = sched_param(sched_priority: priority)
        let status = pthread_setschedparam(pthread_self(), Int32(SCHED_FIFO), &parameters)
        return status == 0 ? nil : Errno(status).description
    }

    /// Sets the calling thread's nice value (Linux keeps one per thread; -20…19, higher yields
    /// to others). Returns nil on success, else why not (a negative value needs CAP_SYS_NICE or
    /// RLIMIT_NICE).
    @discardableResult
    public static func setNice(_ nice: Int32) -> String? {
        setpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0, nice) == 0 ? nil : Errno.current.description
    }

    /// Names the calling thread for the kernel, so `ps -L`, `top -H`, perf and ftrace tell
    /// Sono's threads apart (a new thread otherwise shows its creator's name). The kernel keeps
    /// the first 15 bytes.
    public static func nameCurrentThread(_ name: String) {
        // /proc/thread-self/comm is prctl(PR_SET_NAME) without a variadic C call.
        let descriptor = open("/proc/thread-self/comm", O_WRONLY | O_CLOEXEC)
        guard descriptor >= 0 else { return }
        defer { close(descriptor) }
        let bytes = Array(name.utf8.prefix(15))
        _ = bytes.withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
    }

    /// True when the calling thread runs under SCHED_FIFO (a real-time thread, which must not
    /// block on another thread).
    public static var currentThreadIsRealTime: Bool {
        var policy: Int32 = 0
        var parameters = sched_param()
        return pthread_getschedparam(pthread_self(), &policy, &parameters) == 0 && policy == Int32(SCHED_FIFO)
    }
}
