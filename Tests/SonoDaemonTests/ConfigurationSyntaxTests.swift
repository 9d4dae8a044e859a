import Foundation
import SonoDaemon
import SonoGeometry
import SonoMotion
import SonoTestSupport
import Testing

/// Every TOML file the daemon reads goes through SonoTOML's check: text that aborted TOMLKit's
/// parser (the daemon-config and patient-toml fuzz targets' findings, Fuzz/regressions/) is a
/// syntax error naming the file, line and column, in sono.toml, a safety profile and the robot
/// description alike.
@Suite struct ConfigurationSyntaxTests {
    @Test func sonoTOMLWithAHeaderThatStartsNoKeyIsRefused() throws {
        let bytes = try #require(FileManager.default.contents(atPath: Repository.url("Fuzz/regressions/daemon-config/sono-toml-array-table-header-third-bracket").path))
        do {
            _ = try DaemonConfiguration.parse(String(decoding: bytes, as: UTF8.self), path: "/etc/sono/sono.toml")
            Issue.record("accepted")
        } catch {
            #expect(error.description == "cannot read configuration /etc/sono/sono.toml: not valid TOML: line 5, column 3: a table header must start with a key (bare: A-Z a-z 0-9 _ -, or quoted), not '['")
        }
    }

    @Test func theSafetyProfileAndRobotDescriptionAreCheckedToo() {
        #expect(throws: SafetyConfigurationError.self) { try SafetyLimits.parse(toml: "[watchdog]\nx = [1, }]\n", source: "safety.toml") }
        do {
            _ = try RobotDescription.parse(toml: "name = \"arm\"\n[&]\n", source: "arm.toml")
            Issue.record("accepted")
        } catch {
            #expect(error.description == "arm.toml: not valid TOML: line 2, column 2: a table header must start with a key (bare: A-Z a-z 0-9 _ -, or quoted), not '&'")
        }
    }
}
