/// The bounds of unpacking image layers, in one place.
public enum ImageLimits {
    /// A pax extended header or a GNU long name/link record, at most (their contents are held
    /// in memory until the entry they describe).
    public static let maximumExtendedHeaderBytes = 1024 * 1024
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
