import SonoSystem
#if canImport(Glibc)
import Glibc
#endif

/// What a request may do, by its operation's class (docs/control-api.yaml, `x-sono-access`).
public enum Access: String, Sendable {
    /// Status, limits, sessions, events: members of the socket's group.
    case read
    /// Anything that enables or moves the arm: members of the operator group.
    case motion
    /// Stops (protective stop, e-stop, scan stop, disable): any peer that may connect.
    case stop
}

/// The peer's credentials as the kernel reports them (SO_PEERCRED): they cannot be forged.
public struct PeerCredentials: Sendable, Equatable {
    public var pid: Int32
    public var uid: UInt32
    public var gid: UInt32
}

/// Decides access from peer credentials. Root and the daemon's own user may do everything;
/// otherwise group membership counts (primary and supplementary groups of the peer's user).
public struct PeerAuthorizer: Sendable {
    public let socketGroup: String
    public let operatorGroup: String
    private let socketGID: UInt32?
    private let operatorGID: UInt32?
    private let ownUID: UInt32

    public init(socketGroup: String, operatorGroup: String) {
        self.socketGroup = socketGroup
        self.operatorGroup = operatorGroup
        socketGID = Self.gid(of: socketGroup)
        operatorGID = Self.gid(of: operatorGroup)
        ownUID = geteuid()
    }

    public enum Denial: Error, Sendable, Equatable, CustomStringConvertible {
        case notMember(uid: UInt32, group: String, access: Access)
        public var description: String {
            switch self {
            case .notMember(let uid, let group, let access):
                "uid \(uid) may not make \(access.rawValue) requests: it is not in group '\(group)'"
            }
        }
    }

    public func authorize(_ peer: PeerCredentials, for access: Access) -> Denial? {
        if peer.uid == 0 || peer.uid == ownUID { return nil }
        let groups = Self.groups(of: peer)
        switch access {
        case .stop:
            return nil  // whoever could connect (the socket's mode and group decide that) may stop
        case .read:
            if let socketGID, groups.contains(socketGID) { return nil }
            if let operatorGID, groups.contains(operatorGID) { return nil }
            return .notMember(uid: peer.uid, group: socketGroup, access: access)
        case .motion:
            if let operatorGID, groups.contains(operatorGID) { return nil }
            return .notMember(uid: peer.uid, group: operatorGroup, access: access)
        }
    }

    static func gid(of group: String) -> UInt32? { UserDatabase.groupID(named: group) }

    /// The peer's primary group and its user's supplementary groups.
    static func groups(of peer: PeerCredentials) -> Set<UInt32> {
        var result: Set<UInt32> = [peer.gid]
        guard let name = UserDatabase.userName(uid: peer.uid) else { return result }
        var count: Int32 = 64
        var list = [gid_t](repeating: 0, count: Int(count))
        if getgrouplist(name, peer.gid, &list, &count) == -1 {
            list = [gid_t](repeating: 0, count: Int(count))
            _ = getgrouplist(name, peer.gid, &list, &count)
        }
        for gid in list.prefix(Int(max(0, count))) { result.insert(gid) }
        return result
    }
}
