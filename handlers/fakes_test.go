package handlers_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"sort"
	"sync"
	"time"

	"github.com/convilyn/turbolane/blobstore"
	"github.com/convilyn/turbolane/domain"
	"github.com/convilyn/turbolane/handlers"
)

// The fakes below stand in for the handlers' collaborators (the event store,
// the job view, the KV buckets, the blob store). They run the real domain:
// Execute decides and folds exactly as eventstore.Store does. The lead's
// end-to-end tests run the real adapters.

// fakeStore is an in-memory event log: Commands and History.
type fakeStore struct {
	mu     sync.Mutex
	events map[string][]domain.Event
	seq    uint64
	fail   error // when set, Execute fails with it
}

var (
	_ handlers.Commands = (*fakeStore)(nil)
	_ handlers.History  = (*fakeStore)(nil)
)

func newFakeStore() *fakeStore { return &fakeStore{events: map[string][]domain.Event{}} }

func (s *fakeStore) Execute(ctx context.Context, jobID string, cmd domain.Command) (domain.Job, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail != nil {
		return domain.Job{}, s.fail
	}
	j := domain.Fold(s.events[jobID])
	evs, err := domain.Decide(j, cmd, time.Now())
	if err != nil {
		return domain.Job{}, err
	}
	for _, ev := range evs {
		s.seq++
		ev.Sequence = s.seq
		s.events[jobID] = append(s.events[jobID], ev)
	}
	return domain.Fold(s.events[jobID]), nil
}

func (s *fakeStore) Load(ctx context.Context, jobID string) ([]domain.Event, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]domain.Event{}, s.events[jobID]...), nil
}

func (s *fakeStore) job(id string) domain.Job {
	evs, _ := s.Load(context.Background(), id)
	return domain.Fold(evs)
}

func (s *fakeStore) jobIDs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := make([]string, 0, len(s.events))
	for id := range s.events {
		ids = append(ids, id)
	}
	return ids
}

func (s *fakeStore) last() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.seq
}

// fakeView is a job view that is always caught up with fakeStore, except for
// jobs marked hidden (a lagging view or another replica's write).
type fakeView struct {
	store     *fakeStore
	mu        sync.Mutex
	hidden    map[string]bool
	estimates map[domain.ProcessorType]float64
	waited    []uint64
}

var _ handlers.JobReader = (*fakeView)(nil)

func (v *fakeView) isHidden(id string) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.hidden[id]
}

func (v *fakeView) hide(id string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.hidden[id] = true
}

func (v *fakeView) Get(ctx context.Context, id string) (domain.Job, error) {
	j := v.store.job(id)
	if !j.Exists() || v.isHidden(id) {
		return domain.Job{}, domain.ErrJobNotFound
	}
	return j, nil
}

func (v *fakeView) List(ctx context.Context, q domain.ListQuery) ([]domain.Job, int, error) {
	var all []domain.Job
	for _, id := range v.store.jobIDs() {
		j := v.store.job(id)
		if !j.OwnedBy(q.UserID) || (q.Status != "" && j.Status != q.Status) || (q.ProcessorType != "" && j.ProcessorType != q.ProcessorType) {
			continue
		}
		all = append(all, j)
	}
	sort.Slice(all, func(a, b int) bool {
		x, y := all[a], all[b]
		less := x.CreatedAt.Before(y.CreatedAt) || (x.CreatedAt.Equal(y.CreatedAt) && x.ID < y.ID)
		switch q.SortBy {
		case "updatedAt":
			less = x.UpdatedAt.Before(y.UpdatedAt) || (x.UpdatedAt.Equal(y.UpdatedAt) && x.ID < y.ID)
		case "status":
			less = x.Status < y.Status || (x.Status == y.Status && x.ID < y.ID)
		}
		if q.Descending {
			return !less
		}
		return less
	})
	from := min((q.Page-1)*q.Limit, len(all))
	to := min(from+q.Limit, len(all))
	return all[from:to], len(all), nil
}

func (v *fakeView) Stats(ctx context.Context, id string) (domain.JobStats, error) {
	j, err := v.Get(ctx, id)
	if err != nil {
		return domain.JobStats{}, err
	}
	return domain.StatsOf(j), nil
}

