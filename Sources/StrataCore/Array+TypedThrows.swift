/// `withUnsafeBytes` for byte arrays, keeping the closure's typed error (the standard library's
/// versions rethrow `any Error`).
extension Array where Element == UInt8 {
    @inlinable @discardableResult
    public func withBytes<Result, Failure: Error>(
        _ body: (UnsafeRawBufferPointer) throws(Failure) -> Result
    ) throws(Failure) -> Result {
        try withUnsafeBytes { bytes in
            Swift.Result { () throws(Failure) -> Result in try body(bytes) }
        }.get()
    }

    @inlinable @discardableResult
    public mutating func withMutableBytes<Result, Failure: Error>(
        _ body: (UnsafeMutableRawBufferPointer) throws(Failure) -> Result
    ) throws(Failure) -> Result {
        try withUnsafeMutableBytes { bytes in
            Swift.Result { () throws(Failure) -> Result in try body(bytes) }
        }.get()
    }
}
