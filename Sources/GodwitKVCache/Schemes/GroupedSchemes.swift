// Registration list for the grouped and calibrated schemes (KIVI, KVQuant-style).
enum GroupedSchemes {
    static var all: [any KVScheme] { [] }
}
