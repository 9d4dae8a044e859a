public import SonoSim

/// A simulated firmware board plugged into the emulated-device bench and running: the real
/// host driver finds it by USB identity and opens its /dev node through libserialport.
public final class BenchBoard: Sendable {
    public let plugged: PluggedSerialDevice
    public let runner: BoardRunner

    public init(firmware: any BoardFirmware, device: EmulatedUSBSerialDevice,
                bench: EmulatedSerialBench, realTimePriority: Int32? = 75) throws(BenchError) {
        plugged = try bench.plug(device)
        runner = BoardRunner(firmware: firmware, transport: plugged.transport)
        runner.start(realTimePriority: realTimePriority)
    }

    public var devnode: String { plugged.devnode }

    /// Pulls the USB cable: the board stops and its tty hangs up and disappears.
    public func unplug() {
        runner.stop()
        plugged.unplug()
    }
}
