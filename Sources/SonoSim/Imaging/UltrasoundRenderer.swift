public import SonoGeometry

/// Geometry of the B-mode image.
public struct ImagingSettings: Sendable, Equatable {
    /// Image size in pixels (square sector images: 128–512).
    public var width: Int
    public var height: Int
    /// Imaging depth from the probe face, mm.
    public var depthMM: Double
    /// Full sector opening angle, degrees.
    public var sectorDeg: Double
    public var framesPerSecond: Double

    public init(width: Int = 128, height: Int = 128, depthMM: Double = 160, sectorDeg: Double = 80,
                framesPerSecond: Double = 30) {
        self.width = width
        self.height = height
        self.depthMM = depthMM
        self.sectorDeg = sectorDeg
        self.framesPerSecond = framesPerSecond
    }

    public enum Invalid: Error, Equatable, CustomStringConvertible {
        case size(Int, Int), depth(Double), sector(Double), frameRate(Double)
        public var description: String {
            switch self {
            case .size(let w, let h): "image size \(w)×\(h) is outside 32…1024 pixels"
            case .depth(let d): "imaging depth \(d) mm is outside 40…300 mm"
            case .sector(let s): "sector angle \(s)° is outside 20…120°"
            case .frameRate(let f): "frame rate \(f) fps is outside 1…120"
            }
        }
    }

    /// The virtual patient's probe: what sonod-sim's simulated probe images (SonoSimHost) and
    /// what the stepped simulation (`sonoctl sim eval`) renders, so that both see alike.
    public static let virtualProbe = ImagingSettings()

    public func validated() throws(Invalid) -> Self {
        guard (32...1_024).contains(width), (32...1_024).contains(height) else { throw .size(width, height) }
        guard (40...300).contains(depthMM) else { throw .depth(depthMM) }
        guard (20...120).contains(sectorDeg) else { throw .sector(sectorDeg) }
        guard (1...120).contains(framesPerSecond) else { throw .frameRate(framesPerSecond) }
        return self
    }
}

/// Synthesises B-mode sector images by casting the probe's beams through the virtual patient:
/// backscatter by tissue, speckle anchored to the tissue (it moves with the heart), depth
/// attenuation with partial time-gain compensation, total reflection and shadow behind bone,
/// a pleural line and reverberations where a beam meets lung, and coupling that fades the image
/// when the probe presses too lightly. Then scan conversion to a Cartesian image, apex on top.
///
/// Owns all its buffers: rendering a frame allocates nothing. One renderer per thread.
public final class UltrasoundRenderer {
    public let settings: ImagingSettings
    public let patient: VirtualPatient
    let beams: Int
    let samples: Int
    private var scanlines: [Float]
    /// Per output pixel: index of the beam-sample cell and bilinear weights; -1 outside the sector.
    private var lookupCell: [Int32]
    private var lookupWeights: [SIMD4<Float>]

    public init(patient: VirtualPatient, settings: ImagingSettings) {
        self.patient = patient
        self.settings = settings
        beams = max(48, settings.width * 3 / 4)
        samples = settings.height
        scanlines = Array(repeating: 0, count: beams * samples)
        lookupCell = Array(repeating: -1, count: settings.width * settings.height)
        lookupWeights = Array(repeating: .zero, count: settings.width * settings.height)
        buildScanConversion()
    }

    public var pixelCount: Int { settings.width * settings.height }

    /// Renders the frame a probe at `probe` (chest frame, probe face centre) sees at `seconds`,
    /// pressing with `contactForceN`, into `pixels` (`width × height` bytes, row-major).
    /// `frameIndex` seeds the frame's electronic noise.
    public func render(probe: Pose, contactForceN: Double, seconds: Double, frameIndex: UInt64,
                       into pixels: UnsafeMutableBufferPointer<UInt8>) {
        precondition(pixels.count >= pixelCount, "pixel buffer smaller than \(pixelCount)")
        let snapshot = patient.snapshot(at: seconds)
        let noise = patient.parameters.imaging.noise
        let seed = patient.parameters.seed
        let coupling = Self.coupling(forceN: contactForceN)
        let halfSector = settings.sectorDeg * .pi / 360
        let step = settings.depthMM / Double(samples)
        let speckleContrast = 0.55 + 0.45 * noise

        scanlines.withUnsafeMutableBufferPointer { lines in
            for beam in 0..<beams {
                let theta = -halfSector + 2 * halfSector * (Double(beam) + 0.5) / Double(beams)
                let direction = probe.rotation.z * cos(theta) + probe.rotation.x * sin(theta)
                var transmission = coupling
                var pleuraDepth = 0.0
                var reverberation = 0.0
                var inBone = false
                for sample in 0..<samples {
                    let r = (Double(sample) + 0.5) * step
                    let point = probe.position + direction * r
                    var echo = 0.0
                    if pleuraDepth > 0 {
                        // Beyond the pleura only reverberations of the pleural line return (A-lines).
                        let n = (r / pleuraDepth).rounded()
                        let nearLine = abs(r - n * pleuraDepth) < 1.2 * step
                        echo = reverberation * (nearLine ? 0.5 * exp(-0.45 * n) : 0.04)
                    } else if transmission > 1e-4 {
                        let (tissue, anchor) = patient.tissue(at: point, snapshot)
                        let speckle = Self.speckle(anchor, seed: seed, contrast: speckleContrast)
                        switch tissue {
                        case .outside:
                            // Under the probe face the skin is pressed to the probe's shape (and
                            // gel fills the rest): coupled. Beyond it, an air gap stops the beam.
                            if r > Self.footprintDepthMM { transmission = 0 }
                        case .bone:
                            echo = transmission * (inBone ? 0.25 : 1.0) * speckle
                            transmission *= inBone ? 0.35 : 0.1
                            inBone = true
                        case .lung:
                            echo = transmission * Tissue.lung.echogenicity * speckle
                            pleuraDepth = r
                            reverberation = transmission
                            transmission = 0
                        default:
                            inBone = false
                            echo = transmission * tissue.echogenicity * speckle
                            transmission *= exp(-tissue.attenuationPerMM * step)
                        }
                    }
                    // Time-gain compensation restores about 70 % of the soft-tissue loss.
                    lines[beam * samples + sample] = Float(echo * exp(0.0056 * r))
                }
            }
        }
        scanConvert(into: pixels, noise: noise, seed: seed, frameIndex: frameIndex)
    }

