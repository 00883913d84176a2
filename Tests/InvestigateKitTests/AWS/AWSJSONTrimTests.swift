import Foundation
import Testing
@testable import InvestigateKit

/// The fast trim must agree with Foundation's `.whitespaces` (tab and Unicode Zs) on every input.
@Suite struct AWSJSONTrimTests {
    @Test(arguments: ["", " ", "\t", "x", " x ", "\tx\t", "\u{00A0}x\u{3000}", "x\u{2003}", "\u{2003}", "a b",
                      "\n x \n", "-", " - ", "é", "\u{FEFF}x", "x\u{200B}", "\u{1680}ogham"])
    func fastTrimMatchesFoundation(_ s: String) {
        #expect(AWSJSON.trimmedBlanks(s) == s.trimmingCharacters(in: .whitespaces))
    }
}

/// The trace root as the Foundation-based version read it (`trimmingCharacters`, literal `=`).
@Suite struct AWSTraceRootTests {
    static func reference(_ header: String) -> String? {
        let t = header.trimmingCharacters(in: .whitespaces)
        if t.isEmpty || t == "-" { return nil }
        if !t.contains("=") { return t }
        for part in t.split(separator: ";") {
            let p = part.trimmingCharacters(in: .whitespaces)
            if p.hasPrefix("Root=") { let v = p.dropFirst(5); return v.isEmpty ? nil : String(v) }
        }
        return nil
    }

    @Test(arguments: ["Root=1-67a4b2c1-0123456789abcdef01234567", "Self=1-a-b;Root=1-67a4-abc;CalledFrom=app", " 1-67a4-abc ",
                      "-", "", " - ", "Root=", "  Self=a ; Root=1-b ; Sampled=1", "Sampled=1", "1-67a4-abc\u{200B}",
                      "\u{3000}Root=1-x\u{3000}", "Root=1-é;Self=2", "=\u{301}x", "a=b;;Root=c",
                      // ASCII headers take the byte path: blanks, empty parts, a bare Root=, CR LF.
                      "\tRoot=1-a\t", ";;Root=1-a;;", "Self=x; \tRoot=1-b\t ;Root=1-c", "Root=;Root=1-d", "root=1-e",
                      "Root =1-f", " Root=1-g\r\n", "Root=\r\n", "-", "\t-\t", "--", "=", ";", "Root=1-h;Root", "x;Root=1=2"])
    func rootMatchesTheFoundationReading(_ header: String) {
        #expect(AWSTrace.root(header) == Self.reference(header))
    }

    @Test func randomASCIIHeadersMatchTheFoundationReading() {
        let pieces = ["R", "o", "t", "=", ";", " ", "\t", "-", "\r\n", "\n", "a", "1", "Root=", "Self="]
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<5_000 {
            let header = (0..<Int.random(in: 0...10, using: &generator)).map { _ in pieces.randomElement(using: &generator)! }.joined()
            #expect(AWSTrace.root(header) == Self.reference(header), "differs for \(header.debugDescription)")
        }
    }
}
