import Foundation
import SonoSystem
import Testing

@Suite struct ThreadOwnerTests {
    /// Runs `body` on a fresh thread and returns its answer.
    func onAnotherThread(_ body: @escaping @Sendable () -> Bool) -> Bool {
        let answer = AnswerBox()
        let done = DispatchSemaphore(value: 0)
        let thread = Thread {
            answer.set(body())
            done.signal()
        }
        thread.start()
        done.wait()
        return answer.value
    }

    final class AnswerBox: @unchecked Sendable {
        // @unchecked: written by the one thread before it signals, read after the wait.
        var value = false
        func set(_ value: Bool) { self.value = value }
    }

    @Test func theFirstThreadToAskOwnsItAndNoOtherDoes() {
        let owner = ThreadOwner("the test's thread")
        #expect(owner.isOwnedByCurrentThread())
        #expect(owner.isOwnedByCurrentThread(), "asking again keeps it")
        #expect(!owner.isNotOwnedByCurrentThread())
        #expect(!onAnotherThread { owner.isOwnedByCurrentThread() }, "another thread is not the owner")
        #expect(onAnotherThread { owner.isNotOwnedByCurrentThread() })
    }

    @Test func aReleasedOwnerGoesToTheNextThreadThatAsks() {
        let owner = ThreadOwner("a loop")
        #expect(owner.isOwnedByCurrentThread())
        owner.release()
        #expect(onAnotherThread { owner.isOwnedByCurrentThread() }, "the new loop thread takes it")
        #expect(!owner.isOwnedByCurrentThread(), "and the old one no longer has it")
    }

    @Test func aClaimTakesItOver() {
        let owner = ThreadOwner("a reader")
        #expect(onAnotherThread { owner.isOwnedByCurrentThread() })
        owner.claim()
        #expect(owner.isOwnedByCurrentThread())
    }
}
