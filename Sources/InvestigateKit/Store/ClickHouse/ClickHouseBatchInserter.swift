import Foundation

/// Sends one file's rows to ClickHouse in large batches (tens of thousands of rows a request),
/// each batch numbered by the rows' `seq` range, and retries a batch that failed on a transient
/// error without ever storing it twice: before a retry it counts the rows of that attempt and
/// `seq` range already in (a single INSERT of fewer than `max_insert_block_size` rows is one block,
/// stored whole or not at all), and sends it again only when none are.
final class ClickHouseBatchInserter {
    let client: ClickHouseClient
    let table: String
    let columns: [String]
    let sha256: String
    let attempt: String
    /// Rows per request, and bytes at which a request is sent early (long raw lines).
    let maxRows: Int
    let maxBytes: Int
    /// Waits before each retry, seconds.
    var backoff: [Double] = [0.5, 1, 2, 4, 8]

    private(set) var buffer: [UInt8] = []
    private(set) var bufferedRows = 0
    private var firstSeq: UInt64 = 0
    /// Rows confirmed stored.
    private(set) var sent = 0
    /// Rows numbered so far (the next row's `seq`).
    private(set) var nextSeq: UInt64 = 0

    init(client: ClickHouseClient, table: String, columns: [String], sha256: String, attempt: String,
         maxRows: Int = 50_000, maxBytes: Int = 48 << 20) {
        self.client = client
        self.table = table
        self.columns = columns
        self.sha256 = sha256
        self.attempt = attempt
        self.maxRows = maxRows
        self.maxBytes = maxBytes
        buffer.reserveCapacity(min(maxBytes, 8 << 20))
    }

    /// Starts a row: writes `sha256`, `attempt` and `seq`, then the caller appends its fields, each
    /// preceded by a tab, and calls `endRow`.
    func beginRow() {
        buffer.append(contentsOf: sha256.utf8)
        buffer.append(0x09)
        buffer.append(contentsOf: attempt.utf8)
        buffer.append(0x09)
        buffer.append(contentsOf: String(nextSeq).utf8)
        nextSeq += 1
    }

    func endRow() throws {
        buffer.append(0x0A)
        bufferedRows += 1
        if bufferedRows >= maxRows || buffer.count >= maxBytes { try flush() }
    }

    /// Mutable access to the row being written.
    func withBuffer<T>(_ body: (inout [UInt8]) -> T) -> T { body(&buffer) }

    func flush() throws {
        guard bufferedRows > 0 else { return }
        let lo = firstSeq, hi = nextSeq - 1
        var tries = 0
        while true {
            do {
                try client.insert(table, columns: columns, rows: buffer)
                break
            } catch let error as ClickHouseError where error.transient && tries < backoff.count {
                Thread.sleep(forTimeInterval: backoff[tries])
                tries += 1
                if error.maybeApplied {
                    // Did the first try land? Ask (itself retried by the loop on a transient error).
                    guard let landed = try? storedRows(lo, hi) else { continue }
                    if landed == bufferedRows { break }
                    if landed != 0 {
                        throw ClickHouseError(message: "\(landed) of \(bufferedRows) rows of one insert into \(table) are stored: not whole, stopped",
                                              transient: false, maybeApplied: true)
                    }
                }
            }
        }
        sent += bufferedRows
        bufferedRows = 0
        firstSeq = nextSeq
        buffer.removeAll(keepingCapacity: true)
    }

    /// Rows of this attempt with `seq` in `lo...hi` already stored.
    func storedRows(_ lo: UInt64, _ hi: UInt64) throws -> Int {
        let out = try client.query("SELECT count() FROM \(client.url.database).\(table) WHERE sha256 = \(SQLLiteral.token(sha256)) AND attempt = \(SQLLiteral.token(attempt)) AND seq BETWEEN \(lo) AND \(hi)")
        return Int(String(decoding: out, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)) ?? -1
    }

    /// Rows of this attempt stored in all.
    func storedRows() throws -> Int { try storedRows(0, UInt64(Int64.max)) }
}
