/// Splits a configured command line into an argument vector without a shell: blanks separate words, single quotes
/// keep everything literally, double quotes keep blanks (a backslash escapes `"` and `\` inside them), a backslash
/// outside quotes escapes the next character. No variables, globs or redirections: the command is run directly.
enum ArgvSplitter {
    static func split(_ line: String) -> [String]? {
        var words: [String] = []
        var cur = ""
        var inWord = false
        var quote: Character?
        var escape = false
        for c in line {
            if escape {
                cur.append(c)
                escape = false
                inWord = true
                continue
            }
            switch quote {
            case "'":
                if c == "'" { quote = nil } else { cur.append(c) }
            case "\"":
                if c == "\"" {
                    quote = nil
                } else if c == "\\" {
                    escape = true
                } else {
                    cur.append(c)
                }
            default:
                if c == "'" || c == "\"" {
                    quote = c
                    inWord = true
                } else if c == "\\" {
                    escape = true
                } else if c.isWhitespace {
                    if inWord {
                        words.append(cur)
                        cur = ""
                        inWord = false
                    }
                } else {
                    cur.append(c)
                    inWord = true
                }
            }
        }
        if quote != nil || escape { return nil }
        if inWord { words.append(cur) }
        return words
    }
}

/// APF's `condor_attributes` list: fields separated by commas, `\,` is a literal comma and `\\` a literal
/// backslash before a comma; each field is `key = value` or a bare line.
enum CondorAttributes {
    static func parse(_ s: String) -> [(key: String, value: String)] {
        var fields: [String] = []
        var cur = ""
        var backslashes = 0
        for c in s {
            if c == "\\" {
                backslashes += 1
                continue
            }
            if c == "," {
                cur += String(repeating: "\\", count: backslashes / 2)
                if backslashes % 2 == 1 {
                    cur.append(",")
                } else {
                    fields.append(cur)
                    cur = ""
                }
                backslashes = 0
                continue
            }
            cur += String(repeating: "\\", count: backslashes)
            backslashes = 0
            cur.append(c)
        }
        cur += String(repeating: "\\", count: backslashes)
        fields.append(cur)
        return fields.compactMap { f in
            let t = f.trimmingWhitespace()
            guard !t.isEmpty else { return nil }
            if let eq = t.firstIndex(of: "=") {
                return (String(t[..<eq]).trimmingWhitespace(), String(t[t.index(after: eq)...]).trimmingWhitespace())
            }
            return (t, "")
        }
    }
}
