// Package image is the libvips engine behind image_conversion and
// image_compression: it sniffs the input from its bytes, refuses images whose
// header claims more pixels than the limit before any pixel is decoded, loads
// with fail-on-error so a truncated file is corrupt_input rather than a grey
// picture, resizes, and writes jpg, png, webp, gif, tiff, bmp or avif. It runs
// libvips in process through govips and must not touch blob storage, the
// event store or job state; it only reads its inputs and writes its outputs
// inside the work directory it is given.
package image
