public import Foundation
import SSHSubmit

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// One HTTP GET, as the status sources need it. A protocol so that a source can be driven by any transport.
public protocol HTTPFetching: Sendable {
    /// GETs `url`; throws `StatusError` on a transport failure or when `timeout` passes.
    func get(_ url: URL, timeout: Duration) async throws(StatusError) -> (status: Int, body: Data)
}

/// `HTTPFetching` over Foundation's URLSession, with an overall deadline per request.
///
/// The transfer is a callback data task raced against a timer, not `URLSession.data(for:)` in a task group:
/// on Linux, cancelling that async call while its answer arrives deadlocks FoundationNetworking (the task-status
/// lock against the session's queue), and a task group would wait for a transfer that ignores cancellation.
public struct URLSessionFetcher: HTTPFetching {
    /// One session for the process: sessions are never invalidated, so one per fetcher would leak.
    private static let shared: URLSession = {
        let config = URLSessionConfiguration.ephemeral
        config.requestCachePolicy = .reloadIgnoringLocalCacheData
        config.httpAdditionalHeaders = ["User-Agent": "apf-agent/\(APFAgent.version)", "Accept": "application/json"]
        return URLSession(configuration: config)
    }()

    public init() {}

    public func get(_ url: URL, timeout: Duration) async throws(StatusError) -> (status: Int, body: Data) {
        var request = URLRequest(url: url)
        request.timeoutInterval = max(1, timeout.seconds)
        let timedOut = StatusError(
            .timeout, "no answer from \(url.absoluteString) within \(Int(timeout.seconds)) s", retryable: true)
        let answer = FirstAnswer<Result<(Int, Data), StatusError>>()
        let transfer = Self.shared.dataTask(with: request) { data, response, error in
            if let error {
                let timeout = (error as? URLError)?.code == .timedOut
                answer.resume(with: .failure(timeout ? timedOut : StatusError(
                    .transport, "GET \(url.absoluteString) failed: \(error.localizedDescription)", retryable: true)))
            } else {
                answer.resume(with: .success(((response as? HTTPURLResponse)?.statusCode ?? 0, data ?? Data())))
            }
        }
        let timer = Task {
            guard (try? await Task.sleep(for: timeout)) != nil else { return }
            answer.resume(with: .failure(timedOut))
        }
        transfer.resume()
        let result = await answer.value {
            .failure(StatusError(.cancelled, "GET \(url.absoluteString) was cancelled", retryable: true))
        }
        timer.cancel()
        if case .failure = result { transfer.cancel() }
        let (status, body) = try result.get()
        return (status: status, body: body)
    }
}
