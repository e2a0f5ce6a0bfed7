public import Foundation

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// One HTTP GET, as the status sources need it. A protocol so that a source can be driven by any transport.
public protocol HTTPFetching: Sendable {
    /// GETs `url`; throws `StatusError` on a transport failure or when `timeout` passes.
    func get(_ url: URL, timeout: Duration) async throws(StatusError) -> (status: Int, body: Data)
}

/// `HTTPFetching` over Foundation's URLSession, with an overall deadline per request.
public struct URLSessionFetcher: HTTPFetching {
    private let session: URLSession

    public init() {
        let config = URLSessionConfiguration.ephemeral
        config.requestCachePolicy = .reloadIgnoringLocalCacheData
        config.httpAdditionalHeaders = ["User-Agent": "apf-agent/\(APFAgent.version)", "Accept": "application/json"]
        session = URLSession(configuration: config)
    }

    public func get(_ url: URL, timeout: Duration) async throws(StatusError) -> (status: Int, body: Data) {
        var r = URLRequest(url: url)
        r.timeoutInterval = max(1, timeout.seconds)
        let request = r
        let session = self.session
        do {
            return try await withThrowingTaskGroup(of: (Int, Data).self) { group in
                group.addTask {
                    let (data, response) = try await session.data(for: request)
                    return ((response as? HTTPURLResponse)?.statusCode ?? 0, data)
                }
                group.addTask {
                    try await Task.sleep(for: timeout)
                    throw StatusError(.timeout, "no answer from \(url.absoluteString) within \(Int(timeout.seconds)) s", retryable: true)
                }
                defer { group.cancelAll() }
                guard let first = try await group.next() else { throw CancellationError() }
                return (status: first.0, body: first.1)
            }
        } catch let e as StatusError {
            throw e
        } catch let e as URLError where e.code == .timedOut {
            throw StatusError(.timeout, "no answer from \(url.absoluteString) within \(Int(timeout.seconds)) s", retryable: true)
        } catch {
            throw StatusError(.transport, "GET \(url.absoluteString) failed: \(error.localizedDescription)", retryable: true)
        }
    }
}
