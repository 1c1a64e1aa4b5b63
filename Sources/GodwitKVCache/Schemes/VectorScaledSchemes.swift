// Registration list for the per-vector / per-layer scaled schemes (FP8, Q8_KV, TurboQuant-style).
enum VectorScaledSchemes {
    static var all: [any KVScheme] { [] }
}
