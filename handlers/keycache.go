package handlers

import (
	"context"
	"sync"
	"time"
)

// DefaultKeyCacheTTL is how long a looked-up API key is trusted before the
// key store is asked again.
const DefaultKeyCacheTTL = 30 * time.Second

// maxCachedKeys bounds the key cache; a full cache first drops expired
// entries and, if that is not enough, starts over.
const maxCachedKeys = 10_000

// keyCache remembers API keys the store has confirmed, for a short TTL, so
// that a client polling GET /jobs/{id} does not cost a key-store round trip
// (a NATS KV get) per request; that round trip was a fifth of the polling
// endpoint's CPU (docs/benchmarks.md). Only found keys are cached: a key
// created on another replica works there at once, and a wrong key is always
// checked against the store. The cache is keyed by the key's hash, like the
// store, and holds no secret.
type keyCache struct {
	store KeyStore
	ttl   time.Duration // <= 0: no caching
	now   func() time.Time

	mu   sync.Mutex
	keys map[string]cachedKey
}

type cachedKey struct {
	key     APIKey
	expires time.Time
}

func newKeyCache(store KeyStore, ttl time.Duration, now func() time.Time) *keyCache {
	return &keyCache{store: store, ttl: ttl, now: now, keys: map[string]cachedKey{}}
}

// Get returns the key with this hash, from the cache while it is fresh.
// Errors are the store's.
func (c *keyCache) Get(ctx context.Context, hash string) (APIKey, error) {
	if c.ttl <= 0 {
		return c.store.Get(ctx, hash)
	}
	now := c.now()
	c.mu.Lock()
	k, ok := c.keys[hash]
	c.mu.Unlock()
	if ok && now.Before(k.expires) {
		return k.key, nil
	}
	key, err := c.store.Get(ctx, hash)
	if err != nil || key.UserID == "" {
		return key, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.keys[hash]; !ok && len(c.keys) >= maxCachedKeys {
		for h, k := range c.keys {
			if !now.Before(k.expires) {
				delete(c.keys, h)
			}
		}
		if len(c.keys) >= maxCachedKeys {
			clear(c.keys)
		}
	}
	c.keys[hash] = cachedKey{key: key, expires: now.Add(c.ttl)}
	return key, nil
}
