internal import CDNNL
#if canImport(Glibc)
import Glibc
#endif

/// Runs an `ExecutionPlan` with oneDNN primitives. Everything is built at load: primitives,
/// activation buffers (in the layouts oneDNN picks for speed, reordered where a step needs
/// another), weights reordered once, one shared scratchpad, and the argument lists. `run`
/// then executes the primitives in order on buffers it owns: no allocation on Sono's side.
final class InferenceEngine {
    private var engine: dnnl_engine_t?
    private var stream: dnnl_stream_t?
    /// Every buffer we allocated, freed in deinit.
    private var buffers: [UnsafeMutableRawPointer] = []
    private var memories: [dnnl_memory_t?] = []
    private var primitives: [dnnl_primitive_t?] = []
    private struct Operation {
        var primitive: dnnl_primitive_t?
        var arguments: UnsafeMutablePointer<dnnl_exec_arg_t>
        var count: Int32
    }
    private var operations: [Operation] = []
    private struct Value {
        var descriptor: dnnl_memory_desc_t
        var memory: dnnl_memory_t?
        var dims: [Int]
    }
    private var values: [String: Value] = [:]
    private var scratchpad: UnsafeMutableRawPointer?
    private var scratchpadSize = 0

    /// Stands in for the buffers until they exist (the initialiser builds them with methods).
    private nonisolated(unsafe) static let placeholder = UnsafeMutablePointer<Float>.allocate(capacity: 1)
    /// The input, float32 N×C×H×W row-major; `run` reads it.
    private(set) var input = InferenceEngine.placeholder
    private(set) var inputCount = 0
    /// The output (the logits), float32 row-major; valid after `run`.
    private(set) var output = UnsafePointer(InferenceEngine.placeholder)
    private(set) var outputCount = 0
    /// The optional second output (quality), float32 row-major, allocated at load like the
    /// first; nil when the plan has none. Valid after `run`.
    private(set) var qualityOutput: UnsafePointer<Float>?
    private(set) var qualityCount = 0

    /// The OpenMP threads inference may use. OpenMP's limit is per calling thread, so `run` sets
    /// it on whichever thread runs the model (the daemon loads the model on one thread and
    /// classifies on another; unset there, oneDNN would spread over every core).
    private let threads: Int32

    init(plan: ExecutionPlan, threads: Int) throws(ModelError) {
        self.threads = Int32(max(1, threads))
        omp_set_num_threads(self.threads)
        try check(dnnl_engine_create(&engine, dnnl_cpu, 0), "engine_create")
        try check(dnnl_stream_create(&stream, engine, dnnl_stream_default_flags.rawValue), "stream_create")
        // Pass 1: collect scratchpad sizes as primitives are created; pass 2 (below) binds them.
        guard let inputDims = plan.shapes[plan.input] else { throw .missingTensor(node: "graph input", name: plan.input) }
        let inputValue = try plainValue(dims: inputDims)
        values[plan.input] = inputValue
        input = try dataPointer(inputValue.memory).assumingMemoryBound(to: Float.self)
        inputCount = inputDims.reduce(1, *)
        var pending: [(dnnl_primitive_t?, [(Int32, dnnl_memory_t?)], dnnl_primitive_desc_t?)] = []
        for step in plan.steps {
            try build(step, plan: plan, into: &pending)
        }
        // The outputs in plain layout.
        (output, outputCount) = try plainOutput(plan.output, plan: plan, into: &pending)
        if let quality = plan.quality {
            let (pointer, count) = try plainOutput(quality, plan: plan, into: &pending)
            qualityOutput = pointer
            qualityCount = count
        }

        if scratchpadSize > 0 {
            scratchpad = try allocate(scratchpadSize)
        }
        for (primitive, arguments, descriptor) in pending {
            var all = arguments
            if let descriptor, let md = dnnl_primitive_desc_query_md(descriptor, dnnl_query_scratchpad_md, 0),
               dnnl_memory_desc_get_size(md) > 0 {
                var memory: dnnl_memory_t?
                try check(dnnl_memory_create(&memory, md, engine, scratchpad), "memory_create (scratchpad)")
                memories.append(memory)
                all.append((Int32(DNNL_ARG_SCRATCHPAD), memory))
            }
            let list = UnsafeMutablePointer<dnnl_exec_arg_t>.allocate(capacity: all.count)
            for (index, argument) in all.enumerated() { list[index] = dnnl_exec_arg_t(arg: argument.0, memory: argument.1) }
            operations.append(Operation(primitive: primitive, arguments: list, count: Int32(all.count)))
            if let descriptor { dnnl_primitive_desc_destroy(descriptor) }
        }
    }

