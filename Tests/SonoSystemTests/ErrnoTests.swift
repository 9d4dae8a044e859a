import SonoSystem
import Testing
#if canImport(Glibc)
import Glibc
#endif

@Suite struct ErrnoTests {
    @Test func describesTheNumberWithTheCLibraryMessage() {
        #expect(Errno.noSuchFileOrDirectory.description == "No such file or directory")
        #expect(Errno(rawValue: EEXIST) == .fileExists)
        // An unknown number still gets a message, not an empty string.
        #expect(!Errno(rawValue: 9_999).description.isEmpty)
    }

    @Test func returnsTheResultOrThrowsTheErrorOfTheCall() throws {
        #expect(try Errno.retryingInterrupts { Int32(7) } == 7)
        #expect(throws: Errno.badFileDescriptor) { try Errno.retryingInterrupts { close(-1) } }
        #expect(Errno.errorRetryingInterrupts({ 0 }) == nil)
        #expect(Errno.errorRetryingInterrupts({ ETIMEDOUT }) == .timedOut)
    }

    @Test func retriesOnlyInterruptedCalls() throws {
        var calls = 0
        let result = try Errno.retryingInterrupts { () -> Int in
            calls += 1
            if calls < 3 {
                errno = EINTR
                return -1
            }
            return 42
        }
        #expect(result == 42 && calls == 3)

        var direct = 0
        let error = Errno.errorRetryingInterrupts({ () -> Int32 in
            direct += 1
            return direct < 3 ? EINTR : EIO
        })
        #expect(error == .ioError && direct == 3)
    }

    @Test func theClockIsMonotonicAndSleepsToAnAbsoluteDeadline() {
        let start = MonotonicClock.nowNanos()
        MonotonicClock.sleep(untilNanos: start + 2_000_000)
        #expect(MonotonicClock.nowNanos() >= start + 2_000_000)
        #expect(MonotonicClock.nowMicros() >= start / 1_000)
    }
}
