package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/convilyn/turbolane/api"
	"github.com/convilyn/turbolane/blobstore"
	"github.com/convilyn/turbolane/domain"
	"github.com/convilyn/turbolane/eventstore"
	"github.com/convilyn/turbolane/handlers"
	"github.com/convilyn/turbolane/projections"
	"github.com/convilyn/turbolane/workers"
	"github.com/convilyn/turbolane/workers/ocr"
)

// Role is what a process runs.
type Role string

// Roles.
const (
	RoleServe  Role = "serve"  // everything
	RoleAPI    Role = "api"    // HTTP API and its read views
	RoleWorker Role = "worker" // dispatcher, pools and the retention sweeper
)

func (r Role) api() bool     { return r == RoleServe || r == RoleAPI }
func (r Role) workers() bool { return r == RoleServe || r == RoleWorker }

// Main is the wiring of one process. Run starts it; Close stops it
// gracefully. End-to-end tests use it to run the real thing.
type Main struct {
	Role    Role
	Config  Config
	Logger  *slog.Logger
	Metrics *prometheus.Registry

	// Set by Run.
	URL   string // base URL of the HTTP API (resolves :0)
	NATS  *server.Server
	Conn  *nats.Conn
	Store *eventstore.Store
	Blobs blobstore.Store
	View  *projections.JobView

	closers       []func() error
	disk          *blobstore.Disk
	workerMetrics *workers.Metrics
	http          *http.Server
	cancel        context.CancelFunc
	wg            sync.WaitGroup
	mu            sync.Mutex
	errs          []error
}

// NewMain returns an unstarted Main.
func NewMain(role Role, cfg Config, logger *slog.Logger) *Main {
	if logger == nil {
		logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	return &Main{Role: role, Config: cfg, Logger: logger, Metrics: prometheus.NewRegistry()}
}

// Run starts every part of the role and returns once they are serving.
func (m *Main) Run(ctx context.Context) error {
	cfg := m.Config
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return fmt.Errorf("create data dir: %w", err)
	}
	bg, cancel := context.WithCancel(context.WithoutCancel(ctx))
	m.cancel = cancel
	m.Metrics.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	secret, err := m.sessionSecret()
	if err != nil {
		return err
	}
	if err := m.connectNATS(ctx); err != nil {
		return err
	}

	var listener net.Listener
	if m.Role.api() {
		if listener, err = net.Listen("tcp", cfg.Addr); err != nil {
			return fmt.Errorf("listen on %s: %w", cfg.Addr, err)
		}
		m.URL = "http://" + listener.Addr().String()
	}
	public := strings.TrimRight(cfg.PublicURL, "/")
	if public == "" {
		public = m.URL
	}
	if public == "" {
		// A worker presigns nothing, but the disk store wants a base URL.
		public = "http://" + cfg.Addr
	}
	if err := m.openBlobs(ctx, public, secret); err != nil {
		return err
	}

	if m.Role.workers() {
		if m.workerMetrics, err = workers.NewMetrics(m.Metrics); err != nil {
			return err
		}
		if err := m.startWorkers(bg); err != nil {
			return err
		}
	}
	if m.Role.api() {
		if err := m.startAPI(bg, listener, public, secret); err != nil {
			return err
		}
	} else if cfg.MetricsAddr != "" {
		if err := m.startMetrics(cfg.MetricsAddr); err != nil {
			return err
		}
	}
	m.Logger.Info("turbolane started", "role", m.Role, "version", version, "url", m.URL, "nats", m.natsDescription(), "storage", m.storageDescription())
	return nil
}

func (m *Main) sessionSecret() ([]byte, error) {
	if m.Config.SessionSecret != "" {
		return []byte(m.Config.SessionSecret), nil
	}
	// Generated once and kept in the data dir, so cookies and presigned
	// URLs survive a restart of a single-machine deployment.
	path := filepath.Join(m.Config.DataDir, "session.key")
	if b, err := os.ReadFile(path); err == nil && len(b) >= 32 {
		return b, nil
	}
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	key := []byte(hex.EncodeToString(b))
	if err := os.WriteFile(path, key, 0o600); err != nil {
		return nil, fmt.Errorf("write session key: %w", err)
	}
	return key, nil
}

