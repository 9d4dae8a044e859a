import Glibc

/// The data of a recording benchmark: B-mode-like frames and force / joint JSON messages.
/// tools/record/bench_python_writer.py builds the same frames bit for bit (the same integer
/// recipe), so both writers compress the same bytes.
public enum SyntheticSession {
    /// Frame `index` (0 ≤ index < 16 are distinct): a 75° sector with depth bands and speckle
    /// (a hash of the pixel), a dark ellipse (a chamber) that moves with the index, black
    /// outside the sector. Compresses about like real B-mode: the speckle is noise.
    public static func frame(_ index: Int, width: Int, height: Int) -> [UInt8] {
        var pixels = [UInt8](repeating: 0, count: width * height)
        let k = index % 16
        let centre = width / 2
        let chamberY = height * 9 / 20 + (k % 8) * 6
        for y in 8..<height {
            for x in 0..<width {
                let dx = x - centre
                guard 100 * abs(dx) <= 77 * y else { continue }
                let ey = y - chamberY
                let brightness = 4 * dx * dx + 9 * ey * ey < 120 * 120 ? 16 : 64 + (y * 3 + k * 5) % 128
                let speckle = hash(UInt32(truncatingIfNeeded: x + y * width) &+ UInt32(truncatingIfNeeded: k) &* 2_654_435_761) & 0xFF
                pixels[y * width + x] = UInt8((Int(speckle) * brightness) >> 8)
            }
        }
        return pixels
    }

    /// lowbias32 (Chris Wellons' integer hash).
    static func hash(_ value: UInt32) -> UInt32 {
        var x = value
        x ^= x >> 16
        x &*= 0x7feb_352d
        x ^= x >> 15
        x &*= 0x846c_a68b
        x ^= x >> 16
        return x
    }

    /// A force/torque sample as the recorder's JSON (about 120 bytes).
    public static func forceJSON(millisecond: Int) -> [UInt8] {
        let t = Double(millisecond) / 1000
        let fz = 8 + 0.5 * sin(t * 6.28)
        return Array(#"{"t":\#(fixed(t, 3)),"seq":\#(millisecond),"fx":\#(fixed(0.12 * sin(t), 4)),"fy":\#(fixed(-0.08 * cos(t), 4)),"fz":\#(fixed(fz, 4)),"tx":\#(fixed(0.011, 5)),"ty":\#(fixed(-0.004, 5)),"tz":\#(fixed(0.0007, 5)),"frame":"probe"}"#.utf8)
    }

    /// A joint state as the recorder's JSON (about 300 bytes).
    public static func jointsJSON(millisecond: Int) -> [UInt8] {
        let t = Double(millisecond) / 1000
        func list(_ value: (Double) -> Double, _ digits: Int) -> String {
            (0..<6).map { fixed(value(Double($0)), digits) }.joined(separator: ",")
        }
        let q = list({ 0.3 * $0 + 0.01 * sin(t + $0) }, 6), dq = list({ 0.01 * cos(t + $0) }, 6)
        let current = list({ 1.2 + 0.1 * $0 }, 3), torque = list({ 0.5 + 0.05 * $0 }, 4)
        return Array(#"{"t":\#(fixed(t, 3)),"q":[\#(q)],"dq":[\#(dq)],"current":[\#(current)],"torque":[\#(torque)],"status":"drives_enabled,homed","mode":"position","seq":\#(millisecond)}"#.utf8)
    }

    /// `value` with `digits` decimals (no Foundation, no locale).
    static func fixed(_ value: Double, _ digits: Int) -> String {
        var scale = 1.0
        for _ in 0..<digits { scale *= 10 }
        let scaled = Int((abs(value) * scale).rounded())
        let whole = scaled / Int(scale), fraction = String(scaled % Int(scale))
        return (value < 0 && scaled != 0 ? "-" : "") + "\(whole)." + String(repeating: "0", count: digits - fraction.count) + fraction
    }
}