    deinit {
        for operation in operations { operation.arguments.deallocate() }
        for primitive in primitives { dnnl_primitive_destroy(primitive) }
        for memory in memories { dnnl_memory_destroy(memory) }
        for buffer in buffers { free(buffer) }
        if let stream { dnnl_stream_destroy(stream) }
        if let engine { dnnl_engine_destroy(engine) }
    }

    /// Runs the network on `input`; the results are in `output` (and `qualityOutput`).
    /// OpenMP's thread limit on the calling thread (what `run` would use there).
    static var callingThreadLimit: Int { Int(omp_get_max_threads()) }

    func run() throws(ModelError) {
        if omp_get_max_threads() != threads { omp_set_num_threads(threads) }
        for operation in operations {
            try check(dnnl_primitive_execute(operation.primitive, stream, operation.count, operation.arguments), "execute")
        }
        try check(dnnl_stream_wait(stream), "stream_wait")
    }

    // MARK: - Building

    private func build(_ step: ExecutionPlan.Step, plan: ExecutionPlan,
                       into pending: inout [(dnnl_primitive_t?, [(Int32, dnnl_memory_t?)], dnnl_primitive_desc_t?)]) throws(ModelError) {
        switch step {
        case .convolution(let conv):
            guard let source = values[conv.input], let outDims = plan.shapes[conv.output] else {
                throw .missingTensor(node: "Conv", name: conv.input)
            }
            let groups = conv.groups
            let w = conv.weights.dims
            let weightDims = groups == 1 ? w : [groups, w[0] / groups, w[1], w[2], w[3]]
            var srcAny = try descriptor(source.dims, dnnl_format_tag_any)
            var weightsAny = try descriptor(weightDims, dnnl_format_tag_any)
            var biasMD = try descriptor([w[0]], dnnl_x)
            var dstAny = try descriptor(outDims, dnnl_format_tag_any)
            var desc = dnnl_convolution_desc_t()
            let strides = conv.strides.map(Int64.init), dilations = conv.dilations.map(Int64.init)
            let begin = conv.padsBegin.map(Int64.init), end = conv.padsEnd.map(Int64.init)
            try check(dnnl_dilated_convolution_forward_desc_init(&desc, dnnl_forward_inference, dnnl_convolution_direct,
                                                                 &srcAny, &weightsAny, &biasMD, &dstAny, strides, dilations,
                                                                 begin, end), "convolution_desc_init")
            let pd = try primitiveDescriptor(&desc, relu: conv.relu, name: "convolution")
            let srcMemory = try reorderIfNeeded(source, to: pd, query: dnnl_query_src_md, into: &pending)
            let weights = try constantMemory(conv.weights.values, dims: weightDims,
                                             tag: groups == 1 ? dnnl_oihw : dnnl_goihw, to: pd, query: dnnl_query_weights_md)
            let bias = try constantMemory(conv.bias, dims: [w[0]], tag: dnnl_x, to: pd, query: dnnl_query_weights_md, index: 1)
            let dst = try newValue(pd, query: dnnl_query_dst_md, dims: outDims)
            values[conv.output] = dst
            try append(pd, [(Int32(DNNL_ARG_SRC), srcMemory), (Int32(DNNL_ARG_WEIGHTS), weights),
                            (Int32(DNNL_ARG_BIAS), bias), (Int32(DNNL_ARG_DST), dst.memory)], into: &pending)

        case .pooling(let pool):
            guard let source = values[pool.input], let outDims = plan.shapes[pool.output] else {
                throw .missingTensor(node: "pooling", name: pool.input)
            }
            var src = source.descriptor
            var dstAny = try descriptor(outDims, dnnl_format_tag_any)
            var desc = dnnl_pooling_v2_desc_t()
            let algorithm = switch pool.kind {
            case .max: dnnl_pooling_max
            case .averageIncludingPadding: dnnl_pooling_avg_include_padding
            case .averageExcludingPadding: dnnl_pooling_avg_exclude_padding
            }
            try check(dnnl_pooling_v2_forward_desc_init(&desc, dnnl_forward_inference, algorithm, &src, &dstAny,
                                                        pool.strides.map(Int64.init), pool.kernel.map(Int64.init), [0, 0],
                                                        pool.padsBegin.map(Int64.init), pool.padsEnd.map(Int64.init)),
                      "pooling_desc_init")
            let pd = try primitiveDescriptor(&desc, relu: false, name: "pooling")
            let dst = try newValue(pd, query: dnnl_query_dst_md, dims: outDims)
            values[pool.output] = dst
            try append(pd, [(Int32(DNNL_ARG_SRC), source.memory), (Int32(DNNL_ARG_DST), dst.memory)], into: &pending)

        case .innerProduct(let product):
            guard let source = values[product.input], let outDims = plan.shapes[product.output] else {
                throw .missingTensor(node: "inner product", name: product.input)
            }
            let plain = try plainIfNeeded(source, dims: source.dims, into: &pending)
            var src = plain.descriptor
            var weightsAny = try descriptor(product.weights.dims, dnnl_format_tag_any)
            var biasMD = try descriptor([product.weights.dims[0]], dnnl_x)
            var dst = try descriptor(outDims, dnnl_nc)
            var desc = dnnl_inner_product_desc_t()
            try check(dnnl_inner_product_forward_desc_init(&desc, dnnl_forward_inference, &src, &weightsAny, &biasMD, &dst),
                      "inner_product_desc_init")
            let pd = try primitiveDescriptor(&desc, relu: product.relu, name: "inner product")
            let weights = try constantMemory(product.weights.values, dims: product.weights.dims, tag: dnnl_oi, to: pd,
                                             query: dnnl_query_weights_md)
            let bias = try constantMemory(product.bias, dims: [product.weights.dims[0]], tag: dnnl_x, to: pd,
                                          query: dnnl_query_weights_md, index: 1)
            let output = try newValue(pd, query: dnnl_query_dst_md, dims: outDims)
            values[product.output] = output
            try append(pd, [(Int32(DNNL_ARG_SRC), plain.memory), (Int32(DNNL_ARG_WEIGHTS), weights),
                            (Int32(DNNL_ARG_BIAS), bias), (Int32(DNNL_ARG_DST), output.memory)], into: &pending)

        case .add(let a, let b, let outputName, let relu):
            guard let first = values[a], let second = values[b] else { throw .missingTensor(node: "Add", name: a) }
            var src0 = first.descriptor
            let secondMemory: dnnl_memory_t?
            if dnnl_memory_desc_equal(&src0, [second.descriptor]) != 0 {
                secondMemory = second.memory
            } else {
                secondMemory = try reorder(second, to: src0, into: &pending)
            }
            var src1 = src0
            var dstAny = try descriptor(first.dims, dnnl_format_tag_any)
            var desc = dnnl_binary_desc_t()
            try check(dnnl_binary_desc_init(&desc, dnnl_binary_add, &src0, &src1, &dstAny), "binary_desc_init")
            let pd = try primitiveDescriptor(&desc, relu: relu, name: "add")
            let dst = try newValue(pd, query: dnnl_query_dst_md, dims: first.dims)
            values[outputName] = dst
            try append(pd, [(Int32(DNNL_ARG_SRC_0), first.memory), (Int32(DNNL_ARG_SRC_1), secondMemory),
                            (Int32(DNNL_ARG_DST), dst.memory)], into: &pending)

        case .relu(let inputName, let outputName):
            try eltwise(dnnl_eltwise_relu, name: "Relu", input: inputName, output: outputName, into: &pending)

        case .sigmoid(let inputName, let outputName):
            try eltwise(dnnl_eltwise_logistic, name: "Sigmoid", input: inputName, output: outputName, into: &pending)

        case .reshape(let inputName, let outputName):
            guard let source = values[inputName], let outDims = plan.shapes[outputName] else {
                throw .missingTensor(node: "Reshape", name: inputName)
            }
            // Row-major data reinterpreted: same buffer, plain descriptor of the new shape.
            let plain = try plainIfNeeded(source, dims: source.dims, into: &pending)
            var md = try descriptor(outDims, Self.plainTag(outDims.count))
            var memory: dnnl_memory_t?
            try check(dnnl_memory_create(&memory, &md, engine, try dataPointer(plain.memory)), "memory_create (reshape)")
            memories.append(memory)
            values[outputName] = Value(descriptor: md, memory: memory, dims: outDims)

        case .softmax(let inputName, let outputName):
            guard let source = values[inputName] else { throw .missingTensor(node: "Softmax", name: inputName) }
            let plain = try plainIfNeeded(source, dims: source.dims, into: &pending)
            var data = plain.descriptor
            var desc = dnnl_softmax_desc_t()
            try check(dnnl_softmax_forward_desc_init(&desc, dnnl_forward_inference, &data, 1), "softmax_desc_init")
            let pd = try primitiveDescriptor(&desc, relu: false, name: "softmax")
            let dst = try newValue(pd, query: dnnl_query_dst_md, dims: plain.dims)
            values[outputName] = dst
            try append(pd, [(Int32(DNNL_ARG_SRC), plain.memory), (Int32(DNNL_ARG_DST), dst.memory)], into: &pending)
        }
    }

