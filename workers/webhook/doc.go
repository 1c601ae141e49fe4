// Package webhook forwards job events to an HTTP endpoint for consumers that
// do not speak NATS. A Forwarder follows a durable consumer on JOB_EVENTS
// (so nothing is skipped across restarts), POSTs each event as a structured
// CloudEvents JSON document signed with HMAC-SHA256, retries with capped
// exponential backoff and jitter, and then hands the event back to JetStream
// for a later redelivery: delivery is at least once and an event is never
// dropped, with the event id as the idempotency key. It must not change job
// state or read anything but the event feed; Verify is the receiver's side of
// the signature.
package webhook
