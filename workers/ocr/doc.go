// Package ocr is the tesseract engine behind ocr_processing. Images (png,
// jpeg, tiff, bmp, webp, gif) are sniffed from their bytes and their header
// dimensions checked against the pixel limit before anything decodes them;
// gif and webp are converted to png with the vips CLI first. PDFs are checked
// with pdfcpu (page count, encryption, page sizes) and rasterized one page at
// a time with pdftoppm, so that disk and memory stay bounded by one page.
// Each page goes through tesseract on its own, which gives per-page progress,
// and the per-page results are joined: txt concatenated, hOCR pages merged
// into one XHTML document, searchable PDFs merged with pdfcpu, and TSV parsed
// into JSON words with boxes and confidence. Every program runs through
// workers/subprocess (no shell, own process group, the engine memory limit).
package ocr
