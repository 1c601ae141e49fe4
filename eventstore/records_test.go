package eventstore

import (
	"crypto/sha256"
	"encoding/hex"
	"sort"
	"testing"
	"time"

	"github.com/convilyn/turbolane/domain"
	"github.com/stretchr/testify/require"
)

func TestFilesCRUD(t *testing.T) {
	t.Parallel()
	s := newTestStore(t)
	ctx := testCtx(t)
	files := s.Files()

	list, err := files.List(ctx)
	require.NoError(t, err)
	require.Empty(t, list)

	now := time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC)
	a := domain.File{ID: domain.NewFileID(), UserID: "user_1", Name: "a.jpg", Size: 10, MimeType: "image/jpeg", Kind: domain.FileUpload, CreatedAt: now, ExpiresAt: now.Add(24 * time.Hour)}
	b := domain.File{ID: domain.NewFileID(), UserID: "user_2", Name: "b.webp", Size: 5, MimeType: "image/webp", Kind: domain.FileResult, JobID: domain.NewJobID(), Confirmed: true, CreatedAt: now}
	require.NoError(t, files.Put(ctx, a))
	require.NoError(t, files.Put(ctx, b))

	got, err := files.Get(ctx, a.ID)
	require.NoError(t, err)
	require.Equal(t, a, got)

	a.Confirmed = true
	require.NoError(t, files.Put(ctx, a), "put replaces")
	got, err = files.Get(ctx, a.ID)
	require.NoError(t, err)
	require.True(t, got.Confirmed)

	list, err = files.List(ctx)
	require.NoError(t, err)
	sort.Slice(list, func(i, j int) bool { return list[i].Name < list[j].Name })
	require.Equal(t, []domain.File{a, b}, list)

	require.NoError(t, files.Delete(ctx, a.ID))
	require.NoError(t, files.Delete(ctx, a.ID), "deleting twice is fine")
	require.NoError(t, files.Delete(ctx, domain.NewFileID()), "deleting a missing record is fine")
	_, err = files.Get(ctx, a.ID)
	require.ErrorIs(t, err, domain.ErrFileNotFound)
	list, err = files.List(ctx)
	require.NoError(t, err)
	require.Equal(t, []domain.File{b}, list, "deleted records are not listed")

	for _, id := range []string{"", "*", "file_>", "../x", "job_0123456789abcdefghjkmnpqrs"} {
		_, err := files.Get(ctx, id)
		require.ErrorIs(t, err, domain.ErrFileNotFound, id)
		require.ErrorIs(t, files.Put(ctx, domain.File{ID: id}), domain.ErrValidation, id)
	}
}

func TestKeysCRUD(t *testing.T) {
	t.Parallel()
	s := newTestStore(t)
	ctx := testCtx(t)
	keys := s.Keys()
	sum := sha256.Sum256([]byte("tl_secret"))
	hash := hex.EncodeToString(sum[:])

	_, err := keys.Get(ctx, hash)
	require.ErrorIs(t, err, domain.ErrNotFound)

	k := APIKey{Hash: hash, UserID: "user_1", Plan: domain.PlanPro, CreatedAt: time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC)}
	require.NoError(t, keys.Put(ctx, k))
	got, err := keys.Get(ctx, hash)
	require.NoError(t, err)
	require.Equal(t, k, got)

	for _, h := range []string{"", "*", hash[:63], hash + "0", "ABCDEF" + hash[6:]} {
		_, err := keys.Get(ctx, h)
		require.ErrorIs(t, err, domain.ErrNotFound, h)
		require.ErrorIs(t, keys.Put(ctx, APIKey{Hash: h, UserID: "u"}), domain.ErrValidation, h)
	}
	require.ErrorIs(t, keys.Put(ctx, APIKey{Hash: hash}), domain.ErrValidation, "a key needs a user")
}
