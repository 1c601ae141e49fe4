//go:build linux

package blobstore

import (
	"errors"
	"syscall"
)

// contentTypeAttr is the extended attribute that holds an object's content
// type on file systems that have user attributes (ext4, xfs, btrfs, tmpfs).
const contentTypeAttr = "user.turbolane.content_type"

// setContentTypeAttr stores ct as an attribute of the file at path. It
// returns errNoXattr when the file system has no user attributes.
func setContentTypeAttr(path, ct string) error {
	err := syscall.Setxattr(path, contentTypeAttr, []byte(ct), 0)
	if errors.Is(err, syscall.ENOTSUP) || errors.Is(err, syscall.EOPNOTSUPP) || errors.Is(err, syscall.EPERM) {
		return errNoXattr
	}
	return err
}

// contentTypeAttrOf reads the attribute that setContentTypeAttr wrote; ok is
// false when the file has none.
func contentTypeAttrOf(path string) (ct string, ok bool) {
	var buf [256]byte
	n, err := syscall.Getxattr(path, contentTypeAttr, buf[:])
	if err == nil && n > 0 {
		return string(buf[:n]), true
	}
	if errors.Is(err, syscall.ERANGE) {
		// Longer than buf: ask for the size, then read it all.
		if n, err = syscall.Getxattr(path, contentTypeAttr, nil); err == nil && n > 0 {
			b := make([]byte, n)
			if n, err = syscall.Getxattr(path, contentTypeAttr, b); err == nil && n > 0 {
				return string(b[:n]), true
			}
		}
	}
	return "", false
}
