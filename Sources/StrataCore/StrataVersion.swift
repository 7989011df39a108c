/// The version of this Strata build, reported by `strata version` and by every service.
public enum StrataVersion {
    public static let current = "0.1.0"
}
