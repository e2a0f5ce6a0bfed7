/// Suggestions for misspelt keys and plugin names.
enum EditDistance {
    /// Levenshtein distance over Unicode scalars.
    static func distance(_ a: String, _ b: String) -> Int {
        let x = Array(a.unicodeScalars)
        let y = Array(b.unicodeScalars)
        if x.isEmpty { return y.count }
        if y.isEmpty { return x.count }
        var prev = Array(0...y.count)
        var cur = [Int](repeating: 0, count: y.count + 1)
        for i in 1...x.count {
            cur[0] = i
            for j in 1...y.count {
                let cost = x[i - 1] == y[j - 1] ? 0 : 1
                cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
            }
            swap(&prev, &cur)
        }
        return prev[y.count]
    }

    /// The candidate nearest to `word`: a case-insensitive match first (keys and plugin names are case-sensitive),
    /// else the smallest edit distance if it is small enough to be a plausible typo.
    static func nearest(_ word: String, in candidates: some Sequence<String>) -> String? {
        let lower = word.lowercased()
        var best: (String, Int)?
        for c in candidates {
            if c.lowercased() == lower { return c }
            let d = distance(lower, c.lowercased())
            if best == nil || d < best!.1 || (d == best!.1 && c < best!.0) { best = (c, d) }
        }
        guard let (c, d) = best else { return nil }
        let limit = max(2, min(word.count, c.count) / 3)
        if d <= limit { return c }
        // A truncated word (`batchsubmit` for `batchsubmitplugin`).
        let extended = candidates.filter { $0.lowercased().hasPrefix(lower) && $0.count - word.count <= 6 }
        return extended.min { ($0.count, $0) < ($1.count, $1) }
    }
}
