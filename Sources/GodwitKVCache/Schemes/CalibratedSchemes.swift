// Registration list for schemes that learn parameters offline (KVQuant-style nuq3/nuq4).
enum CalibratedSchemes {
    static var all: [any KVScheme] { [NUQScheme(bits: 4), NUQScheme(bits: 3)] }
}
