import Foundation

/// SplitMix64: seeds the main generator and derives stable, order-independent values (file-name
/// hashes) from a seed and a key, so one choice never shifts another.
public struct SplitMix64 {
    public var state: UInt64

    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        return Self.mix(state)
    }

    /// The SplitMix64 finaliser: a good 64-bit bijective hash.
    public static func mix(_ value: UInt64) -> UInt64 {
        var z = value
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A hash of a seed and a key, e.g. the 5-minute window a file covers.
    public static func hash(_ seed: UInt64, _ key: UInt64) -> UInt64 {
        mix(mix(seed ^ 0x5DEE_CE66_D1CE_4E5B) &+ key)
    }
}

/// xoshiro256**: the simulator's only source of randomness. Deterministic for a seed on every
/// platform (never `SystemRandomNumberGenerator`), so the same seed and flags give the same logs.
public struct SimRandom: RandomNumberGenerator {
    private var s0: UInt64, s1: UInt64, s2: UInt64, s3: UInt64

    public init(seed: UInt64) {
        var seeder = SplitMix64(seed: seed)
        s0 = seeder.next(); s1 = seeder.next(); s2 = seeder.next(); s3 = seeder.next()
    }

    public mutating func next() -> UInt64 {
        let result = ((s1 &* 5) << 7 | (s1 &* 5) >> 57) &* 9
        let t = s1 << 17
        s2 ^= s0; s3 ^= s1; s1 ^= s2; s0 ^= s3
        s2 ^= t
        s3 = (s3 << 45) | (s3 >> 19)
        return result
    }

    /// Uniform in [0, 1).
    public mutating func unit() -> Double { Double(next() >> 11) * 0x1p-53 }

    public mutating func chance(_ probability: Double) -> Bool { unit() < probability }

    /// Uniform integer in the range (the modulo bias is irrelevant at these sizes).
    public mutating func int(_ range: Range<Int>) -> Int {
        guard range.count > 1 else { return range.lowerBound }
        return range.lowerBound + Int(next() % UInt64(range.count))
    }

    public mutating func int(_ range: ClosedRange<Int>) -> Int { int(range.lowerBound..<(range.upperBound + 1)) }

    public mutating func pick<T>(_ items: [T]) -> T { items[int(0..<items.count)] }

    /// Picks by weight; weights need not sum to 1.
    public mutating func weighted<T>(_ items: [(T, Double)]) -> T {
        let total = items.reduce(0) { $0 + $1.1 }
        var x = unit() * total
        for (item, weight) in items {
            if x < weight { return item }
            x -= weight
        }
        return items[items.count - 1].0
    }

    /// Exponential with the given mean (Poisson inter-arrival times).
    public mutating func exponential(mean: Double) -> Double { -mean * PortableMath.log(1 - unit()) }

    /// Standard normal (Marsaglia's polar method: only log and the correctly rounded sqrt).
    public mutating func normal() -> Double {
        while true {
            let u = 2 * unit() - 1, v = 2 * unit() - 1
            let s = u * u + v * v
            if s > 0, s < 1 { return u * (-2 * PortableMath.log(s) / s).squareRoot() }
        }
    }

    /// Log-normal around a median: service times have a long right tail.
    public mutating func logNormal(median: Double, sigma: Double) -> Double { median * PortableMath.exp(sigma * normal()) }

    public mutating func hex(_ count: Int) -> String {
        var s = ""
        s.reserveCapacity(count)
        var bits: UInt64 = 0, left = 0
        for _ in 0..<count {
            if left == 0 { bits = next(); left = 16 }
            s.append(Self.hexDigits[Int(bits & 0xF)])
            bits >>= 4; left -= 1
        }
        return s
    }

    /// A version-4 UUID, lower case (API Gateway and Lambda request ids).
    public mutating func uuid() -> String {
        let a = hex(8), b = hex(4), c = hex(3), d = hex(3), e = hex(12)
        let variant = Self.hexDigits[8 + int(0..<4)]
        return "\(a)-\(b)-4\(c)-\(variant)\(d)-\(e)"
    }

    /// `count` characters of the alphabet API Gateway's extendedRequestId uses, then `=`.
    public mutating func base64ID(_ count: Int) -> String {
        var s = ""
        for _ in 0..<count { s.append(Self.base64Digits[int(0..<Self.base64Digits.count)]) }
        return s + "="
    }

    public mutating func lowerAlnum(_ count: Int) -> String {
        var s = ""
        for _ in 0..<count { s.append(Self.lowerAlnumDigits[int(0..<Self.lowerAlnumDigits.count)]) }
        return s
    }

    static let hexDigits = Array("0123456789abcdef")
    static let base64Digits = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    static let lowerAlnumDigits = Array("abcdefghijklmnopqrstuvwxyz0123456789")
}

/// `log` and `exp` from IEEE basic operations only. The platform's libm may differ in the last bit
/// between Linux and macOS, and one bit is enough to move a truncated microsecond and change the
/// committed fixtures; +, −, ×, ÷ and sqrt are correctly rounded everywhere.
public enum PortableMath {
    static let ln2 = 0.693_147_180_559_945_3

    /// Natural logarithm of a positive finite number (−∞ for 0).
    public static func log(_ x: Double) -> Double {
        guard x > 0, x.isFinite else { return x == 0 ? -.infinity : .nan }
        // x = m · 2^e with m in [1, 2); then ln m = 2 atanh(z), z = (m − 1)/(m + 1) ≤ 1/3.
        var m = x.significand
        var e = Double(x.exponent)
        if m > 1.414_213_562_373_095 { m /= 2; e += 1 }
        let z = (m - 1) / (m + 1), z2 = z * z
        var term = z, sum = 0.0
        var k = 1.0
        while k < 60 {
            sum += term / k
            term *= z2
            k += 2
        }
        return 2 * sum + e * ln2
    }

    /// e^x for |x| below ~700.
    public static func exp(_ x: Double) -> Double {
        guard x.isFinite else { return x > 0 ? .infinity : 0 }
        guard x < 709 else { return .infinity }
        guard x > -745 else { return 0 }
        let k = (x / ln2).rounded()
        let r = x - k * ln2
        // Taylor series of e^r for |r| ≤ ln2/2.
        var term = 1.0, sum = 1.0
        var n = 1.0
        while n < 30 {
            term *= r / n
            sum += term
            n += 1
        }
        return Double(sign: .plus, exponent: Int(k), significand: sum)
    }
}
