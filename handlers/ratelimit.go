package handlers

import (
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/convilyn/turbolane/domain"
)

// idleLimiter is how long a client's bucket is kept after its last request;
// by then it has refilled anyway, so dropping it changes nothing.
const idleLimiter = 10 * time.Minute

// rateLimiter keeps one token bucket per client. It sweeps idle buckets on
// the request path instead of in a goroutine, so the package starts none.
type rateLimiter struct {
	limit      rate.Limit
	burst      int
	trustProxy bool

	mu        sync.Mutex
	clients   map[string]*clientLimiter
	lastSweep time.Time
}

type clientLimiter struct {
	lim  *rate.Limiter
	seen time.Time
}

func newRateLimiter(rps float64, burst int, trustProxy bool) *rateLimiter {
	return &rateLimiter{limit: rate.Limit(rps), burst: burst, trustProxy: trustProxy, clients: map[string]*clientLimiter{}, lastSweep: time.Now()}
}

// allow charges one request to key and returns a rate_limited error carrying
// the wait when the bucket is empty. A zero limit turns limiting off.
func (l *rateLimiter) allow(key string) error {
	if l == nil || l.limit <= 0 {
		return nil
	}
	now := time.Now()
	l.mu.Lock()
	if now.Sub(l.lastSweep) > idleLimiter {
		for k, c := range l.clients {
			if now.Sub(c.seen) > idleLimiter {
				delete(l.clients, k)
			}
		}
		l.lastSweep = now
	}
	c, ok := l.clients[key]
	if !ok {
		c = &clientLimiter{lim: rate.NewLimiter(l.limit, l.burst)}
		l.clients[key] = c
	}
	c.seen = now
	l.mu.Unlock()

	if c.lim.AllowN(now, 1) {
		return nil
	}
	res := c.lim.ReserveN(now, 1)
	wait := res.DelayFrom(now)
	res.CancelAt(now)
	if wait <= 0 {
		wait = time.Second
	}
	return &retryAfter{err: domain.ErrRateLimited, after: wait}
}

// clientIP is the remote address without the port, or with TrustProxy the
// address the proxy in front reported last in X-Forwarded-For.
func (l *rateLimiter) clientIP(r *http.Request) string {
	if l.trustProxy {
		if xff := r.Header.Values("X-Forwarded-For"); len(xff) > 0 {
			parts := strings.Split(xff[len(xff)-1], ",")
			if ip := strings.TrimSpace(parts[len(parts)-1]); ip != "" {
				return "ip:" + ip
			}
		}
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return "ip:" + r.RemoteAddr
	}
	return "ip:" + host
}

// limitByIP rate-limits endpoints that need no identity.
func (s *server) limitByIP(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := s.limits.allow(s.limits.clientIP(r)); err != nil {
			s.writeError(w, r, err)
			return
		}
		next.ServeHTTP(w, r)
	})
}
