public import SonoGeometry

/// The chest around the heart: skin surface, chest wall, ribs and sternum, lungs, diaphragm
/// and liver, in the chest frame (docs/VIRTUAL-PATIENT.md). Ribs and lungs leave acoustic
/// windows where a sonographer finds them: left parasternal, apical and subcostal.
public struct ChestModel: Sendable {
    public let parameters: PatientParameters.Chest
    public let windowQuality: Double
    /// Skin points of the three acoustic windows (no breathing).
    public let parasternalWindow: Vector3
    public let apicalWindow: Vector3
    public let subcostalWindow: Vector3
    let heartCenter: Vector3
    /// Ribs: centre line y = ribOriginY + k·spacing + ribSlope·x, between the windows' gaps.
    let ribOriginY: Double
    let ribSlope: Double
    let channelRadius: Double

    static let sternumHalfWidth = 16.0
    static let sternumBottomY = -95.0

    /// Where the canonical beams from each window aim (the views' targets).
    public let parasternalTarget: Vector3
    public let apicalTarget: Vector3
    public let subcostalTarget: Vector3

    public init(_ chest: PatientParameters.Chest, windowQuality: Double, heart: HeartModel) {
        parameters = chest
        self.windowQuality = windowQuality
        heartCenter = heart.pose.position
        let scale = heart.scale
        let apex = heart.pose.transform(Vector3(0, 0, 47 * scale))
        let surface = ChestSurface(radius: chest.radiusMM)
        parasternalTarget = heart.pose.transform(Vector3(0, 0, -8 * scale))
        apicalTarget = heart.pose.transform(Vector3(0, 0, -42 * scale))
        subcostalTarget = heart.pose.transform(Vector3(14 * scale, 0, -10 * scale))
        // Left parasternal: beside the sternum, a little above the heart's centre.
        parasternalWindow = surface.point(x: Self.sternumHalfWidth + 18, y: heart.pose.position.y + 12)
        // Apical: over the apex, where the apex beat is felt.
        apicalWindow = surface.point(x: apex.x + 8, y: apex.y - 6)
        let ribDepth = Self.ribDepth(chestWall: chest.skinToHeartMM)
        /// Where the beam from `window` toward `target` crosses the rib layer.
        func crossing(_ window: Vector3, _ target: Vector3) -> Vector3 {
            let beam = (target - window).normalized
            let normal = surface.normal(x: window.x, y: window.y)
            return window + beam * (ribDepth / max(0.2, -beam.dot(normal)))
        }

        // Subcostal: below the xiphoid, low enough that the beam passes under the costal
        // margin (a thick chest wall pushes the window further down).
        var subcostal = surface.point(x: 8, y: Self.sternumBottomY - 30)
        for _ in 0..<4 {
            let below = Self.costalMargin(x: subcostal.x) - 12 - crossing(subcostal, subcostalTarget).y
            if below >= 0 { break }
            subcostal = surface.point(x: subcostal.x, y: subcostal.y + below - 2)
        }
        subcostalWindow = subcostal

        // Place the ribs so that the canonical beams of both intercostal windows cross the rib
        // layer mid-gap; the slope that does it with the least tilt stands for the ribs'
        // lateral descent.
        let parasternalGap = crossing(parasternalWindow, parasternalTarget)
        let apicalGap = crossing(apicalWindow, apicalTarget)
        let spacing = chest.ribSpacingMM
        let dx = apicalGap.x - parasternalGap.x
        let dy = apicalGap.y - parasternalGap.y
        let gaps = (dy / spacing).rounded()
        ribSlope = abs(dx) > 1 ? (dy - gaps * spacing) / dx : 0
        ribOriginY = parasternalGap.y - ribSlope * parasternalGap.x + spacing / 2
        channelRadius = 6 + 26 * windowQuality
    }

    /// The lower edge of the rib cage (y) at x.
    static func costalMargin(x: Double) -> Double { sternumBottomY - 0.45 * abs(x) }

