package blobstore

// WithoutXattr makes d behave as on a file system without user extended
// attributes: every Put writes a sidecar.
func WithoutXattr(d *Disk) { d.noXattr.Store(true) }

// UsesXattr reports whether d still puts content types in attributes.
func UsesXattr(d *Disk) bool { return !d.noXattr.Load() }
