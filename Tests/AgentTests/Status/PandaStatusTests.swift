import Agent
import Foundation
import Testing

/// The PanDA WMS status plugin against a fake PanDA server that replays the replies APF's authors recorded
/// (/work/shared/fixtures/panda, read in place). Skipped when that folder is absent.
@Suite(.enabled(if: FakePandaServer.available, "PanDA reply fixtures not found at /work/shared/fixtures/panda"), .serialized)
struct PandaStatusTests {
    private func source(
        _ fake: FakePandaServer, clock: TestClock, poll: PollPolicy = PollPolicy(), timeout: Duration = .seconds(5),
        siteSpecs: Bool = true
    ) -> PandaStatusSource {
        PandaStatusSource(
            .init(baseURL: fake.baseURL, timeout: timeout, poll: poll, siteSpecs: siteSpecs), clock: clock.clock)
    }

    @Test(.timeLimit(.minutes(1))) func recordedReplyIsMappedAndSummedOverLabels() async throws {
        let fake = try FakePandaServer()
        defer { fake.stop() }
        let panda = source(fake, clock: TestClock())
        // FZK-LCG2: activated 8 + 6684 + 1; holding 1 + 70, running 3541, transferring 135; assigned 98.
        let fzk = await panda.observe("FZK-LCG2")
        #expect(fzk.counts == .known(WMSQueueCounts(ready: 6693, notready: 98, running: 3747)))
        // BU_ATLAS_Tier2o: activated 1 + 1362 + 2; running 8 + 746, holding 6 + 7, transferring 262; defined 33,
        // assigned 10.
        let bu = await panda.observe("BU_ATLAS_Tier2o")
        #expect(bu.counts == .known(WMSQueueCounts(ready: 1365, notready: 43, running: 1029)))
        // Neither site is in the recorded site specs: their status is unknown, not "online".
        #expect(bu.site.missingReason?.contains("not in PanDA's site specs") == true)
        #expect(fake.server.requests.filter { $0.hasPrefix("/server/panda/getJobStatisticsWithLabel") }.count == 1)
    }

    @Test(.timeLimit(.minutes(1))) func siteStatusComesFromSiteSpecs() async throws {
        let fake = try FakePandaServer()
        defer { fake.stop() }
        let panda = source(fake, clock: TestClock())
        // BNL_ATLAS_1 is in the site specs (offline) but has no jobs: a known site with nothing queued.
        let bnl = await panda.observe("BNL_ATLAS_1")
        #expect(bnl.site == .known(.offline))
        #expect(bnl.counts == .known(WMSQueueCounts(ready: 0)))
    }

    @Test(.timeLimit(.minutes(1))) func unknownSiteIsMissingNeverZero() async throws {
        let fake = try FakePandaServer()
        defer { fake.stop() }
        let o = await source(fake, clock: TestClock()).observe("NO_SUCH_SITE")
        #expect(o.counts.missingReason == "site NO_SUCH_SITE is not in PanDA's job statistics")
        // The scheduler blocks on it instead of computing with 0.
        var f = CycleFacts.simulated(activated: 0, pending: 0, running: 0)
        f.wms = o.counts
        #expect(SchedulerChain([Ready(), MinPerCycle(minimum: 1)]).decide(f).final == nil)
    }

    @Test(.timeLimit(.minutes(1))) func perSiteShapeAndEnvelopeAreAccepted() async throws {
        let fake = try FakePandaServer(.init(envelope: true, perSiteShape: true))
        defer { fake.stop() }
        let o = await source(fake, clock: TestClock(), siteSpecs: false).observe("AGLT2")
        // activated 495; assigned 170; starting 1 + running 341 + holding 9 + transferring 16; finished 114;
        // failed 15 + cancelled 1.
        #expect(o.counts == .known(WMSQueueCounts(ready: 495, notready: 170, running: 367, done: 114, failed: 16)))
        #expect(o.site.missingReason?.contains("not read") == true)
    }

