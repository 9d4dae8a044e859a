public import SonoProtocol
import Synchronization

/// The force/torque the simulated sensor measures: the contact model's wrench at the probe's
/// current pose, plus the sensor's bias (removed by TARE) and noise. Deterministic: noise
/// comes from the patient's seed.
public final class ContactWrench: WrenchSource {
    private let state: ScannerState
    private let noise = Mutex(SplitMix64(seed: 0))
    /// Sensor bias, N and N·m (a real sensor drifts; TARE zeroes it).
    public let bias: ForceTorqueSample
    public let forceNoiseN: Double
    public let torqueNoiseNm: Double

    public init(state: ScannerState, seed: UInt64, forceNoiseN: Double = 0.04, torqueNoiseNm: Double = 0.002) {
        self.state = state
        var rng = SplitMix64(seed: seed ^ 0xF0_7CE5)
        bias = ForceTorqueSample(fx: Float(rng.gaussian() * 0.3), fy: Float(rng.gaussian() * 0.3),
                                 fz: Float(rng.gaussian() * 0.5), tx: Float(rng.gaussian() * 0.01),
                                 ty: Float(rng.gaussian() * 0.01), tz: Float(rng.gaussian() * 0.005))
        noise.withLock { $0 = rng }
        self.forceNoiseN = forceNoiseN
        self.torqueNoiseNm = torqueNoiseNm
    }

    public func wrench(atMicros micros: UInt64) -> ForceTorqueSample {
        let contact = state.current.contact
        return noise.withLock { rng in
            ForceTorqueSample(
                fx: bias.fx + Float(contact.sensorForce.x + rng.gaussian() * forceNoiseN),
                fy: bias.fy + Float(contact.sensorForce.y + rng.gaussian() * forceNoiseN),
                fz: bias.fz + Float(contact.sensorForce.z + rng.gaussian() * forceNoiseN),
                tx: bias.tx + Float(contact.sensorTorque.x + rng.gaussian() * torqueNoiseNm),
                ty: bias.ty + Float(contact.sensorTorque.y + rng.gaussian() * torqueNoiseNm),
                tz: bias.tz + Float(contact.sensorTorque.z + rng.gaussian() * torqueNoiseNm))
        }
    }
}
