@testable import Agent
import Testing

/// The INI reader follows Python 2.7's ConfigParser as APF used it (optionxform = str).
struct INIDocumentTests {
    @Test func readsSectionsKeysAndLines() {
        let text = """
            # comment
            ; another comment
            [DEFAULT]
            a = 1
            b: two words

            [Q1]
            c=3
            """
        let (doc, diags) = INIDocument.parse(text, file: "q.conf")
        #expect(diags.isEmpty)
        #expect(doc.defaults?["a"]?.value == "1")
        #expect(doc.defaults?["b"]?.value == "two words")
        #expect(doc.defaults?["b"]?.location == ConfigLocation(file: "q.conf", line: 5))
        #expect(doc.sectionNames == ["Q1"])
        #expect(doc[section: "Q1"]?["c"]?.value == "3")
        #expect(doc[section: "Q1"]?.location.line == 7)
    }

    @Test func keysAreCaseSensitive() {
        let (doc, _) = INIDocument.parse("[Factory]\nfactoryId = x\nfactoryid = y\n", file: "f")
        #expect(doc[section: "Factory"]?["factoryId"]?.value == "x")
        #expect(doc[section: "Factory"]?["factoryid"]?.value == "y")
    }

    @Test func inlineSemicolonCommentNeedsPrecedingBlank() {
        let (doc, _) = INIDocument.parse("[Q]\na = x ; comment\nb = x;y\nc = \"\"\n", file: "f")
        #expect(doc[section: "Q"]?["a"]?.value == "x")
        #expect(doc[section: "Q"]?["b"]?.value == "x;y")
        #expect(doc[section: "Q"]?["c"]?.value == "")
    }

    @Test func hashAfterValueIsPartOfIt() {
        // Python 2.7 only strips ` ;` comments inline; `#` stays in the value.
        let (doc, _) = INIDocument.parse("[Q]\na = x # not a comment\n", file: "f")
        #expect(doc[section: "Q"]?["a"]?.value == "x # not a comment")
    }

    @Test func indentedLinesContinueTheValue() {
        let (doc, diags) = INIDocument.parse("[Q]\nargs = --one\n    --two\n\t--three\nnext = 1\n", file: "f")
        #expect(diags.isEmpty)
        #expect(doc[section: "Q"]?["args"]?.value == "--one\n--two\n--three")
        #expect(doc[section: "Q"]?["next"]?.value == "1")
    }

    @Test func remLinesAreComments() {
        let (doc, diags) = INIDocument.parse("[Q]\nREM a comment\nrem another\nremote = 1\n", file: "f")
        #expect(diags.isEmpty)
        #expect(doc[section: "Q"]?.keys == ["remote"])
    }

    @Test func repeatedKeyAndSectionMergeLaterWins() {
        let (doc, diags) = INIDocument.parse("[Q]\na = 1\nb = 2\n[R]\n[Q]\na = 3\n", file: "f")
        #expect(doc[section: "Q"]?["a"]?.value == "3")
        #expect(doc[section: "Q"]?["b"]?.value == "2")
        #expect(doc.sectionNames == ["Q", "R"])
        let dup = diags.first { $0.code == .duplicateKey }
        #expect(dup?.line == 6)
        #expect(dup?.message.contains("first at line 2") == true)
    }

    @Test func linesBeforeAnySectionAreOneError() {
        let (doc, diags) = INIDocument.parse("a = 1\nb = 2\n[Q]\nc = 3\n", file: "f")
        #expect(diags.count == 1)
        #expect(diags[0].code == .missingSectionHeader)
        #expect(diags[0].line == 1)
        #expect(doc[section: "Q"]?["c"]?.value == "3")
    }

    @Test func badLinesAreReportedAndParsingGoesOn() {
        let (doc, diags) = INIDocument.parse("[Q]\njust words\na = 1\n  indented\n[R]\n  x = 1\nb = 2\n", file: "f")
        // "just words" (no '='), and "  x = 1" right after a header (nothing to continue).
        #expect(diags.map(\.line) == [2, 6])
        #expect(diags.allSatisfy { $0.code == .syntax && $0.isError })
        #expect(doc[section: "Q"]?["a"]?.value == "1\nindented")
        #expect(doc[section: "R"]?["b"]?.value == "2")
    }

    @Test func keyStopsAtFirstSeparator() {
        let (doc, _) = INIDocument.parse(
            "[Q]\nx509.vorole = atlas:/atlas/usatlas\nbatchsubmit.x.condor_attributes.+req = os==\"rhel7\"\n",
            file: "f")
        #expect(doc[section: "Q"]?["x509.vorole"]?.value == "atlas:/atlas/usatlas")
        #expect(doc[section: "Q"]?["batchsubmit.x.condor_attributes.+req"]?.value == "os==\"rhel7\"")
    }

    @Test func crlfLineEndings() {
        let (doc, diags) = INIDocument.parse("[Q]\r\na = 1\r\nb = 2\r\n", file: "f")
        #expect(diags.isEmpty)
        #expect(doc[section: "Q"]?["a"]?.value == "1")
        #expect(doc[section: "Q"]?["b"]?.location.line == 3)
    }
}

struct ConfigValueTests {
    @Test(arguments: [
        ("None", ConfigValue.null), ("none", .null), ("True", .bool(true)), ("true", .bool(true)),
        ("False", .bool(false)), ("false", .bool(false)), ("42", .integer(42)), ("-3", .integer(-3)),
        ("0.25", .number(0.25)), ("1e3", .number(1000)), ("fifty", .string("fifty")),
        ("TRUE", .string("TRUE")), ("", .string("")),
    ])
    func parsesLikeGenericGetButTyped(text: String, expected: ConfigValue) {
        #expect(ConfigValue(parsing: text) == expected)
    }

    @Test(arguments: [("1", true), ("yes", true), ("On", true), ("no", false), ("OFF", false), ("0", false)])
    func booleansAcceptPythonWords(text: String, expected: Bool) {
        #expect(ConfigValue.boolean(text) == expected)
    }

    @Test func nonBooleansAndNonNumbersAreRejected() {
        #expect(ConfigValue.boolean("maybe") == nil)
        #expect(ConfigValue.integer("12a") == nil)
        #expect(ConfigValue.integer("1.5") == nil)
        #expect(ConfigValue.number("nan") == nil)
    }
}

struct EditDistanceTests {
    @Test func suggestsNearestKey() {
        #expect(EditDistance.distance("peacefull", "peaceful") == 1)
        #expect(
            EditDistance.nearest(
                "batchsubmit.condorlocal.peacefull", in: KeyCatalog.allQueueKeys) == "batchsubmit.condorlocal.peaceful")
        #expect(EditDistance.nearest("batchsubmit", in: KeyCatalog.allQueueKeys) == "batchsubmitplugin")
        #expect(EditDistance.nearest("ready", in: ["Ready", "Scale"]) == "Ready")
        #expect(EditDistance.nearest("zzzzzzzz", in: ["Ready", "Scale"]) == nil)
    }
}
