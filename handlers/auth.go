package handlers

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/convilyn/turbolane/domain"
)

// sessionCookie is the anonymous session cookie of the contract.
const sessionCookie = "tl_session"

// sessionMaxAge keeps an anonymous session for a year: the cookie is the
// only key to the anonymous user's jobs.
const sessionMaxAge = 365 * 24 * 60 * 60

// identity is who a request acts for. Admin and worker tokens are not users:
// they have no UserID and may not use the user endpoints.
type identity struct {
	UserID    string
	Plan      domain.Plan
	Anonymous bool
	Admin     bool
	Worker    bool
}

type identityKey struct{}

func identityFrom(ctx context.Context) identity {
	id, _ := ctx.Value(identityKey{}).(identity)
	return id
}

// user returns the calling user, or errNotUser for the admin and worker tokens.
func user(r *http.Request) (identity, error) {
	id := identityFrom(r.Context())
	if id.UserID == "" {
		return id, errNotUser
	}
	return id, nil
}

// bearer returns the token of an Authorization header and whether there was
// a header at all.
func bearer(r *http.Request) (token string, present bool) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return "", false
	}
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", true
	}
	return strings.TrimSpace(tok), true
}

// tokenIs compares a presented token with a configured one in constant time;
// an unconfigured token never matches.
func tokenIs(presented, configured string) bool {
	if configured == "" || presented == "" {
		return false
	}
	a, b := sha256.Sum256([]byte(presented)), sha256.Sum256([]byte(configured))
	return subtle.ConstantTimeCompare(a[:], b[:]) == 1
}

// hashKey is how API keys are stored and looked up.
func hashKey(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:])
}

// authenticate resolves the caller: an API key, the admin or worker token,
// or an anonymous session (issuing a cookie when there is no valid one).
// The rate limit is charged to the user when known, otherwise to the remote
// address, and a wrong bearer token is charged before it is refused so that
// guessing keys is as slow as any other abuse.
func (s *server) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var id identity
		tok, present := bearer(r)
		switch {
		case present && tokenIs(tok, s.cfg.AdminToken):
			id = identity{Admin: true}
		case present && tokenIs(tok, s.cfg.WorkerToken):
			id = identity{Worker: true}
		case present:
			key, err := s.lookupKey(r.Context(), tok)
			if err != nil {
				if lerr := s.limits.allow(s.limits.clientIP(r)); lerr != nil {
					s.writeError(w, r, lerr)
					return
				}
				s.writeError(w, r, err)
				return
			}
			id = identity{UserID: key.UserID, Plan: key.Plan}
		default:
			id = s.session(w, r)
		}
		limitKey := s.limits.clientIP(r)
		if id.UserID != "" && !id.Anonymous {
			limitKey = "user:" + id.UserID
		}
		if err := s.limits.allow(limitKey); err != nil {
			s.writeError(w, r, err)
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), identityKey{}, id)))
	})
}

func (s *server) lookupKey(ctx context.Context, tok string) (APIKey, error) {
	if tok == "" {
		return APIKey{}, domain.ErrUnauthorized.WithMessage("the Authorization header must be \"Bearer <api key>\"")
	}
	key, err := s.keys.Get(ctx, hashKey(tok))
	switch {
	case errors.Is(err, domain.ErrNotFound) || (err == nil && key.UserID == ""):
		return APIKey{}, domain.ErrUnauthorized
	case err != nil:
		return APIKey{}, fmt.Errorf("look up api key: %w", err)
	}
	return key, nil
}

// session returns the anonymous identity of the request's cookie, or starts
// a new session and sets its cookie on the response.
func (s *server) session(w http.ResponseWriter, r *http.Request) identity {
	if c, err := r.Cookie(sessionCookie); err == nil {
		if uid, ok := s.verifySession(c.Value); ok {
			return identity{UserID: uid, Plan: domain.PlanAnonymous, Anonymous: true}
		}
	}
	uid := domain.NewID("anon")
	http.SetCookie(w, &http.Cookie{
		Name:     sessionCookie,
		Value:    uid + "." + s.signSession(uid),
		Path:     "/",
		MaxAge:   sessionMaxAge,
		HttpOnly: true,
		Secure:   strings.HasPrefix(s.cfg.PublicURL, "https://") || r.TLS != nil,
		SameSite: http.SameSiteLaxMode,
	})
	return identity{UserID: uid, Plan: domain.PlanAnonymous, Anonymous: true}
}

func (s *server) signSession(uid string) string {
	m := hmac.New(sha256.New, s.cfg.SessionSecret)
	m.Write([]byte("tl_session:" + uid))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// verifySession checks a cookie value anon_<id>.<hmac>.
func (s *server) verifySession(v string) (string, bool) {
	uid, sig, ok := strings.Cut(v, ".")
	if !ok || !domain.ValidID("anon", uid) {
		return "", false
	}
	want := s.signSession(uid)
	return uid, hmac.Equal([]byte(sig), []byte(want))
}

// requireAdmin lets only the admin token through; without a configured admin
// token the admin API is off (403 for everyone).
func (s *server) requireAdmin(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok, _ := bearer(r)
		if !tokenIs(tok, s.cfg.AdminToken) {
			if err := s.limits.allow(s.limits.clientIP(r)); err != nil {
				s.writeError(w, r, err)
				return
			}
			s.writeError(w, r, domain.ErrForbidden.WithMessage("this endpoint needs the admin token"))
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), identityKey{}, identity{Admin: true})))
	})
}

// requireWorker lets only the worker token through. Workers are not rate
// limited: progress reports are already coalesced at the source.
func (s *server) requireWorker(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok, _ := bearer(r)
		if !tokenIs(tok, s.cfg.WorkerToken) {
			if err := s.limits.allow(s.limits.clientIP(r)); err != nil {
				s.writeError(w, r, err)
				return
			}
			s.writeError(w, r, domain.ErrForbidden.WithMessage("this endpoint needs the worker token"))
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), identityKey{}, identity{Worker: true})))
	})
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on supported platforms
	return b
}
