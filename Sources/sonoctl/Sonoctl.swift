import ArgumentParser

@main
struct Sonoctl: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sonoctl",
        abstract: "Operate Sono, the robotic cardiac-ultrasound scanner.",
        subcommands: [Devices.self, Sim.self, Classify.self]
    )
}
