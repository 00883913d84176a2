import CZlib
import Foundation
import GRDB
import GRDBSQLite

/// Records' original bytes, kept out of the `event` and `rejected` rows in compressed blocks
/// (`raw_block`): the bytes of consecutive records of one source, concatenated, about 64 KB a
/// block, compressed the way SQLite's archive format (sqlar) stores a file: a zlib stream, or the
/// bytes themselves when that is not smaller (then `size` equals the data's length). A row names
/// its block, offset and length (`raw_block`, `raw_offset`, `raw_length`).
///
/// Being sqlar's format, the `events` and `rejected_lines` views can restore the bytes with
/// `sqlar_uncompress`, which the `sqlite3` shell has built in: plain SQL on the database keeps
/// working outside `investigate`. Every `investigate` connection registers the same function
/// (the shell's is not part of the library) and `raw_slice(data, size, offset, length)`, which
/// the code reads through (`StoredEvent.raw(_:)`): both keep the last block inflated, so reading
/// consecutive records inflates each block once.
public enum RawBlocks {
    /// Uncompressed bytes the first block of a batch holds at most (a single record longer than
    /// this gets a block of its own). Larger blocks compress a little better and cost more to
    /// inflate for one record.
    static let blockBytes = 64 * 1024
    /// Compressed bytes the next blocks aim at, from the ratio the last one reached: a 16 KB page
    /// holds one row of up to 16,349 bytes. Blocks of 64 KB inflated to about 10 KB, one to a page,
    /// so a third of `raw_block`'s pages was empty (48 MB of pages for 32 MB of blocks, 1M nginx
    /// lines).
    static let pageFill = 15_000
    static let blockBytesRange = (16 * 1024)...(256 * 1024)

    /// The uncompressed size of the next block, after one of `size` bytes packed into `stored`.
    static func nextBlockBytes(size: Int, stored: Int) -> Int {
        guard stored > 0, size > 0 else { return blockBytes }
        let target = Int(Double(size) / Double(stored) * Double(pageFill))
        return min(blockBytesRange.upperBound, max(blockBytesRange.lowerBound, target))
    }
    /// zlib's level: 1 is several times faster than the default 6 on log text, for a few percent
    /// more bytes (bench/README.md).
    static let level: Int32 = 1

    /// `bytes` compressed as sqlar stores them: the zlib stream, or `bytes` themselves when that is
    /// not smaller.
    static func pack(_ bytes: UnsafeRawBufferPointer, into out: inout [UInt8]) {
        let bound = Int(compressBound(uLong(bytes.count)))
        out.removeAll(keepingCapacity: true)
        out.reserveCapacity(bound)
        var length = uLongf(bound)
        let rc: Int32 = withUnsafeTemporaryAllocation(of: UInt8.self, capacity: max(bound, 1)) { buffer in
            let rc = compress2(buffer.baseAddress, &length, bytes.baseAddress?.assumingMemoryBound(to: UInt8.self) ?? UnsafePointer(bitPattern: 1),
                               uLong(bytes.count), level)
            if rc == Z_OK, Int(length) < bytes.count { out.append(contentsOf: UnsafeBufferPointer(rebasing: buffer[0..<Int(length)])) }
            return rc
        }
        if rc != Z_OK || out.isEmpty { out.append(contentsOf: bytes) }
    }

    /// The bytes of a block (`data` as stored, `size` its uncompressed length); nil when the data
    /// is not what `pack` writes.
    static func unpack(_ data: UnsafeRawBufferPointer, size: Int, into out: inout [UInt8]) -> Bool {
        out.removeAll(keepingCapacity: true)
        guard size >= 0 else { return false }
        if size == data.count {
            out.append(contentsOf: data)
            return true
        }
        out = [UInt8](repeating: 0, count: size)
        var length = uLongf(size)
        let rc = out.withUnsafeMutableBufferPointer { buffer in
            uncompress(buffer.baseAddress, &length, data.baseAddress?.assumingMemoryBound(to: UInt8.self) ?? UnsafePointer(bitPattern: 1),
                       uLong(data.count))
        }
        return rc == Z_OK && Int(length) == size
    }