func (m *Main) connectNATS(ctx context.Context) error {
	cfg := m.Config
	replicas := cfg.NATSReplicas
	if cfg.NATSURL == "" {
		sync, err := cfg.syncInterval()
		if err != nil {
			return err
		}
		var routes []string
		if cfg.NATSRoutes != "" {
			routes = strings.Split(cfg.NATSRoutes, ",")
		}
		srv, err := eventstore.StartEmbedded(eventstore.EmbeddedConfig{
			DataDir: filepath.Join(cfg.DataDir, "nats"), Listen: cfg.NATSListen, SyncInterval: sync,
			ServerName: cfg.NATSServerName, ClusterName: cfg.NATSClusterName, ClusterListen: cfg.NATSCluster, Routes: routes,
		})
		if err != nil {
			return fmt.Errorf("start embedded NATS: %w", err)
		}
		m.NATS = srv
		if m.Conn, err = eventstore.ConnectEmbedded(srv); err != nil {
			return fmt.Errorf("connect to embedded NATS: %w", err)
		}
	} else {
		var err error
		if m.Conn, err = eventstore.Connect(cfg.NATSURL, "turbolane-"+string(m.Role)); err != nil {
			return fmt.Errorf("connect to NATS %s: %w", cfg.NATSURL, err)
		}
	}
	if replicas == 0 {
		replicas = 1
		if m.Conn.ConnectedClusterName() != "" && cfg.NATSURL != "" {
			replicas = 3
		}
	}
	opts := []eventstore.Option{eventstore.WithReplicas(replicas)}
	if cfg.AckWait > 0 {
		opts = append(opts, eventstore.WithAckWait(cfg.AckWait))
	}
	store, err := eventstore.Open(ctx, m.Conn, opts...)
	if err != nil {
		return fmt.Errorf("open event store: %w", err)
	}
	m.Store = store
	return nil
}

func (m *Main) openBlobs(ctx context.Context, public string, secret []byte) error {
	cfg := m.Config
	if cfg.S3Endpoint != "" {
		s3, err := blobstore.NewS3(ctx, blobstore.S3Config{
			Endpoint: cfg.S3Endpoint, Bucket: cfg.S3Bucket, AccessKey: cfg.S3AccessKey,
			SecretKey: cfg.S3SecretKey, Secure: cfg.S3Secure, Region: cfg.S3Region,
		})
		if err != nil {
			return fmt.Errorf("open S3 store %s: %w", cfg.S3Endpoint, err)
		}
		m.Blobs = s3
		return nil
	}
	disk, err := blobstore.NewDisk(filepath.Join(cfg.DataDir, "blobs"), public, secret)
	if err != nil {
		return fmt.Errorf("open disk store: %w", err)
	}
	m.disk, m.Blobs = disk, disk
	return nil
}

func (m *Main) startWorkers(ctx context.Context) error {
	cfg := m.Config
	pools, err := cfg.pools()
	if err != nil {
		return err
	}
	timeouts, err := cfg.processorTimeouts()
	if err != nil {
		return err
	}
	limits, err := cfg.limits()
	if err != nil {
		return err
	}
	registry, closeEngines, err := buildEngines(cfg, limits, m.Logger)
	if err != nil {
		return err
	}
	m.closers = append(m.closers, closeEngines)
	files := m.Store.Files()
	dispatcher, err := workers.NewDispatcher(m.Store, m.Store)
	if err != nil {
		return err
	}
	m.spawn("dispatcher", func() error { return dispatcher.Run(ctx) })
	workerID := workers.NewWorkerID()
	for _, pool := range pools {
		slots := cfg.StandardSlots
		if pool == domain.PoolLarge {
			slots = cfg.LargeSlots
		}
		opts := []workers.RunnerOption{
			workers.WithPoolName(pool),
			workers.WithWorkerID(workerID),
			workers.WithLogger(m.Logger),
			workers.WithWorkRoot(filepath.Join(cfg.DataDir, "work", pool)),
			workers.WithResultRetention(cfg.ResultRetention),
			workers.WithMaxDeliveries(cfg.MaxDeliveries),
			workers.WithDefaultTimeout(cfg.JobTimeout),
			workers.WithLimits(limits),
			workers.WithObserver(m.workerMetrics),
		}
		for t, d := range timeouts {
			opts = append(opts, workers.WithProcessorTimeout(t, d))
		}
		runner, err := workers.NewRunner(m.Store, m.Blobs, files, registry, opts...)
		if err != nil {
			return fmt.Errorf("build %s runner: %w", pool, err)
		}
		p, err := workers.NewPool(pool, slots, m.Store, runner)
		if err != nil {
			return fmt.Errorf("build %s pool: %w", pool, err)
		}
		m.spawn("pool "+pool, func() error { return p.Run(ctx) })
	}
	sweeper, err := workers.NewSweeper(files, m.Blobs, workers.WithSweepInterval(cfg.SweepInterval), workers.WithSweepLogger(m.Logger))
	if err != nil {
		return err
	}
	m.spawn("sweeper", func() error { return sweeper.Run(ctx) })
	return m.startWebhook(ctx)
}