    @Test(.timeLimit(.minutes(1))) func cacheIsReusedUntilRefreshThenRefetched() async throws {
        let fake = try FakePandaServer()
        defer { fake.stop() }
        let clock = TestClock()
        let panda = source(fake, clock: clock, poll: PollPolicy(refreshAfter: .seconds(150), maxAge: .seconds(360)))
        _ = await panda.observe("FZK-LCG2")
        _ = await panda.observe("BU_ATLAS_Tier2o")
        clock.advance(149)
        _ = await panda.observe("FZK-LCG2")
        #expect(await panda.fetchCounts() == (1, 1))
        clock.advance(2)
        _ = await panda.observe("FZK-LCG2")
        #expect(await panda.fetchCounts() == (2, 2))
    }

    @Test(.timeLimit(.minutes(1))) func staleInformationIsRefusedAfterMaxAge() async throws {
        let fake = try FakePandaServer()
        defer { fake.stop() }
        let clock = TestClock()
        let panda = source(fake, clock: clock, poll: PollPolicy(refreshAfter: .seconds(150), maxAge: .seconds(360), retries: 0))
        #expect(await panda.observe("FZK-LCG2").counts.value?.ready == 6693)
        fake.set { $0.down = true }
        clock.advance(200)  // refresh fails, but the last answer is 200 s old: still within maxage
        #expect(await panda.observe("FZK-LCG2").counts.value?.ready == 6693)
        clock.advance(200)  // 400 s old
        let o = await panda.observe("FZK-LCG2")
        #expect(o.counts.value == nil)
        let reason = try #require(o.counts.missingReason)
        #expect(reason.contains("400 s old (maxage 360 s)"))
        #expect(reason.contains("HTTP 503"))
    }

    @Test(.timeLimit(.minutes(1))) func retriesWithExponentialBackoff() async throws {
        let fake = try FakePandaServer(.init(failFirst: 2))
        defer { fake.stop() }
        let clock = TestClock()
        let panda = source(
            fake, clock: clock, poll: PollPolicy(retries: 3, backoff: .seconds(2)), siteSpecs: false)
        #expect(await panda.observe("FZK-LCG2").counts.value?.ready == 6693)
        #expect(fake.server.requests.count == 3)
        #expect(clock.sleeps == [.seconds(2), .seconds(4)])
    }

    @Test(.timeLimit(.minutes(1))) func givesUpAfterItsRetries() async throws {
        let fake = try FakePandaServer(.init(down: true))
        defer { fake.stop() }
        let clock = TestClock()
        let panda = source(fake, clock: clock, poll: PollPolicy(retries: 2, backoff: .seconds(1)), siteSpecs: false)
        let o = await panda.observe("FZK-LCG2")
        #expect(o.counts.missingReason?.contains("HTTP 503") == true)
        #expect(fake.server.requests.count == 3)
        #expect(clock.sleeps == [.seconds(1), .seconds(2)])
    }

    @Test(.timeLimit(.minutes(1))) func slowServerTimesOut() async throws {
        let fake = try FakePandaServer(.init(delay: 10))
        defer { fake.stop() }
        let started = ContinuousClock.now
        let panda = source(fake, clock: TestClock(), poll: PollPolicy(retries: 0), timeout: .seconds(1), siteSpecs: false)
        let o = await panda.observe("FZK-LCG2")
        #expect(o.counts.missingReason?.contains("within 1 s") == true)
        // Well before the server's 10 s answer; the slack is for the busy 2-core start of a test run.
        #expect(ContinuousClock.now - started < .seconds(6))
    }

    @Test(.timeLimit(.minutes(1))) func notFoundIsNotRetried() async throws {
        let fake = try FakePandaServer()
        defer { fake.stop() }
        let panda = PandaStatusSource(
            .init(baseURL: fake.server.baseURL + "/wrong", poll: PollPolicy(retries: 3), siteSpecs: false),
            clock: TestClock().clock)
        let o = await panda.observe("FZK-LCG2")
        #expect(o.counts.missingReason?.contains("HTTP 404") == true)
        #expect(fake.server.requests.count == 1)
    }
}
