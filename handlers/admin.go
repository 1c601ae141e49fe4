package handlers

import (
	"encoding/hex"
	"fmt"
	"net/http"
	"regexp"
	"strings"

	"github.com/convilyn/turbolane/domain"
)

// userIDPattern is what an admin may name a user. anon_ is reserved so a key
// can never act as someone's anonymous session.
var userIDPattern = regexp.MustCompile(`^[A-Za-z0-9_.@-]{1,64}$`)

type createKeyRequest struct {
	UserID string `json:"userId"`
	Plan   string `json:"plan"`
}

type createKeyResponse struct {
	APIKey string      `json:"apiKey"`
	UserID string      `json:"userId"`
	Plan   domain.Plan `json:"plan"`
}

// newAPIKey returns a fresh key: tl_ and 32 random bytes in hex.
func newAPIKey() string { return "tl_" + hex.EncodeToString(randomBytes(32)) }

// createAPIKey issues a key; the key itself is returned once and only its
// hash is stored.
func (s *server) createAPIKey(w http.ResponseWriter, r *http.Request) {
	var req createKeyRequest
	if err := decodeJSON(w, r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	if !userIDPattern.MatchString(req.UserID) {
		s.writeError(w, r, domain.Validationf("userId must be 1 to 64 characters of A-Z, a-z, 0-9, _ . @ -"))
		return
	}
	if strings.HasPrefix(req.UserID, "anon_") {
		s.writeError(w, r, domain.Validationf("userId must not start with anon_, which is reserved for anonymous sessions"))
		return
	}
	plan, err := domain.ParsePlan(req.Plan)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	key := newAPIKey()
	if err := s.deps.Keys.Put(r.Context(), APIKey{Hash: hashKey(key), UserID: req.UserID, Plan: plan, CreatedAt: s.now().UTC()}); err != nil {
		s.writeError(w, r, fmt.Errorf("store api key for %s: %w", req.UserID, err))
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusCreated, createKeyResponse{APIKey: key, UserID: req.UserID, Plan: plan})
}
