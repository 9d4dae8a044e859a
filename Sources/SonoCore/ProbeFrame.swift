/// Geometry of the frames a probe delivers: 8-bit grey sector images, apex at the top centre.
public struct ProbeFrameFormat: Sendable, Equatable, Codable {
    public var width: Int
    public var height: Int
    /// Imaging depth from the probe face (the image's full height), mm.
    public var depthMM: Double
    /// Full sector opening angle, degrees.
    public var sectorDeg: Double
    /// Nominal frame rate, frames/s.
    public var framesPerSecond: Double

    public init(width: Int, height: Int, depthMM: Double, sectorDeg: Double, framesPerSecond: Double) {
        self.width = width
        self.height = height
        self.depthMM = depthMM
        self.sectorDeg = sectorDeg
        self.framesPerSecond = framesPerSecond
    }

    public var pixelCount: Int { width * height }
}

/// What comes with each frame: its number in the stream (gaps mean dropped frames) and when
/// it was acquired, in the source's clock (µs; CLOCK_MONOTONIC for live sources, simulated
/// time for the virtual patient and replays).
public struct ProbeFrameInfo: Sendable, Equatable {
    public var frameNumber: UInt64
    public var timestampMicros: UInt64

    public init(frameNumber: UInt64, timestampMicros: UInt64) {
        self.frameNumber = frameNumber
        self.timestampMicros = timestampMicros
    }
}

public enum FrameSourceError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The probe is gone (unplugged, or the replay ended).
    case disconnected(String)
    case bufferTooSmall(needed: Int, available: Int)
    case failed(String)

    public var description: String {
        switch self {
        case .disconnected(let reason): "probe disconnected: \(reason)"
        case .bufferTooSmall(let needed, let available): "frame needs \(needed) bytes, buffer has \(available)"
        case .failed(let reason): "probe failed: \(reason)"
        }
    }
}

/// Where probe frames come from: the USB probe, the virtual patient or a recording. Nothing
/// downstream knows which.
public protocol ProbeFrameSource: AnyObject {
    var format: ProbeFrameFormat { get }

    /// Delivers the next frame into `pixels` (at least `format.pixelCount` bytes), waiting up
    /// to `timeoutMicros` for it; nil when none arrived in time.
    func nextFrame(into pixels: UnsafeMutableBufferPointer<UInt8>,
                   timeoutMicros: UInt64) throws(FrameSourceError) -> ProbeFrameInfo?
}
