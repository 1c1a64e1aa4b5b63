// A cache scheme is an open-ended, registered way to store K or V: a name, what it costs in bits,
// which rotation it wants, and a factory for per-layer stores. Parity formats (f16, q4_0, …) and
// later schemes (KIVI, TurboQuant, KVQuant) all implement this protocol; the model never sees them.
import GodwitKernels

/// Options that apply to every scheme (parsed once from the CLI or the API).
public struct KVSchemeOptions: Sendable, Equatable {
    /// Apply the scheme's rotation (llama.cpp's Hadamard for the parity formats); `--no-kv-rotation` clears it.
    public var rotation: Bool = true
    /// Tokens per group for per-channel key quantization (KIVI), `--kv-group-size`.
    public var groupSize: Int = 32
    /// Most recent tokens kept in full precision until a group fills (KIVI), `--kv-residual`.
    public var residual: Int = 32
    /// Path of a calibration file (KVQuant codebooks), `--kv-calibration`.
    public var calibrationPath: String? = nil

    public init() {}
}

/// Everything a scheme may use when it builds a store for one layer and role.
public struct KVStoreContext: Sendable {
    public let geometry: KVStoreGeometry
    public let role: KVRole
    public let options: KVSchemeOptions
    /// The layer's RoPE, for schemes that keep keys before RoPE.
    public let rope: RotaryEmbedding?
    /// Loaded calibration data, if a calibration file was named.
    public let calibration: KVCalibration?

    public init(geometry: KVStoreGeometry, role: KVRole, options: KVSchemeOptions, rope: RotaryEmbedding?,
                calibration: KVCalibration? = nil) {
        self.geometry = geometry
        self.role = role
        self.options = options
        self.rope = rope
        self.calibration = calibration
    }
}

/// A registered cache scheme.
public protocol KVScheme: Sendable {
    /// The identifier users type (`-ctk q4_0`).
    var name: String { get }
    /// One line: what it stores and how.
    var summary: String { get }
    /// Where it comes from: paper (arXiv id) or reference code.
    var source: String { get }
    /// True for anything below 16-bit floats (decides llama.cpp's automatic rotation).
    var isQuantized: Bool { get }
    /// Nominal bits per value at a head dim (payload plus per-block side data; excludes windows, sinks).
    func bitsPerValue(headDim: Int, role: KVRole, options: KVSchemeOptions) -> Double
    /// Why this scheme cannot store this role at this head dim, or nil when it can.
    func unsupportedReason(role: KVRole, headDim: Int) -> String?
    /// The rotation applied to vectors of this role before encoding (and to queries / outputs).
    func rotation(role: KVRole, headDim: Int, options: KVSchemeOptions) -> (any KVRotation)?
    func makeKeyStore(_ context: KVStoreContext) throws(KVCacheError) -> any KeyStore
    func makeValueStore(_ context: KVStoreContext) throws(KVCacheError) -> any ValueStore
}

extension KVScheme {
    public func unsupportedReason(role: KVRole, headDim: Int) -> String? { nil }

    /// llama.cpp's rule: quantized K gets H_n (n = largest power of two dividing the head dim),
    /// quantized V gets 64×64 blocks; both only when the head dim is a multiple of 64.
    public func parityRotation(role: KVRole, headDim: Int, options: KVSchemeOptions) -> (any KVRotation)? {
        guard options.rotation, isQuantized, headDim % 64 == 0 else { return nil }
        switch role {
        case .key: return HadamardRotation(block: HadamardRotation.largestPowerOfTwo(dividing: headDim))
        case .value: return HadamardRotation(block: 64)
        }
    }
}
