import Foundation
public import SonoCore
public import SonoSim
public import SonoVision
import Synchronization

/// One patient to scan: its parameters and the file they came from (or were written to).
public struct EvaluationCase: Sendable {
    public var parameters: PatientParameters
    public var file: String

    public init(parameters: PatientParameters, file: String) {
        self.parameters = parameters
        self.file = file
    }
}

/// Scans patients on `jobs` threads, each with its own classifier (one oneDNN thread) and its
/// own simulated world. Every scan depends only on its patient, so the results (returned in the
/// patients' order) do not depend on `jobs` or on which thread ran which patient.
public enum EvaluationRunner {
    public struct Outcome: Sendable {
        public var results: [PatientEvaluation]
        /// Summed over every scan (zero unless `profile` was asked for).
        public var profile: SteppedProfile
    }

    /// - Parameter progress: called from the worker threads as each scan ends (its index in
    ///   `cases` and its result); serialised.
    /// - Parameter progress: called from the worker threads as each scan ends (its index in
    ///   `cases` and its result); serialised.
    /// - Throws: the classifier's error when a worker cannot load the model.
    public static func run(_ cases: [EvaluationCase], views: [StandardView], setup: EvaluationSetup, jobs: Int,
                           profile: Bool = false,
                           progress: @escaping @Sendable (Int, PatientEvaluation) -> Void = { _, _ in }) throws(ModelError) -> Outcome {
        let workers = max(1, min(jobs, cases.count))
        let next = Atomic<Int>(0)
        let results = Mutex<[PatientEvaluation?]>(Array(repeating: nil, count: cases.count))
        let failure = Mutex<ModelError?>(nil)
        let profiles = Mutex(SteppedProfile())
        let report = Mutex(())
        let done = DispatchSemaphore(value: 0)
        for worker in 0..<workers {
            let thread = Thread {
                defer { done.signal() }
                // One classifier per worker: a classifier is not shared between threads.
                let classifier: ViewClassifier
                do throws(ModelError) { classifier = try ViewClassifier(path: setup.modelPath, threads: 1) } catch {
                    failure.withLock { $0 = $0 ?? error }
                    return
                }
                while failure.withLock({ $0 == nil }) {
                    let index = next.add(1, ordering: .relaxed).oldValue
                    guard index < cases.count else { break }
                    let scan = cases[index]
                    let result = ScanEvaluation.run(patient: scan.parameters, patientFile: scan.file, views: views,
                                                    setup: setup, classifier: classifier,
                                                    profile: profile ? { part in profiles.withLock { $0 = $0 + part } } : nil)
                    results.withLock { $0[index] = result }
                    report.withLock { _ in progress(index, result) }
                }
            }
            thread.name = "sono-eval-\(worker)"
            thread.stackSize = 8 << 20
            thread.start()
        }
        for _ in 0..<workers { done.wait() }
        if let error = failure.withLock({ $0 }) { throw error }
        return Outcome(results: results.withLock { $0.compactMap { $0 } }, profile: profiles.withLock { $0 })
    }
}

