package blobstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// errNoXattr means the file system does not store user extended attributes.
var errNoXattr = errors.New("no user extended attributes on this file system")

var _ Store = (*Disk)(nil)

// Disk is the embedded store: objects are files in a local directory and
// presigned URLs are HMAC-SHA256 signed links that Handler serves. Layout
// under dir: objects/<key> holds the bytes, tmp/ the uploads in flight (same
// file system, so the final rename is atomic). The content type is an
// extended attribute of the object's file (user.turbolane.content_type),
// which the file's own fsync makes durable; on a file system without user
// attributes it goes to a sidecar, meta/<key>.json, as it always did before.
// Readers take the attribute, else the sidecar, else DefaultContentType.
type Disk struct {
	objects, meta, tmp string
	baseURL            string
	secret             []byte
	now                func() time.Time

	// noXattr is set once a Put finds that the file system has no user
	// attributes; from then on every Put writes a sidecar.
	noXattr atomic.Bool

	// locks keep an object and its sidecar consistent for readers while a
	// Put renames both into place or a Delete removes them; striped by key
	// so unrelated keys rarely contend.
	locks [64]sync.Mutex
}

// DiskOption configures a Disk.
type DiskOption func(*Disk) error

// WithClock makes the Disk read time from now instead of time.Now, for
// presigned URL expiry. Tests use it to produce expired links.
func WithClock(now func() time.Time) DiskOption {
	return func(d *Disk) error {
		if now == nil {
			return errors.New("clock must not be nil")
		}
		d.now = now
		return nil
	}
}

// MinSecretLen is the shortest HMAC secret NewDisk accepts.
const MinSecretLen = 16

// staleUpload is how old a file in tmp/ must be before NewDisk removes it as
// the remnant of a crashed upload; younger ones may belong to another
// process sharing the directory.
const staleUpload = time.Hour

// NewDisk opens (creating if needed) the store in dir. publicBaseURL is the
// absolute http(s) URL under which Handler is reachable by clients without
// the /blobs suffix (e.g. "https://files.example.com"); presigned URLs are
// publicBaseURL + "/blobs/" + key + "?…". secret signs them and must be at
// least MinSecretLen bytes; every process serving the same URLs must share it.
func NewDisk(dir, publicBaseURL string, secret []byte, opts ...DiskOption) (*Disk, error) {
	if dir == "" {
		return nil, errors.New("open disk blob store: dir must not be empty")
	}
	u, err := url.Parse(publicBaseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("open disk blob store: public base url %q must be an absolute http(s) url without query", publicBaseURL)
	}
	if len(secret) < MinSecretLen {
		return nil, fmt.Errorf("open disk blob store: secret must be at least %d bytes", MinSecretLen)
	}
	d := &Disk{
		objects: filepath.Join(dir, "objects"),
		meta:    filepath.Join(dir, "meta"),
		tmp:     filepath.Join(dir, "tmp"),
		baseURL: strings.TrimRight(publicBaseURL, "/"),
		secret:  append([]byte(nil), secret...),
		now:     time.Now,
	}
	for _, opt := range opts {
		if err := opt(d); err != nil {
			return nil, fmt.Errorf("open disk blob store: %w", err)
		}
	}
	for _, p := range []string{d.objects, d.meta, d.tmp} {
		if err := os.MkdirAll(p, 0o750); err != nil {
			return nil, fmt.Errorf("open disk blob store: create %s: %w", p, err)
		}
	}
	d.removeStaleUploads()
	return d, nil
}

func (d *Disk) removeStaleUploads() {
	entries, err := os.ReadDir(d.tmp)
	if err != nil {
		return
	}
	cutoff := time.Now().Add(-staleUpload)
	for _, e := range entries {
		if fi, err := e.Info(); err == nil && fi.ModTime().Before(cutoff) {
			_ = os.Remove(filepath.Join(d.tmp, e.Name()))
		}
	}
}

func (d *Disk) lock(key string) *sync.Mutex {
	h := fnv.New32a()
	_, _ = h.Write([]byte(key))
	return &d.locks[h.Sum32()%uint32(len(d.locks))]
}