func (m *Main) startAPI(ctx context.Context, l net.Listener, public string, secret []byte) error {
	cfg := m.Config
	// A view whose subscription fails (NATS restarting, a leader election)
	// subscribes again from its checkpoint instead of going stale.
	view, err := projections.Open(filepath.Join(cfg.DataDir, "views.db"), projections.WithResubscribe(time.Second))
	if err != nil {
		return fmt.Errorf("open read views: %w", err)
	}
	m.View = view
	m.spawn("projections", func() error { return view.Run(ctx, m.Store) })
	if err := m.startEventMetrics(ctx); err != nil {
		return err
	}

	limits, err := domain.ParsePlanLimits(cfg.PlanLimits)
	if err != nil {
		return fmt.Errorf("--plan-limits: %w", err)
	}
	large, err := cfg.largeFileBytes()
	if err != nil {
		return err
	}
	hcfg := handlers.Config{
		PublicURL: public, AdminToken: cfg.AdminToken, WorkerToken: cfg.WorkerToken, SessionSecret: secret,
		PlanLimits: limits, LargeFileBytes: large, RateLimit: cfg.RateLimit, RateBurst: cfg.RateBurst,
		UploadRetention: cfg.UploadRetention, OpenAPI: api.OpenAPI, Metrics: m.Metrics, Logger: m.Logger,
	}
	if m.disk != nil {
		hcfg.BlobHandler = m.disk.Handler()
	}
	// The catalog lists the OCR languages installed here; an API on a
	// machine without tesseract simply shows none.
	lctx, lcancel := context.WithTimeout(ctx, 5*time.Second)
	if langs, err := ocr.Languages(lctx, ""); err == nil && len(langs) > 0 {
		hcfg.ParamChoices = map[domain.ProcessorType]map[string][]string{domain.OCRProcessing: {"language": langs}}
	} else if err != nil {
		m.Logger.Debug("no OCR languages for the catalog", "err", err)
	}
	lcancel()
	h, err := handlers.New(hcfg, handlers.Deps{
		Commands: m.Store, History: m.Store, Jobs: view, Files: m.Store.Files(), Keys: keyStore{m.Store.Keys()},
		Blobs: m.Blobs, EncodeEvent: func(ev domain.Event) any { return eventstore.CloudEventOf(ev) },
		Checks: map[string]func(context.Context) error{"nats": m.Store.Health, "storage": m.Blobs.Ping,
			"events": func(ctx context.Context) error { return m.Store.CheckApplied(ctx, view.Checkpoint()) }},
	})
	if err != nil {
		return fmt.Errorf("build handlers: %w", err)
	}
	m.http = &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	m.spawn("http", func() error {
		if err := m.http.Serve(l); !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	})
	return nil
}

// startMetrics serves the registry for a process without the API.
func (m *Main) startMetrics(addr string) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on --metrics-addr %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(m.Metrics, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"status":"ok"}`))
	})
	m.URL = "http://" + l.Addr().String()
	m.http = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	m.spawn("metrics", func() error {
		if err := m.http.Serve(l); !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	})
	return nil
}

// spawn runs fn in the background and records its error.
func (m *Main) spawn(name string, fn func() error) {
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		if err := fn(); err != nil && !errors.Is(err, context.Canceled) {
			m.Logger.Error("component stopped", "component", name, "err", err)
			m.mu.Lock()
			m.errs = append(m.errs, fmt.Errorf("%s: %w", name, err))
			m.mu.Unlock()
		}
	}()
}

// Close stops taking work, lets in-flight HTTP requests finish, hands back
// in-flight jobs (their work items are nak'ed and picked up again), flushes
// and stops NATS. It is safe to call more than once.
func (m *Main) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var errs []error
	if m.http != nil {
		if err := m.http.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("shut down HTTP: %w", err))
		}
		m.http = nil
	}
	if m.cancel != nil {
		m.cancel()
	}
	m.wg.Wait()
	for _, c := range m.closers {
		if err := c(); err != nil {
			errs = append(errs, err)
		}
	}
	m.closers = nil
	if m.View != nil {
		if err := m.View.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close views: %w", err))
		}
		m.View = nil
	}
	if m.Conn != nil {
		if err := m.Conn.Drain(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
			errs = append(errs, fmt.Errorf("drain NATS: %w", err))
		}
		for i := 0; i < 100 && !m.Conn.IsClosed(); i++ {
			time.Sleep(20 * time.Millisecond)
		}
		m.Conn = nil
	}
	if m.NATS != nil {
		m.NATS.Shutdown()
		m.NATS.WaitForShutdown()
		m.NATS = nil
	}
	m.mu.Lock()
	errs = append(errs, m.errs...)
	m.errs = nil
	m.mu.Unlock()
	return errors.Join(errs...)
}

func (m *Main) natsDescription() string {
	if m.NATS != nil {
		if m.Config.NATSListen == "" {
			return "embedded (in-process only)"
		}
		return "embedded, clients at nats://" + m.Config.NATSListen
	}
	return m.Config.NATSURL
}

func (m *Main) storageDescription() string {
	if m.disk != nil {
		return "embedded disk store in " + filepath.Join(m.Config.DataDir, "blobs")
	}
	return "s3://" + m.Config.S3Endpoint + "/" + m.Config.S3Bucket
}

// keyStore adapts the eventstore's API-key records to what handlers needs.
type keyStore struct{ keys *eventstore.Keys }

func (k keyStore) Put(ctx context.Context, key handlers.APIKey) error {
	return k.keys.Put(ctx, eventstore.APIKey(key))
}

func (k keyStore) Get(ctx context.Context, hash string) (handlers.APIKey, error) {
	key, err := k.keys.Get(ctx, hash)
	return handlers.APIKey(key), err
}
