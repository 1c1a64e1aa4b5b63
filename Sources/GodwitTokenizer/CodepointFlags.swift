// Codepoint classes used by the pre-tokenizers: llama.cpp's `unicode_cpt_flags` (unicode.h) and
// `unicode_cpt_flags_from_cpt` (unicode.cpp), which come from a table generated from UnicodeData.txt by
// scripts/gen-unicode-data.py (Cn -> undefined, Cc/Cf/Co/Cs -> control, L* -> letter, M* -> mark,
// N* -> number, P* -> punctuation, S* -> symbol, Z* -> separator; `is_whitespace` = the White_Space set).
// Deviation: the categories come from Swift's `Unicode.Scalar.Properties` instead of a generated table.
// llama.cpp's table holds Unicode 15.1 data, so codepoints assigned later (Swift 6.3 knows Unicode 17)
// are treated as unassigned, as llama.cpp sees them; with that rule the two agree on all 1,114,112
// codepoints (checked against unicode-data.cpp of the reference llama.cpp). A Swift runtime with Unicode
// data older than 15.1 would classify the few codepoints added since as unassigned. Planes 0 and 1 are
// cached in 64K tables built on first use.

struct CodepointFlags: OptionSet, Sendable {
    let rawValue: UInt16
    static let undefined = CodepointFlags(rawValue: 0x0001)
    static let number = CodepointFlags(rawValue: 0x0002)
    static let letter = CodepointFlags(rawValue: 0x0004)
    static let separator = CodepointFlags(rawValue: 0x0008)
    static let mark = CodepointFlags(rawValue: 0x0010)
    static let punctuation = CodepointFlags(rawValue: 0x0020)
    static let symbol = CodepointFlags(rawValue: 0x0040)
    static let control = CodepointFlags(rawValue: 0x0080)
    static let whitespace = CodepointFlags(rawValue: 0x0100)

    /// Flags of a position outside the current segment (llama.cpp's empty `unicode_cpt_flags{}`).
    static let outOfRange = CodepointFlags([])

    @inline(__always) var isLetter: Bool { rawValue & 0x0004 != 0 }
    @inline(__always) var isNumber: Bool { rawValue & 0x0002 != 0 }
    @inline(__always) var isWhitespace: Bool { rawValue & 0x0100 != 0 }
    @inline(__always) var isPunctuation: Bool { rawValue & 0x0020 != 0 }
    /// Any flag at all: true for every codepoint inside the segment, false past its ends.
    @inline(__always) var isPresent: Bool { rawValue != 0 }
    /// `[^\s\p{L}\p{N}]` for a present codepoint.
    @inline(__always) var isOther: Bool { rawValue & 0x0106 == 0 && rawValue != 0 }

    /// The Unicode version of llama.cpp's table: codepoints first assigned after it are unassigned there.
    static let tableVersion = (major: 15, minor: 1)

    /// Classifies one codepoint (surrogate values count as control, values past U+10FFFF as undefined).
    @inline(__always)
    static func of(_ cpt: UInt32) -> CodepointFlags {
        if cpt < 0x10000 { return CodepointFlags(rawValue: bmpTable[Int(cpt)]) }
        if cpt < 0x20000 { return CodepointFlags(rawValue: plane1Table[Int(cpt - 0x10000)]) }
        return compute(cpt)
    }

    static func compute(_ cpt: UInt32) -> CodepointFlags {
        guard let scalar = Unicode.Scalar(cpt) else {
            return cpt >= 0x11_0000 ? .undefined : .control
        }
        let p = scalar.properties
        if let age = p.age, age.major > tableVersion.major || (age.major == tableVersion.major && age.minor > tableVersion.minor) {
            return .undefined
        }
        var f: CodepointFlags
        switch p.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter: f = .letter
        case .nonspacingMark, .spacingMark, .enclosingMark: f = .mark
        case .decimalNumber, .letterNumber, .otherNumber: f = .number
        case .connectorPunctuation, .dashPunctuation, .openPunctuation, .closePunctuation,
             .initialPunctuation, .finalPunctuation, .otherPunctuation: f = .punctuation
        case .mathSymbol, .currencySymbol, .modifierSymbol, .otherSymbol: f = .symbol
        case .spaceSeparator, .lineSeparator, .paragraphSeparator: f = .separator
        case .control, .format, .surrogate, .privateUse: f = .control
        case .unassigned: f = .undefined
        @unknown default: f = .undefined
        }
        if p.isWhitespace { f.insert(.whitespace) }
        return f
    }

    /// Flags for U+0000...U+FFFF, built on first use.
    static let bmpTable: [UInt16] = (0..<0x10000).map { compute(UInt32($0)).rawValue }
    /// Flags for U+10000...U+1FFFF (emoji, historic scripts, math alphanumerics), built on first use.
    static let plane1Table: [UInt16] = (0x10000..<0x20000).map { compute(UInt32($0)).rawValue }
}

/// Simple lowercase mapping as llama.cpp's `unicode_tolower` uses it in the contraction rules. Only the
/// result's equality with an ASCII letter matters there, so ASCII folding is exact: no non-ASCII codepoint
/// has a simple lowercase mapping to one of 's', 't', 'r', 'e', 'v', 'm', 'l', 'd'.
@inline(__always)
func asciiLower(_ c: UInt32) -> UInt32 {
    (c >= 0x41 && c <= 0x5A) ? c + 0x20 : c
}
