package handlers

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/convilyn/turbolane/blobstore"
	"github.com/convilyn/turbolane/domain"
	"github.com/convilyn/turbolane/handlers/web"
)

// Commands executes a command against one job's history: load, decide,
// append. eventstore.Store satisfies it. Execute returns the job state after
// the append (Version = the new stream sequence) or the domain error that
// forbids the command; it is safe for concurrent use.
type Commands interface {
	Execute(ctx context.Context, jobID string, cmd domain.Command) (domain.Job, error)
}

// History loads a job's events, oldest first; an unknown job yields an empty
// slice. eventstore.Store satisfies it.
type History interface {
	Load(ctx context.Context, jobID string) ([]domain.Event, error)
}

// JobReader is the queryable job view. projections.JobView satisfies it. Get
// and Stats return domain.ErrJobNotFound for missing or deleted jobs; WaitFor
// blocks until the view has applied stream sequence seq or ctx is done.
type JobReader interface {
	Get(ctx context.Context, jobID string) (domain.Job, error)
	List(ctx context.Context, q domain.ListQuery) ([]domain.Job, int, error)
	Stats(ctx context.Context, jobID string) (domain.JobStats, error)
	WaitFor(ctx context.Context, seq uint64) error
	EstimatedDuration(ctx context.Context, t domain.ProcessorType) (*float64, error)
}

// FileRecords keeps file records shared by every replica. Get returns
// domain.ErrFileNotFound for an unknown id. The eventstore's Files satisfies it.
type FileRecords interface {
	Put(ctx context.Context, f domain.File) error
	Get(ctx context.Context, id string) (domain.File, error)
	Delete(ctx context.Context, id string) error
}

// APIKey is a stored API key: only the sha256 hex of the key is kept.
type APIKey struct {
	Hash      string
	UserID    string
	Plan      domain.Plan
	CreatedAt time.Time
}

// KeyStore keeps API keys by hash. Get returns an error matching
// domain.ErrNotFound for an unknown hash. The eventstore's Keys stores the
// same fields under its own type, so cmd passes a small adapter.
type KeyStore interface {
	Put(ctx context.Context, k APIKey) error
	Get(ctx context.Context, hash string) (APIKey, error)
}

// Blobs is the part of blobstore.Store the API uses.
type Blobs interface {
	Get(ctx context.Context, key string) (io.ReadCloser, blobstore.Info, error)
	Put(ctx context.Context, key string, r io.Reader, size int64, contentType string) error
	Stat(ctx context.Context, key string) (blobstore.Info, error)
	Delete(ctx context.Context, key string) error
	PresignPut(ctx context.Context, key, contentType string, maxSize int64, ttl time.Duration) (blobstore.Presigned, error)
	PresignGet(ctx context.Context, key, fileName string, ttl time.Duration) (string, error)
}

var _ Blobs = blobstore.Store(nil)

// Defaults applied by New to zero Config fields, and the rate cmd should
// offer by default (a zero RateLimit turns limiting off).
const (
	DefaultRateLimit             = 100
	DefaultRateBurst             = 200
	DefaultUploadURLTTL          = 15 * time.Minute
	DefaultDownloadURLTTL        = 15 * time.Minute
	DefaultReadYourWritesTimeout = 2 * time.Second
	DefaultLargeFileBytes        = 100 << 20
	// DefaultUploadRetention is how long an upload no job uses is kept.
	DefaultUploadRetention = 24 * time.Hour
)

