// Package document is the LibreOffice engine behind document_conversion: it
// detects the input's family (Writer, Calc, Impress) from its bytes, refuses
// unknown pairings, encrypted and corrupt documents with their contract codes,
// and converts on a small pool of warm, supervised LibreOffice instances —
// each with its own user profile, macros disabled, restarted after a number of
// conversions, after a failure or when a conversion outlives its context. It
// runs LibreOffice only through workers/subprocess and must not touch blob
// storage, the event store or job state; it reads its inputs and writes its
// outputs inside the work directory it is given.
package document
