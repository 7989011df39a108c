import StrataCompute

/// One layer of an image, as its manifest names it: the digest of its (compressed) blob and
/// the media type that says how the tar inside is compressed (`OCIMediaType.layerCompression`).
/// Both are kept as text, checked when the layer is unpacked or its cache key made. The same
/// type a task's launch order carries.
public typealias ImageLayer = TaskImage.Layer