    /// Registers `raw_slice` and `sqlar_uncompress` on a connection (every connection that reads
    /// original bytes needs them: `TimelineStore` does it for its own).
    public static func registerFunctions(_ db: Database) {
        let handle = db.sqliteConnection
        let flags = SQLITE_UTF8 | SQLITE_DETERMINISTIC
        let sliceCache = Unmanaged.passRetained(BlockCache()).toOpaque()
        sqlite3_create_function_v2(handle, "raw_slice", 4, flags, sliceCache, rawSliceFunction, nil, nil, releaseCache)
        let wholeCache = Unmanaged.passRetained(BlockCache()).toOpaque()
        sqlite3_create_function_v2(handle, "sqlar_uncompress", 2, flags, wholeCache, sqlarUncompressFunction, nil, nil, releaseCache)
    }

    /// The last block a function inflated on one connection, keyed by its stored bytes (not its
    /// id: a rolled-back ingest may reuse an id for other bytes).
    final class BlockCache {
        var stored: [UInt8] = []
        var size = -1
        var bytes: [UInt8] = []
        var valid = false

        /// The inflated bytes of `data`/`size`, or nil if the data is corrupt.
        func inflate(_ data: UnsafeRawBufferPointer, size: Int) -> Bool {
            if valid, size == self.size, data.count == stored.count,
               stored.withUnsafeBytes({ data.count == 0 || memcmp($0.baseAddress!, data.baseAddress!, data.count) == 0 }) {
                return true
            }
            valid = false
            guard RawBlocks.unpack(data, size: size, into: &bytes) else { return false }
            stored.removeAll(keepingCapacity: true)
            stored.append(contentsOf: data)
            self.size = size
            valid = true
            return true
        }
    }
}

private func cache(_ context: OpaquePointer?) -> RawBlocks.BlockCache {
    Unmanaged<RawBlocks.BlockCache>.fromOpaque(sqlite3_user_data(context)!).takeUnretainedValue()
}

private func blob(_ value: OpaquePointer?) -> UnsafeRawBufferPointer {
    let count = Int(sqlite3_value_bytes(value))
    guard let base = sqlite3_value_blob(value), count > 0 else { return UnsafeRawBufferPointer(start: nil, count: 0) }
    return UnsafeRawBufferPointer(start: base, count: count)
}

private let releaseCache: @convention(c) (UnsafeMutableRawPointer?) -> Void = { pointer in
    guard let pointer else { return }
    Unmanaged<RawBlocks.BlockCache>.fromOpaque(pointer).release()
}

/// raw_slice(data, size, offset, length): `length` bytes at `offset` of the block's bytes. NULL
/// data (a row without a block) is NULL; corrupt data or a slice outside the block is an error.
private let rawSliceFunction: @convention(c) (OpaquePointer?, Int32, UnsafeMutablePointer<OpaquePointer?>?) -> Void = { context, _, args in
    guard let args, sqlite3_value_type(args[0]) != SQLITE_NULL else { sqlite3_result_null(context); return }
    let size = Int(sqlite3_value_int64(args[1]))
    let offset = Int(sqlite3_value_int64(args[2])), length = Int(sqlite3_value_int64(args[3]))
    let c = cache(context)
    guard c.inflate(blob(args[0]), size: size) else {
        sqlite3_result_error(context, "raw_block: data does not inflate to its size", -1)
        return
    }
    guard offset >= 0, length >= 0, offset + length <= c.bytes.count else {
        sqlite3_result_error(context, "raw_block: record bytes outside their block", -1)
        return
    }
    c.bytes.withUnsafeBytes { bytes in
        sqlite3_result_blob(context, bytes.baseAddress! + offset, Int32(length), SQLITE_TRANSIENT_PTR)
    }
}

/// sqlar_uncompress(data, size), as the sqlite3 shell defines it: `data` itself when `size` is
/// its length (or not positive), else `data` inflated to `size` bytes.
private let sqlarUncompressFunction: @convention(c) (OpaquePointer?, Int32, UnsafeMutablePointer<OpaquePointer?>?) -> Void = { context, _, args in
    guard let args else { return }
    let size = Int(sqlite3_value_int64(args[1]))
    let data = blob(args[0])
    if size <= 0 || size == data.count {
        sqlite3_result_value(context, args[0])
        return
    }
    let c = cache(context)
    guard c.inflate(data, size: size) else {
        sqlite3_result_error(context, "sqlar_uncompress: data does not inflate to its size", -1)
        return
    }
    c.bytes.withUnsafeBytes { bytes in
        sqlite3_result_blob(context, bytes.baseAddress ?? UnsafeRawPointer(bitPattern: 1), Int32(bytes.count), SQLITE_TRANSIENT_PTR)
    }
}

