/// The bounds of unpacking image layers, in one place (the tar reader's own, on extended
/// headers, is `TarReader.maximumExtendedHeaderBytes`).
public enum ImageLimits {
    /// An entry's path, at most (Linux's PATH_MAX).
    public static let maximumPathBytes = 4096
    /// One path component, at most (NAME_MAX).
    public static let maximumNameBytes = 255
    /// Symbolic links followed while resolving one path inside a root filesystem (Linux's own
    /// limit, MAXSYMLINKS, is 40).
    public static let maximumSymbolicLinkFollows = 40
    /// Decompressed bytes produced per call into the tar reader.
    static let decompressedChunkBytes = 256 * 1024
}