type sidecar struct {
	ContentType string `json:"contentType"`
}

// Put streams r into a temporary file, fsyncs it and renames it into place,
// so readers see either the old object or the complete new one. With the
// content type in an attribute of the file, that costs two syncs: the file
// (bytes and attribute) and the objects directory (the rename). With a
// sidecar it costs four: the sidecar and the meta directory as well.
func (d *Disk) Put(ctx context.Context, key string, r io.Reader, size int64, contentType string) error {
	if err := d.put(ctx, key, r, size, contentType); err != nil {
		return fmt.Errorf("put blob %s: %w", key, err)
	}
	return nil
}

func (d *Disk) put(ctx context.Context, key string, r io.Reader, size int64, contentType string) (err error) {
	if err := ValidateKey(key); err != nil {
		return err
	}
	data, err := os.CreateTemp(d.tmp, "data-*")
	if err != nil {
		return fmt.Errorf("create temp file: %w", err)
	}
	defer func() {
		if err != nil {
			_ = data.Close()
			_ = os.Remove(data.Name())
		}
	}()
	var src io.Reader = ctxReader{ctx: ctx, r: r}
	if size >= 0 {
		// One byte more than declared, to notice a reader that is too long.
		src = io.LimitReader(src, size+1)
	}
	n, err := io.Copy(data, src)
	if err != nil {
		return fmt.Errorf("write temp file: %w", err)
	}
	if size >= 0 && n != size {
		return fmt.Errorf("%w: declared %d bytes, read %d", ErrSizeMismatch, size, n)
	}
	ct := contentTypeOrDefault(contentType)
	inAttr := false
	if !d.noXattr.Load() {
		// Set before the sync, so that one fsync covers bytes and type.
		switch aerr := setContentTypeAttr(data.Name(), ct); {
		case aerr == nil:
			inAttr = true
		case errors.Is(aerr, errNoXattr):
			d.noXattr.Store(true)
		}
		// Any other refusal (a type too long for the file system's
		// attribute space) falls back to the sidecar for this object.
	}
	if err := data.Sync(); err != nil {
		return fmt.Errorf("sync temp file: %w", err)
	}
	if err := data.Close(); err != nil {
		return fmt.Errorf("close temp file: %w", err)
	}

	meta := ""
	if !inAttr {
		if meta, err = d.writeSidecar(ct); err != nil {
			return err
		}
	}
	mu := d.lock(key)
	mu.Lock()
	if inAttr {
		// A sidecar left by an older version of the object would be
		// ignored (the attribute wins), but remove it so it cannot outlive
		// the object. No directory sync: if it comes back after a crash,
		// the attribute still wins.
		if rerr := os.Remove(d.metaPath(key)); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
			err = rerr
		}
	} else {
		err = os.Rename(meta, d.metaPath(key))
	}
	if err == nil {
		err = os.Rename(data.Name(), d.objectPath(key))
	}
	mu.Unlock()
	if err != nil {
		if meta != "" {
			_ = os.Remove(meta)
		}
		return fmt.Errorf("rename into place: %w", err)
	}
	// The renames are durable only once the directories are synced.
	if !inAttr {
		if err := syncDir(d.meta); err != nil {
			return err
		}
	}
	return syncDir(d.objects)
}

func (d *Disk) writeSidecar(contentType string) (name string, err error) {
	f, err := os.CreateTemp(d.tmp, "meta-*")
	if err != nil {
		return "", fmt.Errorf("create sidecar: %w", err)
	}
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(f.Name())
		}
	}()
	if err := json.NewEncoder(f).Encode(sidecar{ContentType: contentType}); err != nil {
		return "", fmt.Errorf("write sidecar: %w", err)
	}
	if err := f.Sync(); err != nil {
		return "", fmt.Errorf("sync sidecar: %w", err)
	}
	if err := f.Close(); err != nil {
		return "", fmt.Errorf("close sidecar: %w", err)
	}
	return f.Name(), nil
}

