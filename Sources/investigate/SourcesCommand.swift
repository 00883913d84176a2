import ArgumentParser
import Foundation
import InvestigateKit

/// `investigate sources`: what a database holds.
struct SourcesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sources",
        abstract: "List the files a database holds: path, format, lines, time range, SHA-256, and why a file was skipped.",
        discussion: "--json prints one JSON document: {\"database\",\"sources\":[{\"id\",\"path\",\"format\",\"status\",\"lines\",\"events\",\"rejected\",\"first\",\"last\",\"sha256\",\"size\",\"compressed\",\"skipped\",\"parent\"}],\"complete\",\"skipped\"}.")

    @OptionGroup var store: StoreOptions

    @Flag(name: .long, help: "Print one JSON document.")
    var json = false

    func run() throws {
        guard FileManager.default.fileExists(atPath: store.db) else {
            // Opening would create an empty database: say there is none instead.
            FileHandle.standardError.write(Data("investigate: no database at \(Escape.terminal(store.db))\n".utf8))
            throw ExitStatus.databaseError
        }
        let listing = try SourceListing.load(try openStore(store.db), database: store.db)
        if json { try writeJSON(listing) } else { print(listing.render(), terminator: "") }
    }
}
