package handlers_test

import (
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/convilyn/turbolane/domain"
	"github.com/convilyn/turbolane/handlers"
)

func TestAnonymousSession(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.anon()
	first := c.do("GET", "/api/v1/jobs", nil).status(http.StatusOK)
	ck := c.cookies["tl_session"]
	require.NotNil(t, ck, "the first response sets the session cookie")
	require.True(t, ck.HttpOnly)
	require.Equal(t, http.SameSiteLaxMode, ck.SameSite)
	require.Equal(t, "/", ck.Path)
	require.True(t, ck.Secure, "the public URL is https")
	uid, sig, ok := strings.Cut(ck.Value, ".")
	require.True(t, ok)
	require.True(t, domain.ValidID("anon", uid))
	require.NotEmpty(t, sig)
	require.NotEmpty(t, first.Header().Get("Set-Cookie"))

	// Sticky: the same cookie is the same user, and no new cookie is set.
	id := c.createJob()
	again := c.do("GET", "/api/v1/jobs/"+id, nil).status(http.StatusOK)
	require.Empty(t, again.Header().Get("Set-Cookie"))
	require.Equal(t, uid, again.job()["userId"])

	for name, value := range map[string]string{
		"tampered signature": uid + "." + strings.Repeat("A", len(sig)),
		"someone else's id":  domain.NewID("anon") + "." + sig,
		"no signature":       uid,
		"garbage":            "%%%",
	} {
		t.Run(name, func(t *testing.T) {
			forged := e.anon()
			forged.cookies["tl_session"] = &http.Cookie{Name: "tl_session", Value: value}
			forged.do("GET", "/api/v1/jobs/"+id, nil).fail(404, "job_not_found")
			fresh := forged.cookies["tl_session"]
			require.NotEqual(t, value, fresh.Value, "a bad cookie starts a fresh session")
			require.NotEqual(t, uid, strings.Split(fresh.Value, ".")[0])
		})
	}
}

func TestSessionSecretIsShared(t *testing.T) {
	t.Parallel()
	// Two replicas with the same secret accept each other's cookies.
	a, b := newEnv(t), newEnv(t)
	c := a.anon()
	c.do("GET", "/api/v1/jobs", nil).status(http.StatusOK)
	c.e = b
	res := c.do("GET", "/api/v1/jobs", nil).status(http.StatusOK)
	require.Empty(t, res.Header().Get("Set-Cookie"))
}

func TestBearerAuth(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	alice := e.user("alice@example.com", domain.PlanPro)
	id := alice.createJob()
	j := alice.do("GET", "/api/v1/jobs/"+id, nil).status(http.StatusOK).job()
	require.Equal(t, "alice@example.com", j["userId"])
	require.Empty(t, alice.cookies, "API-key callers get no session cookie")

	bob := e.user("bob", domain.PlanFree)
	bob.do("GET", "/api/v1/jobs/"+id, nil).fail(404, "job_not_found")

	e.bearer("tl_not-a-key").do("GET", "/api/v1/jobs", nil).fail(401, "unauthorized")
	e.anon().do("GET", "/api/v1/jobs", nil, "Authorization", "Basic YWxpY2U6cHc=").fail(401, "unauthorized")
	e.anon().do("GET", "/api/v1/jobs", nil, "Authorization", "Bearer ").fail(401, "unauthorized")
	// The admin and worker tokens are not users.
	e.bearer(adminToken).do("GET", "/api/v1/jobs", nil).fail(403, "forbidden")
	e.bearer(workerToken).do("POST", "/api/v1/jobs", map[string]any{}).fail(403, "forbidden")
}

func TestCreateAPIKey(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	admin := e.bearer(adminToken)
	res := admin.do("POST", "/api/v1/admin/api-keys", map[string]any{"userId": "carol", "plan": "business"}).status(http.StatusCreated)
	conform(t, "ApiKeyResponse", res.Body.Bytes())
	var out struct{ APIKey, UserID, Plan string }
	res.decode(&out)
	require.True(t, strings.HasPrefix(out.APIKey, "tl_"))
	require.Equal(t, "carol", out.UserID)
	require.Equal(t, "business", out.Plan)
	for hash, k := range e.keys.keys {
		require.NotContains(t, hash, out.APIKey, "keys are stored hashed")
		require.Len(t, hash, 64)
		require.Equal(t, domain.PlanBusiness, k.Plan)
	}
	// The key works and carries its plan: 400 KB is over free but within business.
	c := e.bearer(out.APIKey)
	c.do("POST", "/api/v1/upload/presign", map[string]any{"fileName": "a.bin", "fileSize": 400_000}).status(http.StatusOK)

	tests := []struct {
		name   string
		body   any
		status int
		code   string
	}{
		{"bad json", `{"userId":`, 400, "invalid_json"},
		{"userId a number", `{"userId": 7, "plan": "free"}`, 400, "invalid_json"},
		{"missing userId", map[string]any{"plan": "free"}, 422, "validation_error"},
		{"userId with a space", map[string]any{"userId": "a b", "plan": "free"}, 422, "validation_error"},
		{"userId too long", map[string]any{"userId": strings.Repeat("x", 65), "plan": "free"}, 422, "validation_error"},
		{"anon_ userId", map[string]any{"userId": "anon_x", "plan": "free"}, 422, "validation_error"},
		{"anonymous plan", map[string]any{"userId": "dave", "plan": "anonymous"}, 422, "validation_error"},
		{"unknown plan", map[string]any{"userId": "dave", "plan": "gold"}, 422, "validation_error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			admin.do("POST", "/api/v1/admin/api-keys", tt.body).fail(tt.status, tt.code)
		})
	}
	body := map[string]any{"userId": "eve", "plan": "pro"}
	e.anon().do("POST", "/api/v1/admin/api-keys", body).fail(403, "forbidden")
	e.bearer("wrong").do("POST", "/api/v1/admin/api-keys", body).fail(403, "forbidden")
	e.bearer(workerToken).do("POST", "/api/v1/admin/api-keys", body).fail(403, "forbidden")
	e.bearer(out.APIKey).do("POST", "/api/v1/admin/api-keys", body).fail(403, "forbidden")

	t.Run("no admin token configured", func(t *testing.T) {
		e := newEnv(t, func(cfg *handlers.Config, _ *handlers.Deps) { cfg.AdminToken = "" })
		e.bearer("").do("POST", "/api/v1/admin/api-keys", body).fail(403, "forbidden")
		e.bearer(adminToken).do("POST", "/api/v1/admin/api-keys", body).fail(403, "forbidden")
	})
}