/// Stores blocks of one source's record bytes as they are written.
final class RawBlockWriter {
    private let insert: Statement
    private let sourceID: Int64

    init(db: Database, sourceID: Int64) throws {
        self.sourceID = sourceID
        insert = try db.makeStatement(sql: "INSERT INTO raw_block (source_id, size, data) VALUES (?, ?, ?)")
    }

    /// Cuts records (in order) into blocks, stores them, and returns each record's place: block
    /// id, offset, length. `withBytes(i, body)` calls `body` with record `i`'s bytes.
    func store(count: Int, withBytes: (Int, (UnsafeRawBufferPointer) -> Void) throws -> Void) throws -> [RawRef] {
        try store(RawBlocks.packAll(count: count, withBytes: withBytes))
    }

    /// Stores blocks packed earlier (on the parsing thread) and returns the records' places.
    func store(_ packed: PackedRaw) throws -> [RawRef] {
        var ids: [Int64] = []
        ids.reserveCapacity(packed.blocks.count)
        for block in packed.blocks { ids.append(try insert(block)) }
        return packed.refs.map { RawRef(block: ids[Int($0.block)], offset: $0.offset, length: $0.length) }
    }

    private func insert(_ block: PackedRaw.Block) throws -> Int64 {
        let h = insert.sqliteStatement
        sqlite3_reset(h)
        sqlite3_bind_int64(h, 1, sourceID)
        sqlite3_bind_int64(h, 2, Int64(block.size))
        let rc = block.data.withUnsafeBytes { data in
            sqlite3_bind_blob(h, 3, data.baseAddress ?? UnsafeRawPointer(bitPattern: 1), Int32(data.count), SQLITE_STATIC_PTR)
            defer { sqlite3_clear_bindings(h) }
            return sqlite3_step(h)
        }
        guard rc == SQLITE_DONE else {
            throw DatabaseError(resultCode: ResultCode(rawValue: rc), message: String(cString: sqlite3_errmsg(sqlite3_db_handle(h))))
        }
        return sqlite3_last_insert_rowid(sqlite3_db_handle(h))
    }
}

/// Records' bytes cut into blocks and compressed, not yet stored: `refs[i].block` indexes `blocks`.
public struct PackedRaw: Sendable {
    public struct Block: Sendable {
        var data: [UInt8]
        var size: Int
    }
    var blocks: [Block] = []
    var refs: [RawRef] = []
}

extension RawBlocks {
    /// Cuts records (in order) into blocks of about `blockBytes` (a longer record alone) and
    /// compresses each.
    static func packAll(count: Int, withBytes: (Int, (UnsafeRawBufferPointer) -> Void) throws -> Void) rethrows -> PackedRaw {
        var packed = PackedRaw()
        packed.refs = [RawRef](repeating: RawRef(block: 0, offset: 0, length: 0), count: count)
        var block: [UInt8] = []
        block.reserveCapacity(blockBytes + 4096)
        var data: [UInt8] = []
        var firstInBlock = 0
        var limit = blockBytes
        func flush(upTo end: Int) {
            guard end > firstInBlock else { return }
            block.withUnsafeBytes { pack($0, into: &data) }
            // A block of one over-long record says nothing about the records around it.
            if end - firstInBlock > 1 { limit = nextBlockBytes(size: block.count, stored: data.count) }
            for i in firstInBlock..<end { packed.refs[i].block = Int64(packed.blocks.count) }
            packed.blocks.append(PackedRaw.Block(data: data, size: block.count))
            block.removeAll(keepingCapacity: true)
            firstInBlock = end
        }
        for i in 0..<count {
            try withBytes(i) { bytes in
                if !block.isEmpty, block.count + bytes.count > limit { flush(upTo: i) }
                packed.refs[i].offset = Int64(block.count)
                packed.refs[i].length = Int64(bytes.count)
                block.append(contentsOf: bytes)
            }
        }
        flush(upTo: count)
        return packed
    }
}

/// Where one record's bytes are: block id, offset and length in the block's bytes.
struct RawRef: Sendable {
    var block: Int64
    var offset: Int64
    var length: Int64
}
