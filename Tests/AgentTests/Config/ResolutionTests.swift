@testable import Agent
import Testing

/// [DEFAULT] inheritance per file, %(name)s interpolation after inheritance, ~ expansion, merging of sources.
struct ResolutionTests {
    private func resolve(_ files: [(String, String)]) -> ([ResolvedSection], [ConfigDiagnostic]) {
        let docs = files.map { INIDocument.parse($0.1, file: $0.0).0 }
        let r = SectionResolver.resolve(docs, expander: testExpander)
        return (r.sections, r.diagnostics)
    }

    @Test func defaultIsInheritedAndOverridden() {
        let (s, d) = resolve([("q.conf", "[DEFAULT]\na = 1\nb = 2\n[Q]\nb = 3\n")])
        #expect(d.isEmpty)
        #expect(s[0]["a"]?.value == "1")
        #expect(s[0]["a"]?.inherited == true)
        #expect(s[0]["a"]?.location == ConfigLocation(file: "q.conf", line: 2))
        #expect(s[0]["b"]?.value == "3")
        #expect(s[0]["b"]?.inherited == false)
    }

    @Test func interpolationHappensAfterInheritance() {
        // The DEFAULT value refers to a key each section defines for itself.
        let text = "[DEFAULT]\nargs = -s %(wmsqueue)s -v %(vo)s\nvo = ATLAS\n[Q1]\nwmsqueue = SITE1\n[Q2]\nwmsqueue = SITE2\nvo = CMS\n"
        let (s, d) = resolve([("q.conf", text)])
        #expect(d.isEmpty)
        #expect(s[0]["args"]?.value == "-s SITE1 -v ATLAS")
        #expect(s[1]["args"]?.value == "-s SITE2 -v CMS")
    }

    @Test func nestedInterpolationAndLiteralPercent() {
        let text = "[Q]\na = x\nb = %(a)s-y\nc = %(b)s-z 100%%\nd = %(__name__)s\n"
        let (s, d) = resolve([("q.conf", text)])
        #expect(d.isEmpty)
        #expect(s[0]["c"]?.value == "x-y-z 100%")
        #expect(s[0]["d"]?.value == "Q")
    }

    @Test func defaultReferencingAMissingKeyIsAnErrorAtTheDefaultLine() {
        let text = "[DEFAULT]\nexecutable.defaultarguments = -s %(wmsqueue)s\n[Q1]\nwmsqueue = A\n[Q2]\nenabled = True\n"
        let (s, d) = resolve([("queues.conf", text)])
        #expect(s[0]["executable.defaultarguments"]?.value == "-s A")
        #expect(s[1]["executable.defaultarguments"]?.value == nil)
        #expect(d.count == 1)
        let e = d[0]
        #expect(e.code == .interpolationMissing)
        #expect(e.isError)
        #expect(e.file == "queues.conf")
        #expect(e.line == 2)
        #expect(e.section == "Q2")
        #expect(e.key == "executable.defaultarguments")
        #expect(e.message.contains("%(wmsqueue)s"))
        #expect(e.description.hasPrefix("queues.conf:2: error: [config.interpolation-missing-key]"))
    }

    @Test func badPercentAndSelfReference() {
        let (_, d) = resolve([("q.conf", "[Q]\na = 50% off\nb = %(b)s\n")])
        #expect(d.map(\.code) == [.interpolationSyntax, .interpolationDepth])
        #expect(d.map(\.line) == [2, 3])
    }

    @Test func leadingTildeIsExpandedBeforeInterpolation() {
        let (s, _) = resolve([("a.conf", "[P]\nkey = ~/.ssh/id\nother = ~apftest/x\nnobody = ~nosuchuser/x\nmid = a~b\n")])
        #expect(s[0]["key"]?.value == "/home/tester/.ssh/id")
        #expect(s[0]["other"]?.value == "/home/apftest/x")
        #expect(s[0]["nobody"]?.value == "~nosuchuser/x")
        #expect(s[0]["mid"]?.value == "a~b")
    }

    @Test func eachSourceHasItsOwnDefaultAndLaterSourcesWinKeyByKey() {
        let first = "[DEFAULT]\nd1 = one\n[Q]\na = 1\nb = 1\n"
        let second = "[DEFAULT]\nd2 = two\n[Q]\nb = 2\n[R]\nc = 3\n"
        let (s, _) = resolve([("first.conf", first), ("second.conf", second)])
        let q = s.first { $0.name == "Q" }!
        let r = s.first { $0.name == "R" }!
        #expect(q["a"]?.value == "1")
        #expect(q["b"]?.value == "2")
        #expect(q["b"]?.location.file == "second.conf")
        #expect(q["d1"]?.value == "one")
        #expect(q["d2"]?.value == "two")  // second.conf's DEFAULT reaches its own [Q] entries
        #expect(r["d1"] == nil)  // first.conf's DEFAULT does not reach second.conf's sections
        #expect(r["d2"]?.value == "two")
    }

    @Test func queueDirectoryFilesShareOneDefault() {
        let files = [
            "/c/queues.d/00-defaults.conf": "[DEFAULT]\nschedplugin = Fixed\nsched.fixed.pilotspercycle = 2\nenabled = True\nbatchsubmitplugin = Local\nbatchsubmit.local.batch = slurm\nexecutable = /bin/true\n",
            "/c/queues.d/10-a.conf": "[A]\nwmsqueue = X\n",
            "/c/queues.d/20-b.conf": "[B]\nwmsqueue = Y\n",
            "/c/queues.d/notes.txt": "not a conf file",
        ]
        let config = loadMemory(files, paths: ["/c/queues.d"])
        #expect(config.queues.map(\.name) == ["A", "B"])
        #expect(config.queues.allSatisfy { $0.schedPlugins == ["Fixed"] })
        #expect(config.files.map(\.path) == [
            "/c/queues.d/00-defaults.conf", "/c/queues.d/10-a.conf", "/c/queues.d/20-b.conf",
        ])
        #expect(config.isValid, "\(config.errors)")
    }
}
