import Foundation
import Testing

@testable import SSHSubmit

/// Recorded real outputs of batch tools, read in place (never copied into the repository): the shared fixture
/// collection (`/work/shared/fixtures/batch-outputs`, see SOURCES.md there) and the outputs captured from this
/// project's own testbed (`testbed/captured/`). Tests that need them are skipped, saying so, when they are absent.
enum BatchFixtures {
    static let directory = ProcessInfo.processInfo.environment["APF_FIXTURES_DIR"].map { "\($0)/batch-outputs" }
        ?? "/work/shared/fixtures/batch-outputs"
    static var available: Bool { FileManager.default.fileExists(atPath: "\(directory)/SOURCES.md") }
    static let skipNote: Comment = "recorded outputs absent: set APF_FIXTURES_DIR or provide /work/shared/fixtures/batch-outputs"

    static let capturedDirectory = "\(Testbed.repoRoot)/testbed/captured"

    static func bytes(_ relative: String) throws -> [UInt8] {
        [UInt8](try Data(contentsOf: URL(fileURLWithPath: "\(directory)/\(relative)")))
    }

    static func text(_ relative: String) throws -> String { String(decoding: try bytes(relative), as: UTF8.self) }

    /// Captured files under testbed/captured whose name contains `fragment`.
    static func captured(matching fragment: String) -> [String] {
        let files = (try? FileManager.default.subpathsOfDirectory(atPath: capturedDirectory)) ?? []
        return files.filter { $0.contains(fragment) }.sorted().map { "\(capturedDirectory)/\($0)" }
    }
}

extension FactoryTag {
    static func t(_ s: String) -> FactoryTag { try! FactoryTag(s) }
}

func id(_ text: String, _ system: BatchSystem) -> NativeJobID { NativeJobID(text, system: system)! }
