// Package handlers is Turbo Lane's whole HTTP API: the chi router under
// /api/v1, authentication (API keys, signed anonymous session cookies, the
// admin and worker tokens), per-client rate limiting, request decoding,
// response encoding and the single mapping from errors to status codes and
// {"detail", "code"} bodies. It is the only package that knows chi. It talks
// to the event store, the job view, the file records, the API keys and the
// blob store only through the small interfaces it declares here, and it must
// not decide job state itself (the domain does), know JetStream, SQL or S3,
// or start background goroutines.
package handlers
