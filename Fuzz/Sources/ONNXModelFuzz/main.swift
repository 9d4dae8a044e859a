// libFuzzer target: the view-classifier model file (ViewClassifier(path:), what sonod and
// `sonoctl classify --model` load): protobuf decoding, the graph, Sono's model contract, the
// lowering to oneDNN and the engine's buffers.
//
// Invariants: no crash or out-of-bounds access (ASan); a hostile model is a thrown ModelError,
// never a trap; allocation is bounded whatever shapes the file claims (-malloc_limit_mb); a model
// that loads classifies a frame to a probability per label that sums to 1.

import FuzzSupport
import SonoVision

let scratch = ScratchFile("model.onnx")
let frame = [UInt8](repeating: 96, count: 64 * 64)

@_cdecl("LLVMFuzzerTestOneInput")
public func onnxModelFuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard let classifier = scratch.opened(UnsafeRawBufferPointer(start: data, count: size), { path throws(ModelError) in try ViewClassifier(path: path) }) else { return 0 }
    invariant(!classifier.labels.isEmpty, "a model without labels loaded")
    do {
        let prediction = try classifier.classify(frame, width: 64, height: 64)
        _ = prediction
        let sum = classifier.probabilities.reduce(0, +)
        invariant(!sum.isFinite || abs(sum - 1) < 1e-3, "probabilities sum to \(sum)")
    } catch {
        _ = error.description
    }
    return 0
}

@_cdecl("ONNXModelFuzz_main")
func ONNXModelFuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    runFuzzer(argc, argv, onnxModelFuzz)
}