// Config holds the API's settings. Zero values get the defaults above.
type Config struct {
	// PublicURL is the externally visible base URL (scheme://host[:port]),
	// used for absolute downloadUrl values; empty derives it from the request.
	PublicURL string
	// AdminToken enables POST /admin/api-keys and the auditors' access to any
	// job's events; empty disables both.
	AdminToken string
	// WorkerToken guards PATCH /jobs/{id}/progress; empty disables it.
	WorkerToken string
	// SessionSecret signs anonymous session cookies. Every replica needs the
	// same secret; empty uses a random one, so sessions die with the process.
	SessionSecret []byte
	// PlanLimits maps plans to their largest file; nil uses the defaults.
	PlanLimits domain.PlanLimits
	// LargeFileBytes routes jobs whose inputs total at least this to the
	// large pool.
	LargeFileBytes int64
	// RateLimit is the sustained requests per second per client; 0 is off.
	RateLimit float64
	// RateBurst is the bucket size; 0 is twice RateLimit.
	RateBurst int
	// TrustProxy takes the client address for rate limiting from the last
	// X-Forwarded-For entry, the one the proxy in front of the API added.
	// Leave it off unless such a proxy always sets the header: clients can
	// send any X-Forwarded-For they like.
	TrustProxy bool
	// UploadURLTTL is the lifetime of presigned upload URLs.
	UploadURLTTL time.Duration
	// DownloadURLTTL is the lifetime of presigned download URLs.
	DownloadURLTTL time.Duration
	// OpenAPI is served at GET /api/v1/openapi.yaml when not empty.
	OpenAPI []byte
	// BlobHandler serves /blobs/ (the embedded disk store's signed URLs).
	BlobHandler http.Handler
	// Metrics receives the HTTP metrics and is served at GET /metrics; nil
	// uses a private registry.
	Metrics *prometheus.Registry
	// Logger receives request errors; nil discards.
	Logger *slog.Logger
	// ParamChoices lists, per processor type and parameter, the values this
	// deployment offers (the installed OCR languages, …); the catalog shows
	// them as the parameter's enum. Validation stays with the engines.
	ParamChoices map[domain.ProcessorType]map[string][]string
	// UploadRetention is how long an upload that no job uses is kept before
	// the sweeper deletes it.
	UploadRetention time.Duration
	// ReadYourWritesTimeout bounds how long a write waits for the job view to
	// catch up before answering anyway.
	ReadYourWritesTimeout time.Duration
	// KeyCacheTTL is how long an API key found in the key store is trusted
	// without asking the store again; zero is DefaultKeyCacheTTL, negative
	// asks the store on every request. Keys cannot be revoked yet; when they
	// can, a revoked key keeps working on a replica for up to this long.
	KeyCacheTTL time.Duration
}

// Deps are the API's collaborators. All but Checks and Now are required.
type Deps struct {
	Commands Commands
	History  History
	Jobs     JobReader
	Files    FileRecords
	Keys     KeyStore
	Blobs    Blobs
	// EncodeEvent turns an event into its CloudEvents document
	// (eventstore.CloudEventOf).
	EncodeEvent func(domain.Event) any
	// Checks are run by GET /readyz, by name.
	Checks map[string]func(context.Context) error
	// Now is the clock; nil is time.Now.
	Now func() time.Time
}

// ErrMissingDependency is returned by New when a required dependency is nil.
var ErrMissingDependency = errors.New("missing dependency")

type server struct {
	cfg     Config
	deps    Deps
	log     *slog.Logger
	limits  *rateLimiter
	metrics *httpMetrics
	keys    *keyCache
	now     func() time.Time
}

