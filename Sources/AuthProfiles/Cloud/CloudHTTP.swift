import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// One HTTP exchange for cloud credential checks (URLSession; `http_proxy`, `https_proxy` and `no_proxy` from the
/// environment apply, as for other HTTP clients).
enum CloudHTTP {
    struct Response: Sendable {
        var status: Int
        var headers: [String: String]
        var body: [UInt8]

        func header(_ name: String) -> String? {
            headers.first { $0.key.lowercased() == name.lowercased() }?.value
        }
    }

    static func send(method: String, url: URL, headers: [String: String], body: [UInt8],
                     timeout: TimeInterval) async throws(AuthError) -> Response {
        var request = URLRequest(url: url, cachePolicy: .reloadIgnoringLocalCacheData, timeoutInterval: timeout)
        request.httpMethod = method
        for (k, v) in headers where k.lowercased() != "host" { request.setValue(v, forHTTPHeaderField: k) }
        request.httpBody = Data(body)
        let config = URLSessionConfiguration.ephemeral
        config.timeoutIntervalForRequest = timeout
        config.timeoutIntervalForResource = timeout
        let session = URLSession(configuration: config)
        defer { session.finishTasksAndInvalidate() }
        do {
            let (data, response) = try await session.data(for: request)
            guard let http = response as? HTTPURLResponse else {
                throw AuthError(.cloudResponse, "\(url.absoluteString) answered without an HTTP response")
            }
            var h: [String: String] = [:]
            for (k, v) in http.allHeaderFields {
                if let k = k as? String, let v = v as? String { h[k] = v }
            }
            return Response(status: http.statusCode, headers: h, body: Array(data))
        } catch let e as AuthError {
            throw e
        } catch {
            throw AuthError(.cloudUnreachable, "cannot reach \(url.scheme ?? "http")://\(url.host ?? "?")"
                                + "\(url.port.map { ":\($0)" } ?? ""): \(error.localizedDescription). Fix: check the "
                                + "endpoint URL and the network path to it")
        }
    }
}
