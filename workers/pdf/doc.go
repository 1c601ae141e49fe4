// Package pdf is the pdfcpu engine behind pdf_operations: merge, split,
// rotate, extract_pages, encrypt (AES-256), decrypt, watermark, compress and
// info. pdfcpu runs in process as a library; each input is read and
// validated once, checked against the page limit, and the operation works on
// that in-memory model. Lossy compression (image downsampling) is the one
// step that needs ghostscript, which runs through workers/subprocess with
// -dSAFER and the engine memory limit. Inputs that are not PDFs, damaged or
// encrypted with another password fail with unsupported_format,
// corrupt_input or wrong_password; page selections outside the document fail
// with a message naming the page. The engine only reads its inputs and writes
// its outputs inside the work directory it is given.
package pdf
