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
