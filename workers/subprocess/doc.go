// Package subprocess runs an engine's external program (ffmpeg, tesseract,
// soffice, pocketsphinx, gs …) the way every engine must: no shell, its own
// process group killed as a whole on timeout or cancellation, an optional
// address-space limit through prlimit, stderr captured (its tail goes into
// the error message) and optionally streamed line by line so that engines can
// parse progress.
//
// It must not know about jobs, storage or error codes: engines map its
// errors to domain failure codes themselves.
package subprocess
