/// Frame → model input: bilinear resize to the model's size (half-pixel centres, no antialias:
/// `torch.nn.functional.interpolate(mode="bilinear", align_corners=False)`, which the model was
/// trained with), then (pixel / 255 − mean) / std. Index and weight tables are computed once
/// per frame size; converting a frame allocates nothing.
struct Preprocessor {
    let size: Int
    let mean: Float
    let std: Float
    let crop: (x0: Double, y0: Double, x1: Double, y1: Double)
    private var tableWidth = 0
    private var tableHeight = 0
    /// Per output column (row): the two source indices and the weight of the second.
    private var columns: [(Int, Int, Float)] = []
    private var rows: [(Int, Int, Float)] = []

    init(contract: ModelContract) {
        size = contract.inputSize
        mean = contract.mean
        std = contract.std
        crop = contract.crop
    }

    /// The crop's pixel range along an axis of `extent` pixels (at least one pixel).
    static func range(_ low: Double, _ high: Double, extent: Int) -> (start: Int, count: Int) {
        let start = min(extent - 1, max(0, Int((low * Double(extent)).rounded())))
        let end = min(extent, max(start + 1, Int((high * Double(extent)).rounded())))
        return (start, end - start)
    }

    static func table(source: Int, destination: Int) -> [(Int, Int, Float)] {
        let scale = Float(source) / Float(destination)
        return (0..<destination).map { index in
            // One rounding, as PyTorch's kernel computes it with a fused multiply-add.
            let position = max(0, Float(Double(scale) * (Double(index) + 0.5) - 0.5))
            let low = min(Int(position), source - 1)
            let high = min(low + 1, source - 1)
            return (low, high, position - Float(low))
        }
    }

    /// Writes the model input for an 8-bit `width`×`height` frame into `input` (size² floats).
    mutating func convert(_ pixels: UnsafeBufferPointer<UInt8>, width: Int, height: Int,
                          into input: UnsafeMutablePointer<Float>) throws(ModelError) {
        guard width > 0, height > 0, pixels.count >= width * height else {
            throw .frame(reason: "\(pixels.count) bytes do not hold a \(width)×\(height) 8-bit frame")
        }
        if width != tableWidth || height != tableHeight {
            // A new frame size: the only allocation, once per size.
            let across = Self.range(crop.x0, crop.x1, extent: width)
            let down = Self.range(crop.y0, crop.y1, extent: height)
            columns = Self.table(source: across.count, destination: size).map { ($0.0 + across.start, $0.1 + across.start, $0.2) }
            rows = Self.table(source: down.count, destination: size).map { ($0.0 + down.start, $0.1 + down.start, $0.2) }
            tableWidth = width
            tableHeight = height
        }
        let scale = 1 / (255 * std)
        let offset = mean / std
        columns.withUnsafeBufferPointer { columns in
            rows.withUnsafeBufferPointer { rows in
                for y in 0..<size {
                    let (top, bottom, wy) = rows[y]
                    let upper = top * width, lower = bottom * width
                    for x in 0..<size {
                        let (left, right, wx) = columns[x]
                        let a = Float(pixels[upper + left]), b = Float(pixels[upper + right])
                        let c = Float(pixels[lower + left]), d = Float(pixels[lower + right])
                        let topValue = a + (b - a) * wx
                        let bottomValue = c + (d - c) * wx
                        let value = topValue + (bottomValue - topValue) * wy
                        input[y * size + x] = value * scale - offset
                    }
                }
            }
        }
    }
}
