import Testing

@testable import SSHSubmit

struct ClientIDTests {
    @Test func textIsAtMost15JobNameSafeCharactersAndRoundTrips() throws {
        let minter = ClientIDMinter(tag: .t("apf1"), unixSeconds: { 1_800_000_000 })
        for id in minter.mint(count: 1000) {
            let text = id.description
            #expect(text.utf8.count <= 15)
            #expect(text.first!.isLetter)
            #expect(text.allSatisfy { $0.isLowercase || $0.isNumber || $0 == "-" })
            #expect(ClientID(text) == id)
        }
    }

    @Test func aBatchIsContiguousAndArrayTasksMapBack() throws {
        let minter = ClientIDMinter(tag: .t("ab"))
        let batch = minter.mint(count: 50)
        for (i, id) in batch.enumerated() {
            #expect(batch[0].advanced(by: i) == id)
            #expect(id.distance(from: batch[0]) == i)
        }
        // The SLURM/SGE array convention: task t carries first + (t - 1).
        #expect(SlurmParser.taskClientID(batch[0], task: 50) == batch[49])
        #expect(SlurmParser.taskClientID(batch[0], task: 0) == nil)
    }

    @Test func mintingIsStrictlyIncreasingAcrossCallsAndRestarts() {
        let a = ClientIDMinter(tag: .t("x"), unixSeconds: { 1_800_000_000 })
        let first = a.mint(count: 3)
        let second = a.mint(count: 2)
        #expect(second[0] > first[2])
        // A restarted agent seeded with the last stored ID never re-issues it, even in the same second.
        let b = ClientIDMinter(tag: .t("x"), after: second[1], unixSeconds: { 1_800_000_000 })
        #expect(b.mint() > second[1])
        // The serial carries the mint time.
        #expect(first[0].mintedAtUnixSeconds == 1_800_000_000)
    }

    @Test(arguments: ["", "A", "1ab", "abcde", "a_b", "Ab"]) func invalidTagsAreRefused(_ tag: String) {
        #expect(throws: BatchError.self) { try FactoryTag(tag) }
    }

    @Test(arguments: ["apf1-0000000000", "a-zzzzzzzzzz"]) func validTextParses(_ text: String) {
        #expect(ClientID(text)?.description == text)
    }

    @Test(arguments: ["apf1-000000000", "apf1-00000000000", "APF1-0000000000", "apf1_0000000000", "apf1-000000000u",
                      "apf1-000000000I", "abcde-000000000", "-0000000000", "apf1-0000000000 "])
    func everythingElseIsNotAClientID(_ text: String) {
        #expect(ClientID(text) == nil)
    }
}

struct NativeJobIDTests {
    @Test func slurmFormsNormalise() {
        #expect(id("123", .slurm) == .slurm(123))
        #expect(id("123_4", .slurm) == .slurm(123, task: 4))
        #expect(id("123_4.batch", .slurm) == .slurm(123, task: 4))
        #expect(id("123.extern", .slurm) == .slurm(123))
        #expect(id("123.0", .slurm) == .slurm(123))
        #expect(id("123;cluster", .slurm) == .slurm(123))
        #expect(NativeJobID("123_[1-3]", system: .slurm) == nil)  // a range is not one ID
        #expect(NativeJobID("x123", system: .slurm) == nil)
        #expect(NativeJobID("123x", system: .slurm) == nil)
        #expect(NativeJobID.slurm(123, task: 4).text == "123_4")
    }

    @Test func slurmPendingRangesExpand() {
        let field = Array("77_[1-3,7,10-14:2%4]".utf8)
        let parsed = field.withUnsafeBytes { NativeJobID.parseSlurm($0) }
        #expect(parsed == .range(job: 77, tasks: [1, 2, 3, 7, 10, 12, 14]))
    }

    @Test func matchingIsExactNeverByPrefixOrSubstring() {
        let known: Set<NativeJobID> = [.slurm(123), .slurm(4123), .slurm(12, task: 3)]
        #expect(known.contains(id("123", .slurm)))
        #expect(!known.contains(id("12", .slurm)))
        #expect(!known.contains(id("1234", .slurm)))
        #expect(!known.contains(id("12_34", .slurm)))
        #expect(known.contains(id("12_3.batch", .slurm)))
        #expect(id("12", .sge) != id("123", .sge))
        #expect(id("5.3", .sge) != id("5", .sge))
    }

