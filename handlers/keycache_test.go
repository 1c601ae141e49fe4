package handlers_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/convilyn/turbolane/domain"
	"github.com/convilyn/turbolane/handlers"
)

// countingKeys counts the key store's lookups.
type countingKeys struct {
	handlers.KeyStore
	mu   sync.Mutex
	gets int
}

func (k *countingKeys) Get(ctx context.Context, hash string) (handlers.APIKey, error) {
	k.mu.Lock()
	k.gets++
	k.mu.Unlock()
	return k.KeyStore.Get(ctx, hash)
}

func (k *countingKeys) count() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.gets
}

// clock is a settable Deps.Now.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func TestAPIKeysAreCachedForTheTTL(t *testing.T) {
	t.Parallel()
	var keys *countingKeys
	clk := &clock{now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	e := newEnv(t, func(cfg *handlers.Config, deps *handlers.Deps) {
		keys = &countingKeys{KeyStore: deps.Keys}
		deps.Keys = keys
		deps.Now = clk.Now
		cfg.KeyCacheTTL = time.Minute
	})
	alice := e.user("alice", domain.PlanPro)
	for range 5 {
		alice.do("GET", "/api/v1/jobs", nil).status(http.StatusOK)
	}
	require.Equal(t, 1, keys.count(), "one store lookup, then the cache")

	clk.advance(time.Minute)
	alice.do("GET", "/api/v1/jobs", nil).status(http.StatusOK)
	require.Equal(t, 2, keys.count(), "an expired entry asks the store again")

	// Wrong keys are never cached: each one asks the store.
	before := keys.count()
	for range 3 {
		e.bearer("tl_not_a_key").do("GET", "/api/v1/jobs", nil).fail(401, "unauthorized")
	}
	require.Equal(t, before+3, keys.count())
}

func TestAPIKeyCacheCanBeTurnedOff(t *testing.T) {
	t.Parallel()
	var keys *countingKeys
	e := newEnv(t, func(cfg *handlers.Config, deps *handlers.Deps) {
		keys = &countingKeys{KeyStore: deps.Keys}
		deps.Keys = keys
		cfg.KeyCacheTTL = -1
	})
	bob := e.user("bob", domain.PlanFree)
	for range 3 {
		bob.do("GET", "/api/v1/jobs", nil).status(http.StatusOK)
	}
	require.Equal(t, 3, keys.count())
}

// TestUnknownKeyWorksOnceCreated: a failed lookup leaves nothing behind, so
// a key that another replica creates a moment later works right away.
func TestUnknownKeyWorksOnceCreated(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	const key = "tl_created_elsewhere"
	e.bearer(key).do("GET", "/api/v1/jobs", nil).fail(401, "unauthorized")
	require.NoError(t, e.keys.Put(context.Background(), handlers.APIKey{Hash: sha256Hex(key), UserID: "dave", Plan: domain.PlanFree}))
	e.bearer(key).do("GET", "/api/v1/jobs", nil).status(http.StatusOK)
}

func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}
