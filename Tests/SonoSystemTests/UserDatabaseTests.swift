import Dispatch
import SonoSystem
import Synchronization
import Testing

/// Users and groups through the reentrant lookups the control socket's authorisation uses.
@Suite struct UserDatabaseTests {
    @Test func looksUpUsersAndGroups() {
        #expect(UserDatabase.userName(uid: 0) == "root")
        #expect(UserDatabase.groupID(named: "root") == 0)
        #expect(UserDatabase.groupName(gid: 0) == "root")
        #expect(UserDatabase.groupID(named: "no-such-group-sono") == nil)
        #expect(UserDatabase.userName(uid: 4_000_000_123) == nil)
    }

    /// Many threads at once each get their own answer (the non-reentrant calls share one buffer).
    @Test func concurrentLookupsDoNotInterfere() {
        let names = ["root", "daemon", "bin", "sys"].filter { UserDatabase.groupID(named: $0) != nil }
        let expected = names.map { UserDatabase.groupID(named: $0) }
        let mismatches = Counter()
        DispatchQueue.concurrentPerform(iterations: 8) { worker in
            for round in 0..<500 {
                let index = (worker + round) % names.count
                if UserDatabase.groupID(named: names[index]) != expected[index] { mismatches.add() }
                if UserDatabase.userName(uid: 0) != "root" { mismatches.add() }
            }
        }
        #expect(mismatches.value == 0)
    }
}

final class Counter: Sendable {
    private let count = Atomic<Int>(0)
    func add() { count.add(1, ordering: .relaxed) }
    var value: Int { count.load(ordering: .relaxed) }
}