    @Test func pbsKeepsTheServerAndComparesItsFirstLabel() {
        let a = id("1234.server", .pbs)
        #expect(a.job == 1234 && a.server == "server")
        #expect(a == id("1234.server.example.org", .pbs))
        #expect(a != id("1234.other", .pbs))
        #expect(a != id("123.server", .pbs))
        #expect(id("673175[19].superserver.stanford.edu", .pbs) == .pbs(673175, index: 19, server: "superserver"))
        #expect(id("830", .pbs) == .pbs(830, server: nil))
        #expect(id("1004.pbs", .pbs).text == "1004.pbs")
        #expect(NativeJobID("12 34", system: .pbs) == nil)
    }

    @Test func htcondorAndSGE() {
        #expect(id("123.4", .htcondor) == .htcondor(123, 4))
        #expect(id("123", .htcondor).task == nil)
        #expect(NativeJobID("123.4.5", system: .htcondor) == nil)
        #expect(id("614", .sge) == .sge(614))
        #expect(id("615.12", .sge) == .sge(615, task: 12))
        #expect(id("615.12", .sge) != id("615.12", .htcondor))
    }
}

struct StateTableTests {
    /// LESSONS §6, normalised to this project's state set.
    @Test(arguments: [
        ("PENDING", PilotState.pending), ("CONFIGURING", .pending), ("REQUEUED", .pending), ("RUNNING", .running),
        ("COMPLETING", .completing), ("SUSPENDED", .held), ("STOPPED", .held), ("COMPLETED", .done), ("TIMEOUT", .done),
        ("PREEMPTED", .done), ("CANCELLED", .cancelled), ("FAILED", .failed), ("NODE_FAIL", .failed), ("BOOT_FAIL", .failed),
        ("OUT_OF_MEMORY", .failed), ("NOCLUE", .unknown),
    ])
    func slurm(_ native: String, _ expected: PilotState) {
        #expect(StateTables.slurm(native).state == expected)
    }

    @Test func timeoutAndPreemptionKeepTheirEnding() {
        #expect(StateTables.slurm("TIMEOUT").ending == .timeout)
        #expect(StateTables.slurm("PREEMPTED").ending == .preempted)
        #expect(StateTables.slurm("OUT_OF_MEMORY").ending == .outOfMemory)
    }

    @Test(arguments: [("Q", PilotState.pending), ("W", .pending), ("T", .pending), ("R", .running), ("E", .completing),
                      ("B", .running), ("H", .held), ("S", .held), ("U", .held), ("F", .done), ("C", .done), ("X", .done), ("Z", .unknown)])
    func pbs(_ native: String, _ expected: PilotState) {
        #expect(StateTables.pbs(native).state == expected)
    }

    @Test func pbsFinishedResolvesByExitStatus() {
        #expect(StateTables.pbs("F").resolve(exitCode: 0).0 == .done)
        #expect(StateTables.pbs("F").resolve(exitCode: 3).0 == .failed)
        #expect(StateTables.pbs("C").resolve(exitCode: nil).0 == .done)  // the Torque wrappers print none
        #expect(StateTables.pbs("R").resolve(exitCode: 3).0 == .running)
    }

    @Test(arguments: [("qw", PilotState.pending), ("hqw", .held), ("hRwq", .held), ("r", .running), ("t", .running),
                      ("Rr", .running), ("hr", .running), ("s", .held), ("S", .held), ("T", .held), ("dr", .completing),
                      ("Eqw", .failed), ("x", .unknown)])
    func sge(_ native: String, _ expected: PilotState) {
        #expect(StateTables.sge(native).state == expected)
    }

    @Test(arguments: [(1, PilotState.pending), (0, .pending), (2, .running), (3, .cancelled), (4, .done), (5, .held), (6, .completing),
                      (7, .held), (42, .unknown)])
    func htcondor(_ native: Int, _ expected: PilotState) {
        #expect(StateTables.htcondor(native).state == expected)
    }

    @Test func nothingUnmappedReadsAsDoneOrFailed() {
        #expect(StateTables.slurm("SOMETHING_NEW").state == .unknown)
        #expect(!PilotState.unknown.isTerminal)
        #expect(!PilotState.held.isTerminal)
        #expect(PilotState.lost.isTerminal)
    }
}