func TestRateLimit(t *testing.T) {
	t.Parallel()
	// A limit this low never refills within the test, so the test does not
	// depend on timing.
	e := newEnv(t, func(cfg *handlers.Config, _ *handlers.Deps) { cfg.RateLimit, cfg.RateBurst = 0.001, 3 })
	c := e.anon()
	for range 3 {
		c.do("GET", "/api/v1/jobs", nil).status(http.StatusOK)
	}
	res := c.do("GET", "/api/v1/jobs", nil)
	res.fail(http.StatusTooManyRequests, "rate_limited")
	secs, err := strconv.Atoi(res.Header().Get("Retry-After"))
	require.NoError(t, err)
	require.Greater(t, secs, 0)

	// Another address has its own bucket; dropping the cookie does not help
	// an anonymous client, whose bucket is its address.
	e.anon().do("GET", "/api/v1/jobs", nil).status(http.StatusOK)
	c.cookies = map[string]*http.Cookie{}
	c.do("GET", "/api/v1/processors", nil).fail(http.StatusTooManyRequests, "rate_limited")

	// API-key users are limited per user, wherever they come from.
	u := e.user("frank", domain.PlanFree)
	for range 3 {
		u.do("GET", "/api/v1/jobs", nil).status(http.StatusOK)
	}
	u.remote = "198.51.100.7:1"
	u.do("GET", "/api/v1/jobs", nil).fail(http.StatusTooManyRequests, "rate_limited")

	// Guessing keys is charged to the address too.
	g := e.bearer("tl_guess")
	for range 3 {
		g.do("GET", "/api/v1/jobs", nil).fail(401, "unauthorized")
	}
	g.do("GET", "/api/v1/jobs", nil).fail(http.StatusTooManyRequests, "rate_limited")

	// Health and metrics are never limited.
	for range 5 {
		c.do("GET", "/healthz", nil).status(http.StatusOK)
	}
}

func TestNewChecksDependencies(t *testing.T) {
	t.Parallel()
	_, err := handlers.New(handlers.Config{}, handlers.Deps{})
	require.ErrorIs(t, err, handlers.ErrMissingDependency)
	for _, drop := range []func(*handlers.Deps){
		func(d *handlers.Deps) { d.Commands = nil },
		func(d *handlers.Deps) { d.Blobs = nil },
		func(d *handlers.Deps) { d.EncodeEvent = nil },
	} {
		e := newEnv(t)
		deps := handlers.Deps{Commands: e.store, History: e.store, Jobs: e.view, Files: e.files, Keys: e.keys, Blobs: e.blobs, EncodeEvent: func(domain.Event) any { return nil }}
		drop(&deps)
		_, err := handlers.New(handlers.Config{}, deps)
		require.ErrorIs(t, err, handlers.ErrMissingDependency)
	}
	_, err = handlers.New(handlers.Config{RateLimit: -1}, handlers.Deps{})
	require.Error(t, err)
}

func TestRateLimitBehindProxy(t *testing.T) {
	t.Parallel()
	for _, trust := range []bool{false, true} {
		e := newEnv(t, func(cfg *handlers.Config, _ *handlers.Deps) {
			cfg.RateLimit, cfg.RateBurst, cfg.TrustProxy = 0.001, 1, trust
		})
		proxy := e.anon()
		proxy.do("GET", "/api/v1/processors", nil, "X-Forwarded-For", "203.0.113.1").status(http.StatusOK)
		// A second client behind the same proxy, with a spoofed first entry.
		res := proxy.do("GET", "/api/v1/processors", nil, "X-Forwarded-For", "203.0.113.1, 203.0.113.2")
		if trust {
			res.status(http.StatusOK)
		} else {
			res.fail(http.StatusTooManyRequests, "rate_limited")
		}
	}
}
