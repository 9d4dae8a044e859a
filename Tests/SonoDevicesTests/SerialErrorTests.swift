import Foundation
@testable import SonoDevices
import SonoTestSupport
import Testing

/// Errors an operator meets when a port cannot be opened: each names the port and what to do.
@Suite struct SerialErrorTests {
    @Test func permissionDeniedNamesTheGroupThatOwnsTheDevice() throws {
        let path = Temporary.path("fake-tty")
        #expect(FileManager.default.createFile(atPath: path, contents: nil))
        defer { try? FileManager.default.removeItem(atPath: path) }
        let group = try #require(getgrnam("dialout") ?? getgrgid(getgid()))
        let groupName = String(cString: group.pointee.gr_name)
        #expect(chown(path, getuid(), group.pointee.gr_gid) == 0)

        let error = SerialError.opening(path, errno: EACCES)
        #expect(error == .permissionDenied(path: path, group: groupName))
        #expect(error.description.contains("usermod -aG \(groupName)"))
        #expect(error.description.contains(path))
    }

    @Test func errnoMapsToTheErrorAnOperatorCanActOn() {
        #expect(SerialError.opening("/dev/ttyACM7", errno: ENOENT) == .noSuchPort("/dev/ttyACM7"))
        #expect(SerialError.opening("/dev/ttyACM7", errno: EBUSY) == .busy("/dev/ttyACM7"))
        #expect(SerialError.transfer("read", "/dev/ttyACM7", errno: EIO) == .disconnected("/dev/ttyACM7"))
        #expect(SerialError.noSuchPort("/dev/ttyACM7").description.contains("sonoctl devices"))
        #expect(SerialError.opening("/dev/nonexistent", errno: EACCES).description.contains("udev rules"))
    }

    @Test func openingAPortThatIsNotThereFailsWithItsName() {
        #expect(throws: SerialError.noSuchPort("/dev/ttyNOSUCH0")) { try SerialPort(path: "/dev/ttyNOSUCH0") }
        #expect(throws: SerialError.invalidConfiguration("baud rate 0 must be positive")) {
            try SerialPort(path: "/dev/ttyNOSUCH0", configuration: SerialConfiguration(baudRate: 0))
        }
    }
}
