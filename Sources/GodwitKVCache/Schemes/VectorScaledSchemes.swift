// Registration list for the per-vector / per-layer scaled schemes (FP8, Q8_KV, TurboQuant-style, trellis-coded).
enum VectorScaledSchemes {
    static var all: [any KVScheme] {
        [FP8Scheme(.e4m3), FP8Scheme(.e5m2), Q8KVScheme(),
         TurboQuantScheme(bits: 4), TurboQuantScheme(bits: 3), TurboQuantScheme(bits: 2),
         TCQScheme(bits: 4), TCQScheme(bits: 3), TCQScheme(bits: 2)]
    }
}
