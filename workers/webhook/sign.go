package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Headers of every delivery.
const (
	HeaderID        = "Idempotency-Key"      // the event id; the same on every redelivery
	HeaderTimestamp = "Turbolane-Timestamp"  // Unix seconds when this attempt was signed
	HeaderSignature = "Turbolane-Signature"  // "v1=" + hex HMAC-SHA256(secret, timestamp + "." + body)
	HeaderEventType = "Turbolane-Event-Type" // the CloudEvent type, for routing without parsing
	ContentType     = "application/cloudevents+json"
)

// Errors of Verify.
var (
	ErrBadSignature = errors.New("webhook signature does not match")
	ErrStale        = errors.New("webhook timestamp outside the tolerance")
)

// Sign returns the Turbolane-Signature value for body sent at timestamp ts
// (Unix seconds): "v1=" followed by the lower-case hex HMAC-SHA256 of
// "<ts>.<body>" keyed with secret.
func Sign(secret []byte, ts int64, body []byte) string {
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(strconv.FormatInt(ts, 10)))
	mac.Write([]byte{'.'})
	mac.Write(body)
	return "v1=" + hex.EncodeToString(mac.Sum(nil))
}

// Verify checks a delivery on the receiving side: signature is the
// Turbolane-Signature header, timestamp the Turbolane-Timestamp header.
// It returns ErrStale when the timestamp is further than tolerance from now
// (replay protection; 0 skips the check) and ErrBadSignature when no v1
// signature in the header matches (a header may carry several, comma
// separated, while a secret is rotated).
func Verify(secret []byte, signature, timestamp string, body []byte, tolerance time.Duration, now time.Time) error {
	ts, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil {
		return fmt.Errorf("verify webhook: timestamp %q: %w", timestamp, ErrBadSignature)
	}
	if tolerance > 0 {
		if d := now.Sub(time.Unix(ts, 0)); d > tolerance || d < -tolerance {
			return fmt.Errorf("verify webhook: signed %s ago: %w", d.Round(time.Second), ErrStale)
		}
	}
	want := Sign(secret, ts, body)
	for _, s := range strings.Split(signature, ",") {
		if hmac.Equal([]byte(strings.TrimSpace(s)), []byte(want)) {
			return nil
		}
	}
	return fmt.Errorf("verify webhook: %w", ErrBadSignature)
}
