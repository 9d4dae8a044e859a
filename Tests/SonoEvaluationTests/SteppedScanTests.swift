import Foundation
import SonoCore
import SonoDaemon
import SonoEvaluation
import SonoSim
import SonoTestSupport
import Testing

/// Whole scans in simulated time (`sonoctl sim eval`): deterministic, and scoring by truth.
@Suite struct SteppedScanTests {
    static func setup(viewTimeoutSeconds: Double? = nil) throws -> EvaluationSetup {
        var setup = try EvaluationSetup.load(configuration: DaemonConfiguration.simulation(root: Repository.root.path))
        if let viewTimeoutSeconds { setup.planner.viewTimeoutSeconds = viewTimeoutSeconds }
        return setup
    }

    static func scan(_ patient: PatientParameters, views: [StandardView], setup: EvaluationSetup) throws -> PatientEvaluation {
        let outcome = try EvaluationRunner.run([EvaluationCase(parameters: patient, file: "\(patient.name).toml")],
                                               views: views, setup: setup, jobs: 1)
        return try #require(outcome.results.first)
    }

    static func json(_ value: PatientEvaluation) throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return try encoder.encode(value)
    }

    /// Same patient and seed, same result to the bit; a short view (the planner gives up after
    /// 6 simulated seconds) keeps it quick.
    @Test func theSameSeedGivesTheSameScan() throws {
        let setup = try Self.setup(viewTimeoutSeconds: 6)
        let patient = try #require(try PatientPopulation(seed: 3).members(1).first).parameters
        let first = try Self.scan(patient, views: [.a4c], setup: setup)
        let second = try Self.scan(patient, views: [.a4c], setup: setup)
        #expect(first.error == nil, "\(first.error ?? "")")
        #expect(first.frames > 100, "the probe imaged all along (\(first.frames) frames)")
        #expect(first == second)
        #expect(try Self.json(first) == Self.json(second))
    }

    /// The default patient's PLAX: found, held, clipped, and scored by the simulator's truth.
    @Test func aScanOfTheDefaultPatientAcquiresAViewAndScoresItsClip() throws {
        let setup = try Self.setup()
        let patient = try PatientParameters.load(path: Repository.path("hardware/patients/default.toml"))
        let result = try Self.scan(patient, views: [.plax], setup: setup)
        #expect(result.error == nil && result.interruption == nil, "\(result.error ?? result.interruption ?? "")")
        let plax = try #require(result.views.first)
        #expect(plax.acquired, "PLAX not acquired: \(plax.reason ?? "")")
        let frames = try #require(plax.clipFrames)
        #expect(frames >= 50, "a 2 s clip at 30 fps (\(frames) frames)")
        let quality = try #require(plax.clipMeanQuality)
        #expect(quality >= 0 && quality <= 1)
        #expect(plax.falseAcquisition == (quality < ViewQuality.diagnostic))
        #expect(plax.maxTrueForceN > 4 && plax.maxTrueForceN < 20, "contact at about 8 N (\(plax.maxTrueForceN) N)")
        #expect(result.incidents.allSatisfy { $0.kind != "stop" && $0.kind != "fault" }, "\(result.incidents)")
    }
}

/// The evaluation population: make_patients.py's sampling, seeds apart from training and validation.
@Suite struct PatientPopulationTests {
    @Test func membersAreValidDisjointAndStable() throws {
        let population = PatientPopulation(seed: 2)
        let members = try population.members(40)
        let again = try population.members(5)
        #expect(members.prefix(5).map(\.toml) == again.map(\.toml), "member i does not depend on the count drawn")
        #expect(Set(members.map(\.parameters.seed)).count == 40)
        for member in members {
            let p = member.parameters
            #expect(p.seed == 502_000 + UInt64(member.index))
            // Outside training (100000+), validation (200000+) and the shipped patients (< 10000).
            #expect(p.seed >= 500_000)
            #expect(PatientPopulation.Sampling.heartRateBPM.contains(p.heartRateBPM))
            #expect(PatientPopulation.Sampling.scale.contains(p.heart.scale))
            #expect(PatientPopulation.Sampling.windowQuality.contains(p.imaging.windowQuality))
            #expect(-p.heart.centerMM.z - 45 * p.heart.scale >= p.chest.skinToHeartMM, "the heart stays below the chest wall")
        }
        #expect(members.map(\.toml) != (try PatientPopulation(seed: 3).members(40)).map(\.toml))
    }
}
