// Command analytics is an example analytics consumer of the Turbo Lane event
// feed: it reads created, completed and failed events from JOB_EVENTS
// through watermill (the watermill-nats JetStream subscriber behind a
// watermill Router with the Recoverer and Retry middlewares) and keeps, per
// processor type, the number of completed and failed attempts and the mean
// processing time of completed jobs. It prints them periodically and serves
// them as JSON. It is an example of a consumer outside the service: it only
// reads JOB_EVENTS, through its own ephemeral consumer, and must never touch
// the service's internal streams or consumers.
//
// Usage:
//
//	go run ./examples/analytics -nats-url nats://127.0.0.1:4222 -addr 127.0.0.1:9091
//	curl -s 127.0.0.1:9091/counts
package main
