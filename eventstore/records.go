package eventstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/convilyn/turbolane/domain"
	"github.com/nats-io/nats.go/jetstream"
)

// Files stores domain.File records in the KV bucket TURBOLANE_FILES, keyed by
// file id, so that every API replica and worker sees the same records. It is
// safe for concurrent use.
type Files struct {
	kv     jetstream.KeyValue
	leader leaderKV
}

// Put creates or replaces the record of f. The id must be a file_… id.
func (f *Files) Put(ctx context.Context, file domain.File) error {
	if !domain.ValidID("file", file.ID) {
		return fmt.Errorf("put file record: %w", domain.Validationf("%q is not a valid file id", file.ID))
	}
	b, err := json.Marshal(file)
	if err != nil {
		return fmt.Errorf("encode file record %s: %w", file.ID, err)
	}
	if _, err := f.kv.Put(ctx, file.ID, b); err != nil {
		return fmt.Errorf("put file record %s: %w", file.ID, noAnswer(err))
	}
	return nil
}

// Get returns the record of id, or an error matching domain.ErrFileNotFound
// when there is none (including when id is not a file id at all).
func (f *Files) Get(ctx context.Context, id string) (domain.File, error) {
	if !domain.ValidID("file", id) {
		return domain.File{}, domain.ErrFileNotFound
	}
	v, err := f.leader.get(ctx, f.kv, id)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return domain.File{}, domain.ErrFileNotFound
	}
	if err != nil {
		return domain.File{}, fmt.Errorf("get file record %s: %w", id, noAnswer(err))
	}
	var file domain.File
	if err := json.Unmarshal(v, &file); err != nil {
		return domain.File{}, fmt.Errorf("decode file record %s: %w", id, err)
	}
	return file, nil
}

// Delete removes the record of id; a missing record is not an error.
func (f *Files) Delete(ctx context.Context, id string) error {
	if !domain.ValidID("file", id) {
		return nil
	}
	if err := f.kv.Delete(ctx, id); err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
		return fmt.Errorf("delete file record %s: %w", id, noAnswer(err))
	}
	return nil
}

// List returns every file record, for the retention sweeper. It reads the
// bucket with one watcher instead of one request per key.
func (f *Files) List(ctx context.Context) ([]domain.File, error) {
	w, err := f.kv.WatchAll(ctx, jetstream.IgnoreDeletes())
	if err != nil {
		return nil, fmt.Errorf("list file records: %w", err)
	}
	defer func() { _ = w.Stop() }()
	out := []domain.File{}
	for {
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("list file records: %w", ctx.Err())
		case e, ok := <-w.Updates():
			if !ok {
				return nil, errors.New("list file records: watcher closed")
			}
			if e == nil { // every current value has been delivered
				return out, nil
			}
			var file domain.File
			if err := json.Unmarshal(e.Value(), &file); err != nil {
				return nil, fmt.Errorf("decode file record %s: %w", e.Key(), err)
			}
			out = append(out, file)
		}
	}
}

// APIKey is a stored API key. Only the sha256 hex of the key is kept.
type APIKey struct {
	Hash      string      `json:"hash"`
	UserID    string      `json:"userId"`
	Plan      domain.Plan `json:"plan"`
	CreatedAt time.Time   `json:"createdAt"`
}

// Keys stores API keys in the KV bucket TURBOLANE_API_KEYS, keyed by the
// sha256 hex of the key. It is safe for concurrent use.
type Keys struct {
	kv     jetstream.KeyValue
	leader leaderKV
}

func validHash(h string) bool {
	if len(h) != 64 {
		return false
	}
	for _, c := range h {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// Put stores k under k.Hash, which must be 64 lower-case hex digits.
func (k *Keys) Put(ctx context.Context, key APIKey) error {
	if !validHash(key.Hash) {
		return fmt.Errorf("put api key: %w", domain.Validationf("the key hash must be 64 lower-case hex digits"))
	}
	if key.UserID == "" {
		return fmt.Errorf("put api key: %w", domain.Validationf("an api key needs a user id"))
	}
	b, err := json.Marshal(key)
	if err != nil {
		return fmt.Errorf("encode api key: %w", err)
	}
	if _, err := k.kv.Put(ctx, key.Hash, b); err != nil {
		return fmt.Errorf("put api key: %w", noAnswer(err))
	}
	return nil
}

// Get returns the key stored under hash, or an error matching
// domain.ErrNotFound.
func (k *Keys) Get(ctx context.Context, hash string) (APIKey, error) {
	if !validHash(hash) {
		return APIKey{}, domain.ErrNotFound
	}
	v, err := k.leader.get(ctx, k.kv, hash)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return APIKey{}, domain.ErrNotFound
	}
	if err != nil {
		return APIKey{}, fmt.Errorf("get api key: %w", noAnswer(err))
	}
	var key APIKey
	if err := json.Unmarshal(v, &key); err != nil {
		return APIKey{}, fmt.Errorf("decode api key: %w", err)
	}
	return key, nil
}

// leaderKV reads a bucket's key from the stream leader when the KV get (a
// direct get any replica may answer) found nothing, so that a record written
// through one API replica is found at once through another.
type leaderKV struct {
	s      *Store
	bucket string
}

func (l leaderKV) get(ctx context.Context, kv jetstream.KeyValue, key string) ([]byte, error) {
	e, err := kv.Get(ctx, key)
	if err == nil {
		return e.Value(), nil
	}
	if !errors.Is(err, jetstream.ErrKeyNotFound) || l.s == nil {
		return nil, err
	}
	sm, ok, err := l.s.leaderGet(ctx, "KV_"+l.bucket, directGetRequest{LastFor: "$KV." + l.bucket + "." + key})
	if err != nil {
		return nil, err
	}
	if !ok || sm.op == "DEL" || sm.op == "PURGE" {
		return nil, jetstream.ErrKeyNotFound
	}
	return sm.data, nil
}
