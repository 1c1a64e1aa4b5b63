// Registration list for schemes that learn parameters offline (KVQuant-style nuq3/nuq4).
enum CalibratedSchemes {
    static var all: [any KVScheme] { [] }
}