    /// An element-wise step (oneDNN eltwise, alpha = beta = 0) in the layout of its input.
    private func eltwise(_ algorithm: dnnl_alg_kind_t, name: String, input inputName: String, output outputName: String,
                         into pending: inout [(dnnl_primitive_t?, [(Int32, dnnl_memory_t?)], dnnl_primitive_desc_t?)]) throws(ModelError) {
        guard let source = values[inputName] else { throw .missingTensor(node: name, name: inputName) }
        var data = source.descriptor
        var desc = dnnl_eltwise_desc_t()
        try check(dnnl_eltwise_forward_desc_init(&desc, dnnl_forward_inference, algorithm, &data, 0, 0), "eltwise_desc_init")
        let pd = try primitiveDescriptor(&desc, relu: false, name: name.lowercased())
        let dst = try newValue(pd, query: dnnl_query_dst_md, dims: source.dims)
        values[outputName] = dst
        try append(pd, [(Int32(DNNL_ARG_SRC), source.memory), (Int32(DNNL_ARG_DST), dst.memory)], into: &pending)
    }

    /// A graph output in plain row-major layout (reordered into a buffer of its own when the step
    /// that produces it picked another), and its element count.
    private func plainOutput(_ name: String, plan: ExecutionPlan,
                             into pending: inout [(dnnl_primitive_t?, [(Int32, dnnl_memory_t?)], dnnl_primitive_desc_t?)])
        throws(ModelError) -> (UnsafePointer<Float>, Int) {
        guard let dims = plan.shapes[name], let produced = values[name] else {
            throw .missingTensor(node: "graph output", name: name)
        }
        let value = try plainIfNeeded(produced, dims: dims, into: &pending)
        return (UnsafePointer(try dataPointer(value.memory).assumingMemoryBound(to: Float.self)), dims.reduce(1, *))
    }