    /// Depth below the probe face within which the skin conforms to the probe.
    static let footprintDepthMM = 8.0

    /// Image brightness as a function of contact force: no gel coupling below ~0.5 N, full
    /// above ~3.5 N.
    public static func coupling(forceN: Double) -> Double {
        let x = max(0, min(1, (forceN - 0.5) / 3))
        return x * x * (3 - 2 * x)
    }

    /// Rayleigh-distributed speckle (mean 1) on a 0.7 mm grid anchored to the tissue.
    @inline(__always)
    static func speckle(_ anchor: Vector3, seed: UInt64, contrast: Double) -> Double {
        let u = hashUnit(Int((anchor.x / 0.7).rounded(.down)), Int((anchor.y / 0.7).rounded(.down)),
                         Int((anchor.z / 0.7).rounded(.down)), seed: seed)
        let rayleigh = (-2 * log(max(u, 1e-12))).squareRoot() * 0.7979  // E = 1.2533
        return 1 + contrast * (rayleigh - 1)
    }

    private func buildScanConversion() {
        let width = settings.width, height = settings.height
        let scale = settings.depthMM / Double(height)  // mm per pixel
        let halfSector = settings.sectorDeg * .pi / 360
        for v in 0..<height {
            for u in 0..<width {
                let x = (Double(u) + 0.5 - Double(width) / 2) * scale
                let z = (Double(v) + 0.5) * scale
                let r = (x * x + z * z).squareRoot()
                let theta = atan2(x, z)
                guard abs(theta) <= halfSector, r <= settings.depthMM else { continue }
                let beamPosition = (theta + halfSector) / (2 * halfSector) * Double(beams) - 0.5
                let samplePosition = r / settings.depthMM * Double(samples) - 0.5
                let b0 = max(0, min(beams - 2, Int(beamPosition.rounded(.down))))
                let s0 = max(0, min(samples - 2, Int(samplePosition.rounded(.down))))
                let fb = Float(max(0, min(1, beamPosition - Double(b0))))
                let fs = Float(max(0, min(1, samplePosition - Double(s0))))
                lookupCell[v * width + u] = Int32(b0 * samples + s0)
                lookupWeights[v * width + u] = SIMD4((1 - fb) * (1 - fs), (1 - fb) * fs, fb * (1 - fs), fb * fs)
            }
        }
    }

    private func scanConvert(into pixels: UnsafeMutableBufferPointer<UInt8>, noise: Double, seed: UInt64,
                             frameIndex: UInt64) {
        var rng = SplitMix64(seed: seed ^ (frameIndex &* 0x9E37_79B9_7F4A_7C15) ^ 0x5EED)
        let noiseLevel = Float(0.015 + 0.05 * noise)
        let samples = self.samples
        scanlines.withUnsafeBufferPointer { lines in
            lookupCell.withUnsafeBufferPointer { cells in
                lookupWeights.withUnsafeBufferPointer { weights in
                    for index in 0..<pixelCount {
                        let cell = Int(cells[index])
                        guard cell >= 0 else {
                            pixels[index] = 0
                            continue
                        }
                        let w = weights[index]
                        var value = lines[cell] * w[0] + lines[cell + 1] * w[1]
                            + lines[cell + samples] * w[2] + lines[cell + samples + 1] * w[3]
                        // Electronic noise: cheap uniform-sum approximation of a Gaussian.
                        let bits = rng.next()
                        let uniformSum = Float(bits & 0xFFFF) + Float((bits >> 16) & 0xFFFF) + Float((bits >> 32) & 0xFFFF)
                        value += noiseLevel * (uniformSum / 65_535 - 1.5)
                        // Log-like compression to 8 bits.
                        let compressed = max(0, value).squareRoot() * 1.15
                        pixels[index] = UInt8(max(0, min(255, compressed * 255)))
                    }
                }
            }
        }
    }
}

#if canImport(Glibc)
import Glibc
#endif
