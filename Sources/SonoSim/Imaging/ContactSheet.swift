import SonoCore
import SonoGeometry

/// All standard views of one patient side by side, with two off-view poses for contrast:
/// what reviewers look at to judge the simulator (docs/sheets/).
public struct ContactSheet: Sendable {
    public let width: Int
    public let height: Int
    public let pixels: [UInt8]
    /// Tile captions, left to right, top to bottom.
    public let captions: [String]

    static let columns = 4

    public static func render(patient: VirtualPatient, geometry: StandardViewGeometry, renderer: UltrasoundRenderer,
                              forceN: Double, seconds: Double) -> ContactSheet {
        var tiles: [(String, Pose)] = StandardView.standard.compactMap { view in
            geometry.canonical[view].map { (view.rawValue, $0) }
        }
        if let plax = geometry.canonical[.plax] {
            // One intercostal space too low, beam behind a rib; and the probe tilted toward lung.
            var low = plax
            low.position += Vector3(0, -patient.parameters.chest.ribSpacingMM / 2, 0)
            tiles.append(("PLAX on a rib", low))
        }
        if let a4c = geometry.canonical[.a4c] {
            // Slid 40 mm toward the axilla, still on the skin: the beam finds lung.
            var lateral = a4c
            lateral.position = patient.chest.surface.point(x: a4c.position.x + 40, y: a4c.position.y + 10)
            tiles.append(("A4C 40 mm lateral", lateral))
        }
        if let psax = geometry.canonical[.psax] {
            tiles.append(("PSAX light touch 1 N", psax))
        }

        let tileWidth = renderer.settings.width, tileHeight = renderer.settings.height
        let rows = (tiles.count + columns - 1) / columns
        let gap = 4
        let width = columns * tileWidth + (columns - 1) * gap
        let height = rows * tileHeight + (rows - 1) * gap
        var sheet = [UInt8](repeating: 40, count: width * height)
        var tile = [UInt8](repeating: 0, count: tileWidth * tileHeight)
        var captions: [String] = []
        for (index, (caption, pose)) in tiles.enumerated() {
            let force = caption.contains("light touch") ? 1.0 : forceN
            tile.withUnsafeMutableBufferPointer {
                renderer.render(probe: pose, contactForceN: force, seconds: seconds, frameIndex: UInt64(index), into: $0)
            }
            let label = geometry.label(pose: pose, contactForceN: force, seconds: seconds)
            captions.append("\(caption) [\(label.view)]")
            BitmapFont.draw(caption, into: &tile, width: tileWidth, x: 4, y: 4)
            let originX = (index % columns) * (tileWidth + gap)
            let originY = (index / columns) * (tileHeight + gap)
            for row in 0..<tileHeight {
                let source = row * tileWidth
                let target = (originY + row) * width + originX
                sheet.replaceSubrange(target..<(target + tileWidth), with: tile[source..<(source + tileWidth)])
            }
        }
        return ContactSheet(width: width, height: height, pixels: sheet, captions: captions)
    }
}

/// A 5×7 pixel font for captions burnt into images (capitals, digits, a few signs).
enum BitmapFont {
    static let glyphs: [Character: [UInt8]] = [
        "A": [0x0E, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11], "B": [0x1E, 0x11, 0x11, 0x1E, 0x11, 0x11, 0x1E],
        "C": [0x0E, 0x11, 0x10, 0x10, 0x10, 0x11, 0x0E], "D": [0x1E, 0x11, 0x11, 0x11, 0x11, 0x11, 0x1E],
        "E": [0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x1F], "F": [0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x10],
        "G": [0x0E, 0x11, 0x10, 0x17, 0x11, 0x11, 0x0F], "H": [0x11, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11],
        "I": [0x0E, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0E], "J": [0x07, 0x02, 0x02, 0x02, 0x02, 0x12, 0x0C],
        "K": [0x11, 0x12, 0x14, 0x18, 0x14, 0x12, 0x11], "L": [0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x1F],
        "M": [0x11, 0x1B, 0x15, 0x15, 0x11, 0x11, 0x11], "N": [0x11, 0x11, 0x19, 0x15, 0x13, 0x11, 0x11],
        "O": [0x0E, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E], "P": [0x1E, 0x11, 0x11, 0x1E, 0x10, 0x10, 0x10],
        "Q": [0x0E, 0x11, 0x11, 0x11, 0x15, 0x12, 0x0D], "R": [0x1E, 0x11, 0x11, 0x1E, 0x14, 0x12, 0x11],
        "S": [0x0F, 0x10, 0x10, 0x0E, 0x01, 0x01, 0x1E], "T": [0x1F, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04],
        "U": [0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E], "V": [0x11, 0x11, 0x11, 0x11, 0x11, 0x0A, 0x04],
        "W": [0x11, 0x11, 0x11, 0x15, 0x15, 0x15, 0x0A], "X": [0x11, 0x11, 0x0A, 0x04, 0x0A, 0x11, 0x11],
        "Y": [0x11, 0x11, 0x0A, 0x04, 0x04, 0x04, 0x04], "Z": [0x1F, 0x01, 0x02, 0x04, 0x08, 0x10, 0x1F],
        "0": [0x0E, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0E], "1": [0x04, 0x0C, 0x04, 0x04, 0x04, 0x04, 0x0E],
        "2": [0x0E, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1F], "3": [0x1F, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0E],
        "4": [0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02], "5": [0x1F, 0x10, 0x1E, 0x01, 0x01, 0x11, 0x0E],
        "6": [0x06, 0x08, 0x10, 0x1E, 0x11, 0x11, 0x0E], "7": [0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08],
        "8": [0x0E, 0x11, 0x11, 0x0E, 0x11, 0x11, 0x0E], "9": [0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C],
        "+": [0x00, 0x04, 0x04, 0x1F, 0x04, 0x04, 0x00], "-": [0x00, 0x00, 0x00, 0x1F, 0x00, 0x00, 0x00],
        ".": [0x00, 0x00, 0x00, 0x00, 0x00, 0x0C, 0x0C], " ": [0, 0, 0, 0, 0, 0, 0],
    ]

    static func draw(_ text: String, into pixels: inout [UInt8], width: Int, x: Int, y: Int) {
        let height = pixels.count / width
        for (index, character) in text.uppercased().enumerated() {
            guard let rows = glyphs[character] else { continue }
            for (row, bits) in rows.enumerated() {
                for column in 0..<5 where bits & (0x10 >> column) != 0 {
                    let px = x + index * 6 + column, py = y + row
                    if px < width && py < height { pixels[py * width + px] = 255 }
                }
            }
        }
    }
}