    // MARK: - Helpers

    private static func plainTag(_ rank: Int) -> dnnl_format_tag_t {
        switch rank {
        case 1: dnnl_a
        case 2: dnnl_ab
        case 3: dnnl_abc
        case 4: dnnl_abcd
        default: dnnl_abcde
        }
    }

    private func check(_ status: dnnl_status_t, _ operation: String) throws(ModelError) {
        guard status == dnnl_success else { throw .inference(operation: operation, status: Int32(status.rawValue)) }
    }

    private func descriptor(_ dims: [Int], _ tag: dnnl_format_tag_t) throws(ModelError) -> dnnl_memory_desc_t {
        var md = dnnl_memory_desc_t()
        try check(dnnl_memory_desc_init_by_tag(&md, Int32(dims.count), dims.map(Int64.init), dnnl_f32, tag), "memory_desc_init")
        return md
    }

    private func allocate(_ size: Int) throws(ModelError) -> UnsafeMutableRawPointer {
        var pointer: UnsafeMutableRawPointer?
        guard posix_memalign(&pointer, 64, max(size, 64)) == 0, let pointer else {
            throw .inference(operation: "allocate \(size) bytes", status: -1)
        }
        memset(pointer, 0, max(size, 64))
        buffers.append(pointer)
        return pointer
    }

