// The plotting parts on their own: long series reduced without losing extremes, bad samples
// skipped, ticks and numbers as a person reads them.

@testable import SonoReport
import Testing

@Suite struct DecimationTests {
    /// 100 000 samples of noise with one spike up and one dip down, each a single sample.
    static func spiky(count: Int = 100_000) -> [TimedValue] {
        (0..<count).map { index in
            let value = index == 54_321 ? 50.0 : index == 77_777 ? -30 : 8 + Double(index % 7) * 0.1
            return TimedValue(t: Double(index) / 1000, value: value)
        }
    }

    @Test func keepsSingleSampleExtremesAndEnds() {
        let series = Self.spiky()
        let reduced = Decimation.minMaxPerColumn(series, columns: 1000, timeRange: 0...99.999)
        #expect(reduced.count <= 4 * 1000)
        #expect(reduced.count >= 2 * 1000, "each column keeps at least its first and last sample")
        #expect(reduced.map(\.value).max() == 50)
        #expect(reduced.map(\.value).min() == -30)
        #expect(reduced.first == series.first)
        #expect(reduced.last == series.last)
        #expect(reduced.contains(TimedValue(t: 54.321, value: 50)))
        #expect(zip(reduced, reduced.dropFirst()).allSatisfy { $0.t <= $1.t }, "still in time order")
    }

    @Test func shortSeriesComeBackUnchanged() {
        let series = (0..<40).map { TimedValue(t: Double($0), value: Double($0 * $0)) }
        #expect(Decimation.minMaxPerColumn(series, columns: 10, timeRange: 0...39) == series)
        #expect(Decimation.minMaxPerColumn([], columns: 10, timeRange: 0...1).isEmpty)
    }

    @Test func skipsNonFiniteSamplesAndSortsUnsortedOnes() {
        let series = [TimedValue(t: 2, value: 1), TimedValue(t: .nan, value: 3), TimedValue(t: 1, value: .infinity),
                      TimedValue(t: 0, value: 4), TimedValue(t: 3, value: -.infinity), TimedValue(t: 1.5, value: .nan),
                      TimedValue(t: 1, value: 2)]
        #expect(Decimation.finiteSorted(series) == [TimedValue(t: 0, value: 4), TimedValue(t: 1, value: 2), TimedValue(t: 2, value: 1)])
        let path = [TimedPoint(t: 1, x: 0, y: 0, z: .nan), TimedPoint(t: 0, x: 1, y: 2, z: 3)]
        #expect(Decimation.finiteSorted(path) == [TimedPoint(t: 0, x: 1, y: 2, z: 3)])
    }

    @Test func thinningKeepsEndsAndBoundsTheCount() {
        // A probe that jitters within half a pixel, then moves away: the jitter collapses.
        var points = (0..<10_000).map { (x: 100 + Double($0 % 2) * 0.4, y: 100.0, t: Double($0)) }
        points.append((x: 200, y: 150, t: 10_000))
        let thinned = Decimation.thinned(points)
        #expect(thinned.count == 2)
        #expect(thinned.first?.t == 0 && thinned.last?.t == 10_000)
        // A path that really moves a pixel each step is capped.
        let long = (0..<50_000).map { (x: Double($0), y: 0.0, t: Double($0)) }
        let capped = Decimation.thinned(long, maximumCount: 1000)
        #expect(capped.count == 1000)
        #expect(capped.first?.t == 0 && capped.last?.t == 49_999)
    }
}

@Suite struct TicksAndNumbersTests {
    @Test func niceTicksAreRoundAndInside() {
        let ticks = Ticks.nice(0, 26.25, target: 5)
        #expect(ticks.values == [0, 5, 10, 15, 20, 25])
        #expect(ticks.decimals == 0)
        let small = Ticks.nice(0, 1, target: 5)
        #expect(small.values.map { NumberText.fixed($0, small.decimals) } == ["0.0", "0.2", "0.4", "0.6", "0.8", "1.0"])
        #expect(Ticks.niceDomain(-0.3, 22.4, target: 5) == -5...25)
    }

    @Test func timeTicksUseClockStepsForMinutes() {
        let ticks = Ticks.time(0, 200)
        #expect(ticks.clock)
        #expect(ticks.values == [0, 30, 60, 90, 120, 150, 180])
        #expect(ticks.values.map(NumberText.clock) == ["0:00", "0:30", "1:00", "1:30", "2:00", "2:30", "3:00"])
        #expect(!Ticks.time(0, 4).clock)
        #expect(NumberText.clock(3725) == "1:02:05")
    }

    @Test func fixedDecimals() {
        #expect(NumberText.fixed(3.14159, 2) == "3.14")
        #expect(NumberText.fixed(-0.04, 1) == "0.0")
        #expect(NumberText.fixed(-12.35, 1) == "-12.4" || NumberText.fixed(-12.35, 1) == "-12.3")
        #expect(NumberText.fixed(1234.5, 0) == "1235" || NumberText.fixed(1234.5, 0) == "1234")
        #expect(NumberText.fixed(0.05, 3) == "0.050")
        #expect(NumberText.fixed(.nan, 1) == "–")
        #expect(NumberText.fixed(-.infinity, 1) == "–")
    }

    @Test func base64MatchesRFC4648Vectors() {
        let vectors = ["": "", "f": "Zg==", "fo": "Zm8=", "foo": "Zm9v", "foob": "Zm9vYg==", "fooba": "Zm9vYmE=", "foobar": "Zm9vYmFy"]
        for (input, expected) in vectors {
            #expect(Base64.encode(Array(input.utf8)) == expected, "\(input)")
        }
        #expect(Base64.encode([0xFF, 0xFE, 0x00]) == "//4A")
    }

    @Test func scaleMapsEndsAndSurvivesAZeroSpan() {
        let scale = LinearScale(domain: 0...10, range: (300, 100))
        #expect(scale(0) == 300 && scale(10) == 100 && scale(5) == 200)
        let flat = LinearScale(domain: 4...4, range: (0, 100))
        #expect(flat(4) == 50)
    }
}

@Suite struct EscapingTests {
    @Test func escapesMarkupAndQuotes() {
        #expect(HTMLText.escape("<script>alert('x')</script> & \"q\"")
                == "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;")
        #expect(HTMLText.escape("A4C ✓ — 5 mm") == "A4C ✓ — 5 mm")
    }

    @Test func replacesCharactersHTMLForbids() {
        #expect(HTMLText.escape("a\u{0}b\u{7}c\u{7F}d\u{FFFF}e\tf\ng") == "a\u{FFFD}b\u{FFFD}c\u{FFFD}d\u{FFFD}e\tf\ng")
    }

    @Test func truncatesWithAnEllipsis() {
        #expect(HTMLText.truncated("force above soft limit", to: 10) == "force abo…")
        #expect(HTMLText.truncated("stop", to: 10) == "stop")
    }
}