// New builds the HTTP handler of the whole API. It checks the required
// dependencies and fills in defaults; the handler is safe for concurrent use.
func New(cfg Config, deps Deps) (http.Handler, error) {
	missing := []string{}
	for name, ok := range map[string]bool{
		"Commands": deps.Commands != nil, "History": deps.History != nil, "Jobs": deps.Jobs != nil,
		"Files": deps.Files != nil, "Keys": deps.Keys != nil, "Blobs": deps.Blobs != nil,
		"EncodeEvent": deps.EncodeEvent != nil,
	} {
		if !ok {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		return nil, fmt.Errorf("build handlers: %w: %s", ErrMissingDependency, strings.Join(missing, ", "))
	}
	if cfg.PlanLimits == nil {
		cfg.PlanLimits = domain.DefaultPlanLimits()
	}
	if cfg.LargeFileBytes <= 0 {
		cfg.LargeFileBytes = DefaultLargeFileBytes
	}
	if cfg.RateLimit < 0 {
		return nil, errors.New("build handlers: RateLimit must not be negative")
	}
	if cfg.RateBurst <= 0 {
		cfg.RateBurst = int(2 * cfg.RateLimit)
		if cfg.RateBurst < 1 {
			cfg.RateBurst = 1
		}
	}
	if cfg.UploadURLTTL <= 0 {
		cfg.UploadURLTTL = DefaultUploadURLTTL
	}
	if cfg.DownloadURLTTL <= 0 {
		cfg.DownloadURLTTL = DefaultDownloadURLTTL
	}
	if cfg.UploadRetention <= 0 {
		cfg.UploadRetention = DefaultUploadRetention
	}
	if cfg.ReadYourWritesTimeout <= 0 {
		cfg.ReadYourWritesTimeout = DefaultReadYourWritesTimeout
	}
	if cfg.KeyCacheTTL == 0 {
		cfg.KeyCacheTTL = DefaultKeyCacheTTL
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if len(cfg.SessionSecret) == 0 {
		cfg.SessionSecret = randomBytes(32)
		cfg.Logger.Warn("no session secret configured; anonymous sessions will not survive a restart or span replicas")
	}
	if cfg.Metrics == nil {
		cfg.Metrics = prometheus.NewRegistry()
	}
	cfg.PublicURL = strings.TrimRight(cfg.PublicURL, "/")
	if deps.Now == nil {
		deps.Now = time.Now
	}
	m, err := newHTTPMetrics(cfg.Metrics)
	if err != nil {
		return nil, err
	}
	s := &server{
		cfg: cfg, deps: deps, log: cfg.Logger, metrics: m, now: deps.Now,
		limits: newRateLimiter(cfg.RateLimit, cfg.RateBurst, cfg.TrustProxy),
		keys:   newKeyCache(deps.Keys, cfg.KeyCacheTTL, deps.Now),
	}
	return s.routes(), nil
}

func (s *server) routes() http.Handler {
	r := chi.NewRouter()
	r.Use(s.instrument, s.recoverer)
	r.NotFound(func(w http.ResponseWriter, r *http.Request) { s.writeError(w, r, errRouteNotFound) })
	r.MethodNotAllowed(func(w http.ResponseWriter, r *http.Request) { s.writeError(w, r, errMethodNotAllowed) })

	r.Get("/healthz", s.healthz)
	r.Get("/readyz", s.readyz)
	r.Handle("/metrics", promhttp.HandlerFor(s.cfg.Metrics, promhttp.HandlerOpts{}))
	if s.cfg.BlobHandler != nil {
		r.Handle("/blobs/*", s.cfg.BlobHandler)
	}
	page := web.Handler()
	r.Method(http.MethodGet, "/", page)
	r.Method(http.MethodHead, "/", page)
	r.Method(http.MethodGet, web.AssetsPrefix+"*", page)
	r.Method(http.MethodHead, web.AssetsPrefix+"*", page)

	r.Route("/api/v1", func(r chi.Router) {
		r.Group(func(r chi.Router) {
			r.Use(s.limitByIP)
			r.Get("/openapi.yaml", s.openAPI)
			r.Get("/processors", s.processors)
		})
		r.With(s.requireAdmin).Post("/admin/api-keys", s.createAPIKey)
		r.With(s.requireWorker).Patch("/jobs/{job_id}/progress", s.reportProgress)
		r.Group(func(r chi.Router) {
			r.Use(s.authenticate)
			r.Post("/upload/presign", s.presignUpload)
			r.Post("/upload/confirm", s.confirmUpload)
			r.Post("/upload", s.upload)
			r.Get("/files/{file_id}", s.getFile)
			r.Get("/files/{file_id}/download", s.downloadFile)
			r.Post("/jobs", s.createJob)
			r.Get("/jobs", s.listJobs)
			r.Post("/jobs/batch", s.createBatch)
			r.Post("/jobs/download", s.downloadJobs)
			r.Get("/jobs/{job_id}", s.getJob)
			r.Delete("/jobs/{job_id}", s.deleteJob)
			r.Post("/jobs/{job_id}/retry", s.retryJob)
			r.Get("/jobs/{job_id}/stats", s.jobStats)
			r.Get("/jobs/{job_id}/events", s.jobEvents)
		})
	})
	return r
}

// recoverer turns a panic into a logged 500 with a generic JSON body.
func (s *server) recoverer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			v := recover()
			if v == nil {
				return
			}
			if v == http.ErrAbortHandler {
				panic(v)
			}
			s.log.Error("handler panicked", "method", r.Method, "path", r.URL.Path, "panic", v, "stack", string(stack()))
			if sr, ok := w.(*statusRecorder); ok && sr.wrote {
				return // too late for a clean error; the client sees a cut response
			}
			s.writeError(w, r, errPanic)
		}()
		next.ServeHTTP(w, r)
	})
}