func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("open %s for sync: %w", dir, err)
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}

func (d *Disk) objectPath(key string) string { return filepath.Join(d.objects, key) }
func (d *Disk) metaPath(key string) string   { return filepath.Join(d.meta, key+".json") }

// Get opens the object's file; the returned reader streams from disk and
// keeps reading the version it opened even if the object is replaced.
func (d *Disk) Get(ctx context.Context, key string) (io.ReadCloser, Info, error) {
	f, info, err := d.open(key)
	if err != nil {
		return nil, Info{}, fmt.Errorf("get blob %s: %w", key, err)
	}
	return f, info, nil
}

func (d *Disk) open(key string) (*os.File, Info, error) {
	if err := ValidateKey(key); err != nil {
		return nil, Info{}, err
	}
	mu := d.lock(key)
	mu.Lock()
	f, err := os.Open(d.objectPath(key))
	var ct string
	if err == nil {
		ct = d.readContentType(key)
	}
	mu.Unlock()
	if errors.Is(err, fs.ErrNotExist) {
		return nil, Info{}, ErrNotFound
	}
	if err != nil {
		return nil, Info{}, fmt.Errorf("open object: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return nil, Info{}, fmt.Errorf("stat object: %w", err)
	}
	return f, Info{Size: fi.Size(), ContentType: ct, ModTime: fi.ModTime()}, nil
}

// readContentType reads the object's attribute, else its sidecar (objects
// written on a file system without attributes, or by an older version), and
// falls back to the default type when both are missing or unreadable: the
// bytes are what matter, and a lost sidecar must not make the object
// unreadable.
func (d *Disk) readContentType(key string) string {
	if ct, ok := contentTypeAttrOf(d.objectPath(key)); ok {
		return ct
	}
	b, err := os.ReadFile(d.metaPath(key))
	if err != nil {
		return DefaultContentType
	}
	var s sidecar
	if json.Unmarshal(b, &s) != nil || s.ContentType == "" {
		return DefaultContentType
	}
	return s.ContentType
}

// Stat describes the object from its file and sidecar.
func (d *Disk) Stat(ctx context.Context, key string) (Info, error) {
	if err := ValidateKey(key); err != nil {
		return Info{}, fmt.Errorf("stat blob %s: %w", key, err)
	}
	mu := d.lock(key)
	mu.Lock()
	fi, err := os.Stat(d.objectPath(key))
	var ct string
	if err == nil {
		ct = d.readContentType(key)
	}
	mu.Unlock()
	if errors.Is(err, fs.ErrNotExist) {
		return Info{}, fmt.Errorf("stat blob %s: %w", key, ErrNotFound)
	}
	if err != nil {
		return Info{}, fmt.Errorf("stat blob %s: %w", key, err)
	}
	return Info{Size: fi.Size(), ContentType: ct, ModTime: fi.ModTime()}, nil
}

// Delete removes the object and its sidecar; the bytes go first so that a
// crash in between leaves only a harmless orphan sidecar.
func (d *Disk) Delete(ctx context.Context, key string) error {
	if err := ValidateKey(key); err != nil {
		return fmt.Errorf("delete blob %s: %w", key, err)
	}
	mu := d.lock(key)
	mu.Lock()
	defer mu.Unlock()
	if err := os.Remove(d.objectPath(key)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("delete blob %s: %w", key, err)
	}
	if err := os.Remove(d.metaPath(key)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("delete blob %s sidecar: %w", key, err)
	}
	return nil
}

// Ping checks that the directory accepts writes.
func (d *Disk) Ping(ctx context.Context) error {
	f, err := os.CreateTemp(d.tmp, "ping-*")
	if err != nil {
		return fmt.Errorf("ping disk blob store: %w", err)
	}
	name := f.Name()
	_, werr := f.Write([]byte("ok"))
	cerr := f.Close()
	rerr := os.Remove(name)
	if err := errors.Join(werr, cerr, rerr); err != nil {
		return fmt.Errorf("ping disk blob store: %w", err)
	}
	return nil
}
