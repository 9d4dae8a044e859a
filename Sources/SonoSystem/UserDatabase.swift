#if canImport(Glibc)
import Glibc
#endif

/// Users and groups from the system's databases (/etc/passwd, /etc/group, NSS), through the
/// reentrant `*_r` calls: the control socket authorises peers on several threads at once, and
/// `getpwuid`/`getgrnam` return one static buffer that a concurrent call overwrites.
public enum UserDatabase {
    /// The login name of `uid`, or nil when there is no such user.
    public static func userName(uid: UInt32) -> String? {
        var entry = passwd()
        return withEntry(&entry, { entry, buffer, size, result in getpwuid_r(uid_t(uid), entry, buffer, size, result) }) {
            $0.pw_name.map { String(cString: $0) }
        }
    }

    /// The ID of the group called `name`, or nil when there is none.
    public static func groupID(named name: String) -> UInt32? {
        var entry = group()
        return withEntry(&entry, { entry, buffer, size, result in getgrnam_r(name, entry, buffer, size, result) }) {
            UInt32($0.gr_gid)
        }
    }

    /// The name of group `gid`, or nil when there is none.
    public static func groupName(gid: UInt32) -> String? {
        var entry = group()
        return withEntry(&entry, { entry, buffer, size, result in getgrgid_r(gid_t(gid), entry, buffer, size, result) }) {
            $0.gr_name.map { String(cString: $0) }
        }
    }

    /// Calls a `*_r` lookup with a buffer that grows while the call answers ERANGE (a group with
    /// many members needs more than the usual kilobyte), and reads the entry found.
    private static func withEntry<Entry, Value>(
        _ entry: inout Entry,
        _ lookup: (UnsafeMutablePointer<Entry>, UnsafeMutablePointer<CChar>, Int,
                   UnsafeMutablePointer<UnsafeMutablePointer<Entry>?>) -> Int32,
        _ read: (Entry) -> Value?
    ) -> Value? {
        var size = 1024
        while size <= 1 << 20 {
            var buffer = [CChar](repeating: 0, count: size)
            let (status, value): (Int32, Value?) = buffer.withUnsafeMutableBufferPointer { buffer in
                guard let base = buffer.baseAddress else { return (ENOMEM, nil) }
                var found: UnsafeMutablePointer<Entry>?
                let status = withUnsafeMutablePointer(to: &entry) { lookup($0, base, buffer.count, &found) }
                // The entry's strings point into `buffer`: read them while it is there.
                guard status == 0, let found else { return (status, nil) }
                return (0, read(found.pointee))
            }
            if status == ERANGE {
                size *= 4
                continue
            }
            return value
        }
        return nil
    }
}