func (v *fakeView) WaitFor(ctx context.Context, seq uint64) error {
	v.mu.Lock()
	v.waited = append(v.waited, seq)
	v.mu.Unlock()
	if seq <= v.store.last() {
		return nil
	}
	<-ctx.Done()
	return ctx.Err()
}

func (v *fakeView) EstimatedDuration(ctx context.Context, t domain.ProcessorType) (*float64, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if e, ok := v.estimates[t]; ok {
		return &e, nil
	}
	return nil, nil
}

// fakeFiles is the file-record bucket.
type fakeFiles struct {
	mu    sync.Mutex
	files map[string]domain.File
}

var _ handlers.FileRecords = (*fakeFiles)(nil)

func (f *fakeFiles) Put(ctx context.Context, file domain.File) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.files[file.ID] = file
	return nil
}

func (f *fakeFiles) Get(ctx context.Context, id string) (domain.File, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	file, ok := f.files[id]
	if !ok {
		return domain.File{}, domain.ErrFileNotFound
	}
	return file, nil
}

func (f *fakeFiles) Delete(ctx context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.files, id)
	return nil
}

func (f *fakeFiles) has(id string) bool {
	_, err := f.Get(context.Background(), id)
	return err == nil
}

// fakeKeys is the API-key bucket.
type fakeKeys struct {
	mu   sync.Mutex
	keys map[string]handlers.APIKey
}

var _ handlers.KeyStore = (*fakeKeys)(nil)

func (k *fakeKeys) Put(ctx context.Context, key handlers.APIKey) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.keys[key.Hash] = key
	return nil
}

func (k *fakeKeys) Get(ctx context.Context, hash string) (handlers.APIKey, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	key, ok := k.keys[hash]
	if !ok {
		return handlers.APIKey{}, domain.ErrNotFound
	}
	return key, nil
}

// fakeBlobs is an in-memory blob store. With noPresignGet it hands out no
// download URLs, like a store that can only stream.
type fakeBlobs struct {
	mu           sync.Mutex
	objects      map[string]fakeObject
	noPresignGet bool
}

type fakeObject struct {
	data []byte
	ct   string
}

var _ handlers.Blobs = (*fakeBlobs)(nil)

func (b *fakeBlobs) Put(ctx context.Context, key string, r io.Reader, size int64, ct string) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return err // like the real stores: a failed Put keeps nothing
	}
	if size >= 0 && int64(len(data)) != size {
		return blobstore.ErrSizeMismatch
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.objects[key] = fakeObject{data: data, ct: ct}
	return nil
}

func (b *fakeBlobs) Get(ctx context.Context, key string) (io.ReadCloser, blobstore.Info, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	o, ok := b.objects[key]
	if !ok {
		return nil, blobstore.Info{}, blobstore.ErrNotFound
	}
	return io.NopCloser(bytes.NewReader(o.data)), blobstore.Info{Size: int64(len(o.data)), ContentType: o.ct}, nil
}

func (b *fakeBlobs) Stat(ctx context.Context, key string) (blobstore.Info, error) {
	rc, info, err := b.Get(ctx, key)
	if err == nil {
		rc.Close()
	}
	return info, err
}

func (b *fakeBlobs) Delete(ctx context.Context, key string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.objects, key)
	return nil
}

func (b *fakeBlobs) PresignPut(ctx context.Context, key, ct string, maxSize int64, ttl time.Duration) (blobstore.Presigned, error) {
	if maxSize <= 0 {
		return blobstore.Presigned{}, errors.New("max size must be positive")
	}
	return blobstore.Presigned{
		URL: "https://blobs.test/" + key + "?op=put", Method: "PUT",
		Headers: map[string]string{"Content-Type": ct}, ExpiresAt: time.Now().Add(ttl),
	}, nil
}

func (b *fakeBlobs) PresignGet(ctx context.Context, key, fileName string, ttl time.Duration) (string, error) {
	if b.noPresignGet {
		return "", nil
	}
	return "https://blobs.test/" + key + "?op=get", nil
}

func (b *fakeBlobs) has(key string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	_, ok := b.objects[key]
	return ok
}

func (b *fakeBlobs) put(key string, data []byte, ct string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.objects[key] = fakeObject{data: data, ct: ct}
}
