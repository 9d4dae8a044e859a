import ArgumentParser

@main
struct Sonoctl: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sonoctl",
        abstract: "Operate Sono, the robotic cardiac-ultrasound scanner.",
        subcommands: [Status.self, Enable.self, EnableMotion.self, Disable.self, Stop.self, EStop.self, Release.self, Resume.self, Reset.self,
                      Scan.self, Record.self, Sessions.self, Limits.self, Events.self, Watch.self, Console.self,
                      Devices.self, Probe.self, Sim.self, Classify.self, Replay.self, Session.self]
    )
}
