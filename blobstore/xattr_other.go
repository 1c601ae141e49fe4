//go:build !linux

package blobstore

func setContentTypeAttr(path, ct string) error { return errNoXattr }

func contentTypeAttrOf(path string) (string, bool) { return "", false }