    /// Depth of the ribs' centre line below the skin.
    static func ribDepth(chestWall: Double) -> Double { max(6, chestWall - 7) }

    public var surface: ChestSurface { ChestSurface(radius: parameters.radiusMM) }

    /// Chest-wall excursion at `seconds`, mm along +z (and the heart's shift toward the feet).
    public func breathing(at seconds: Double) -> Double {
        let cycle = seconds * parameters.breathingRateBPM / 60
        return parameters.breathingAmplitudeMM * 0.5 * (1 - cos(2 * .pi * cycle))
    }

    /// Diaphragm height (y) under the point (x); liver below it.
    @inline(__always)
    func diaphragmY(x: Double) -> Double { -72 - 0.15 * abs(x - 20) }

    /// How far below the skin `p` lies (negative: outside the body), with the chest wall risen
    /// by `rise` mm of breathing.
    @inline(__always)
    func depthBelowSkin(_ p: Vector3, rise: Double) -> Double {
        surface.height(x: p.x, y: p.y) + rise - p.z
    }

    /// The tissue of the chest (not the heart) at `p`, `depth` below the skin
    /// (`depthBelowSkin`). `nearHeart` tells whether `p` is inside the heart's envelope (lung-free).
    @inline(__always)
    func tissue(at p: Vector3, depth: Double, nearHeart: Bool) -> Tissue {
        if depth < 0 { return .outside }
        if depth < 1.5 { return .skin }
        let wall = parameters.skinToHeartMM
        if depth < wall {
            if isBone(p, depth: depth) { return .bone }
            return depth < wall * 0.45 ? .fat : .muscle
        }
        if p.y < diaphragmY(x: p.x) {
            return p.x < 110 ? .liver : .mediastinum
        }
        if nearHeart || isInWindowChannel(p) || abs(p.x - 4) < 24 { return .mediastinum }
        return .lung
    }

    /// Ribs (above the costal margin) and the sternum, within the chest wall.
    @inline(__always)
    func isBone(_ p: Vector3, depth: Double) -> Bool {
        let ribDepth = Self.ribDepth(chestWall: parameters.skinToHeartMM)
        guard abs(depth - ribDepth) < 6 else { return false }
        if abs(p.x) < Self.sternumHalfWidth { return p.y > Self.sternumBottomY && p.y < 130 }
        guard p.y > Self.costalMargin(x: p.x) else { return false }
        let along = p.y - ribOriginY - ribSlope * p.x
        let nearest = (along / parameters.ribSpacingMM).rounded() * parameters.ribSpacingMM
        let dy = along - nearest
        let dz = depth - ribDepth
        // A rib's cross-section: 11 mm tall in y, 9 mm thick.
        return (dy * dy) / (5.5 * 5.5) + (dz * dz) / (4.5 * 4.5) <= 1
    }

    /// The lung-free corridors from the parasternal and apical windows to the heart (the
    /// cardiac notch); they narrow as window quality drops.
    @inline(__always)
    func isInWindowChannel(_ p: Vector3) -> Bool {
        Capsule(from: parasternalWindow, to: heartCenter, radius: channelRadius).distance(p) < 0
            || Capsule(from: apicalWindow, to: heartCenter, radius: channelRadius).distance(p) < 0
    }
}

/// The skin over the chest: a gently curved surface, falling away laterally (radius R) and,
/// less, toward head and feet.
public struct ChestSurface: Sendable {
    public let radius: Double

    @inline(__always)
    public func height(x: Double, y: Double) -> Double {
        -(x * x) / (2 * radius) - (y * y) / (6 * radius)
    }

    public func point(x: Double, y: Double) -> Vector3 { Vector3(x, y, height(x: x, y: y)) }

    /// Outward unit normal at (x, y).
    public func normal(x: Double, y: Double) -> Vector3 {
        Vector3(x / radius, y / (3 * radius), 1).normalized
    }
}

#if canImport(Glibc)
import Glibc
#endif