    private func memory(_ md: dnnl_memory_desc_t) throws(ModelError) -> dnnl_memory_t? {
        var md = md
        let buffer = try allocate(dnnl_memory_desc_get_size(&md))
        var memory: dnnl_memory_t?
        try check(dnnl_memory_create(&memory, &md, engine, buffer), "memory_create")
        memories.append(memory)
        return memory
    }

    private func dataPointer(_ memory: dnnl_memory_t?) throws(ModelError) -> UnsafeMutableRawPointer {
        var handle: UnsafeMutableRawPointer?
        try check(dnnl_memory_get_data_handle(memory, &handle), "memory_get_data_handle")
        guard let handle else { throw .inference(operation: "memory_get_data_handle", status: -1) }
        return handle
    }

    private func plainValue(dims: [Int]) throws(ModelError) -> Value {
        let md = try descriptor(dims, Self.plainTag(dims.count))
        return Value(descriptor: md, memory: try memory(md), dims: dims)
    }

    private func primitiveDescriptor<D>(_ desc: inout D, relu: Bool, name: String) throws(ModelError) -> dnnl_primitive_desc_t? {
        var attributes: dnnl_primitive_attr_t?
        try check(dnnl_primitive_attr_create(&attributes), "primitive_attr_create")
        defer { dnnl_primitive_attr_destroy(attributes) }
        try check(dnnl_primitive_attr_set_scratchpad_mode(attributes, dnnl_scratchpad_mode_user), "set_scratchpad_mode")
        if relu {
            var postOps: dnnl_post_ops_t?
            try check(dnnl_post_ops_create(&postOps), "post_ops_create")
            defer { dnnl_post_ops_destroy(postOps) }
            try check(dnnl_post_ops_append_eltwise(postOps, 1, dnnl_eltwise_relu, 0, 0), "post_ops_append_eltwise")
            try check(dnnl_primitive_attr_set_post_ops(attributes, postOps), "set_post_ops")
        }
        var pd: dnnl_primitive_desc_t?
        let status = withUnsafeMutablePointer(to: &desc) { dnnl_primitive_desc_create(&pd, $0, attributes, engine, nil) }
        try check(status, "primitive_desc_create (\(name))")
        if let md = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0) {
            scratchpadSize = max(scratchpadSize, dnnl_memory_desc_get_size(md))
        }
        return pd
    }

    private func newValue(_ pd: dnnl_primitive_desc_t?, query: dnnl_query_t, dims: [Int]) throws(ModelError) -> Value {
        guard let md = dnnl_primitive_desc_query_md(pd, query, 0) else { throw .inference(operation: "query_md", status: -1) }
        return Value(descriptor: md.pointee, memory: try memory(md.pointee), dims: dims)
    }

    private func append(_ pd: dnnl_primitive_desc_t?, _ arguments: [(Int32, dnnl_memory_t?)],
                        into pending: inout [(dnnl_primitive_t?, [(Int32, dnnl_memory_t?)], dnnl_primitive_desc_t?)]) throws(ModelError) {
        var primitive: dnnl_primitive_t?
        try check(dnnl_primitive_create(&primitive, pd), "primitive_create")
        primitives.append(primitive)
        pending.append((primitive, arguments, pd))
    }

    /// The memory a primitive wants for `query`, reordering `value` into it when the layouts differ.
    private func reorderIfNeeded(_ value: Value, to pd: dnnl_primitive_desc_t?, query: dnnl_query_t,
                                 into pending: inout [(dnnl_primitive_t?, [(Int32, dnnl_memory_t?)], dnnl_primitive_desc_t?)])
        throws(ModelError) -> dnnl_memory_t? {
        guard let wanted = dnnl_primitive_desc_query_md(pd, query, 0) else { throw .inference(operation: "query_md", status: -1) }
        var have = value.descriptor
        if dnnl_memory_desc_equal(&have, wanted) != 0 { return value.memory }
        return try reorder(value, to: wanted.pointee, into: &pending)
    }

    private func reorder(_ value: Value, to target: dnnl_memory_desc_t,
                         into pending: inout [(dnnl_primitive_t?, [(Int32, dnnl_memory_t?)], dnnl_primitive_desc_t?)])
        throws(ModelError) -> dnnl_memory_t? {
        var source = value.descriptor, destination = target
        var pd: dnnl_primitive_desc_t?
        try check(dnnl_reorder_primitive_desc_create(&pd, &source, engine, &destination, engine, nil), "reorder_desc_create")
        let output = try memory(destination)
        try append(pd, [(Int32(DNNL_ARG_FROM), value.memory), (Int32(DNNL_ARG_TO), output)], into: &pending)
        return output
    }

    private func plainIfNeeded(_ value: Value, dims: [Int],
                               into pending: inout [(dnnl_primitive_t?, [(Int32, dnnl_memory_t?)], dnnl_primitive_desc_t?)])
        throws(ModelError) -> Value {
        let plain = try descriptor(dims, Self.plainTag(dims.count))
        var have = value.descriptor, want = plain
        if dnnl_memory_desc_equal(&have, &want) != 0 { return value }
        return Value(descriptor: plain, memory: try reorder(value, to: plain, into: &pending), dims: dims)
    }

    /// A constant (weights, bias) in the layout the primitive wants, reordered once now.
    private func constantMemory(_ values: [Float], dims: [Int], tag: dnnl_format_tag_t, to pd: dnnl_primitive_desc_t?,
                                query: dnnl_query_t, index: Int32 = 0) throws(ModelError) -> dnnl_memory_t? {
        var plain = try descriptor(dims, tag)
        let plainMemory = try memory(plain)
        let pointer = try dataPointer(plainMemory)
        values.withUnsafeBytes { pointer.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
        guard let wanted = dnnl_primitive_desc_query_md(pd, query, index) else { throw .inference(operation: "query_md", status: -1) }
        if dnnl_memory_desc_equal(&plain, wanted) != 0 { return plainMemory }
        let target = try memory(wanted.pointee)
        var reorderPD: dnnl_primitive_desc_t?
        try check(dnnl_reorder_primitive_desc_create(&reorderPD, &plain, engine, wanted, engine, nil), "reorder_desc_create (weights)")
        defer { dnnl_primitive_desc_destroy(reorderPD) }
        var reorder: dnnl_primitive_t?
        try check(dnnl_primitive_create(&reorder, reorderPD), "primitive_create (weights reorder)")
        defer { dnnl_primitive_destroy(reorder) }
        var arguments = [dnnl_exec_arg_t(arg: Int32(DNNL_ARG_FROM), memory: plainMemory),
                         dnnl_exec_arg_t(arg: Int32(DNNL_ARG_TO), memory: target)]
        try check(dnnl_primitive_execute(reorder, stream, 2, &arguments), "execute (weights reorder)")
        try check(dnnl_stream_wait(stream), "stream_wait")
        return target
    }
}
