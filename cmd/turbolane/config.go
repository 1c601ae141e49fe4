package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/convilyn/turbolane/domain"
)

// Config is every setting of every role. Each field has a flag and a
// TURBOLANE_* environment variable (upper case, '-' → '_').
type Config struct {
	Addr      string
	DataDir   string
	PublicURL string

	NATSURL          string
	NATSListen       string
	NATSSyncInterval string
	NATSReplicas     int
	NATSServerName   string
	NATSClusterName  string
	NATSCluster      string
	NATSRoutes       string

	S3Endpoint  string
	S3Bucket    string
	S3AccessKey string
	S3SecretKey string
	S3Secure    bool
	S3Region    string

	AdminToken    string
	WorkerToken   string
	SessionSecret string

	Pool            string
	StandardSlots   int
	LargeSlots      int
	LargeFileBytes  string
	ResultRetention time.Duration
	UploadRetention time.Duration
	SweepInterval   time.Duration
	AckWait         time.Duration
	MaxDeliveries   int
	JobTimeout      time.Duration
	MaxPixels       int64
	PlanLimits      string
	RateLimit       float64
	RateBurst       int
	LogLevel        string
	LogFormat       string

	// Engines (issue 3): paths, warm pools, limits and the transcriber.
	ProcessorTimeouts  string
	EngineMemoryLimit  string
	MaxOutputBytes     string
	OfficeInstances    int
	OfficeRestartAfter int
	OCRMaxPages        int
	PDFMaxPages        int
	MaxMediaDuration   time.Duration
	Transcriber        string
	WhisperCLI         string
	WhisperModel       string
	OpenAIURL          string
	OpenAIKey          string
	OpenAIModel        string

	// Webhook forwarding of job events (issue 5).
	WebhookURL      string
	WebhookSecret   string
	WebhookEvents   string
	WebhookConsumer string

	// MetricsAddr serves /metrics (and /healthz) for a worker process,
	// which has no API to serve them.
	MetricsAddr string

	// Replay options.
	Verify bool
}

// DefaultConfig returns the documented defaults.
func DefaultConfig() Config {
	return Config{
		Addr:             "127.0.0.1:8080",
		DataDir:          "./data",
		NATSListen:       "127.0.0.1:4222",
		NATSSyncInterval: "always",
		S3Bucket:         "turbolane",
		S3Region:         "us-east-1",
		Pool:             "all",
		StandardSlots:    2,
		LargeSlots:       1,
		LargeFileBytes:   "100MiB",
		ResultRetention:  24 * time.Hour,
		UploadRetention:  24 * time.Hour,
		SweepInterval:    time.Minute,
		AckWait:          30 * time.Second,
		MaxDeliveries:    5,
		JobTimeout:       10 * time.Minute,
		MaxPixels:        50_000_000,
		RateLimit:        100,
		RateBurst:        200,
		LogLevel:         "info",
		LogFormat:        "text",

		// Media and speech run as long as the recording (real-time factor
		// ≈ 0.6 for pocketsphinx), so they get hours, not --job-timeout.
		ProcessorTimeouts:  "media_processing=3h,audio_transcription=3h,video_transcription=3h,ocr_processing=1h",
		EngineMemoryLimit:  "2GiB",
		MaxOutputBytes:     "2GiB",
		OfficeInstances:    1,
		OfficeRestartAfter: 100,
		OCRMaxPages:        100,
		PDFMaxPages:        5000,
		MaxMediaDuration:   4 * time.Hour,
		Transcriber:        "pocketsphinx",
		OpenAIModel:        "whisper-1",

		WebhookEvents:   "all",
		WebhookConsumer: "webhook",
	}
}

// flags registers every field of c on fs.
func (c *Config) flags(fs *flag.FlagSet) {
	fs.StringVar(&c.Addr, "addr", c.Addr, "HTTP listen address")
	fs.StringVar(&c.DataDir, "data-dir", c.DataDir, "directory for the embedded NATS store, the embedded blob store and the read views")
	fs.StringVar(&c.PublicURL, "public-url", c.PublicURL, "base URL clients reach this API at (default http://<addr>)")
	fs.StringVar(&c.NATSURL, "nats-url", c.NATSURL, "external NATS server(s), comma-separated; empty starts an embedded server")
	fs.StringVar(&c.NATSListen, "nats-listen", c.NATSListen, "client port of the embedded NATS server; empty disables it")
	fs.StringVar(&c.NATSSyncInterval, "nats-sync-interval", c.NATSSyncInterval, `embedded JetStream fsync: "always" (fsync before every ack) or a duration such as 2m`)
	fs.IntVar(&c.NATSReplicas, "nats-replicas", c.NATSReplicas, "stream replicas (0: 1 standalone, 3 in a cluster)")
	fs.StringVar(&c.NATSServerName, "nats-server-name", c.NATSServerName, "embedded NATS server name (cluster mode)")
	fs.StringVar(&c.NATSClusterName, "nats-cluster-name", c.NATSClusterName, "embedded NATS cluster name (cluster mode)")
	fs.StringVar(&c.NATSCluster, "nats-cluster", c.NATSCluster, "embedded NATS cluster listen address host:port (cluster mode)")
	fs.StringVar(&c.NATSRoutes, "nats-routes", c.NATSRoutes, "embedded NATS cluster routes, comma-separated nats://host:port")
	fs.StringVar(&c.S3Endpoint, "s3-endpoint", c.S3Endpoint, "MinIO/S3 endpoint host:port; empty uses the embedded disk store")
	fs.StringVar(&c.S3Bucket, "s3-bucket", c.S3Bucket, "bucket for uploads and results")
	fs.StringVar(&c.S3AccessKey, "s3-access-key", c.S3AccessKey, "S3 access key")
	fs.StringVar(&c.S3SecretKey, "s3-secret-key", c.S3SecretKey, "S3 secret key")
	fs.BoolVar(&c.S3Secure, "s3-secure", c.S3Secure, "use TLS for S3")
	fs.StringVar(&c.S3Region, "s3-region", c.S3Region, "S3 region")
	fs.StringVar(&c.AdminToken, "admin-token", c.AdminToken, "bearer token of the admin API; empty disables it")
	fs.StringVar(&c.WorkerToken, "worker-token", c.WorkerToken, "bearer token of the internal progress endpoint; empty disables it")
	fs.StringVar(&c.SessionSecret, "session-secret", c.SessionSecret, "secret signing anonymous session cookies and embedded-store URLs (default: generated once into the data dir)")
	fs.StringVar(&c.Pool, "pool", c.Pool, "worker pool(s) to run: standard, large or all")
	fs.IntVar(&c.StandardSlots, "standard-slots", c.StandardSlots, "concurrent jobs in the standard pool")
	fs.IntVar(&c.LargeSlots, "large-slots", c.LargeSlots, "concurrent jobs in the large pool")
	fs.StringVar(&c.LargeFileBytes, "large-file-bytes", c.LargeFileBytes, "inputs of at least this size go to the large pool (bytes, or 100MiB)")
	fs.DurationVar(&c.ResultRetention, "result-retention", c.ResultRetention, "how long results (and the inputs of finished jobs) are kept")
	fs.DurationVar(&c.UploadRetention, "upload-retention", c.UploadRetention, "how long uploads that no job uses are kept")
	fs.DurationVar(&c.SweepInterval, "sweep-interval", c.SweepInterval, "how often expired files are deleted")
	fs.DurationVar(&c.AckWait, "ack-wait", c.AckWait, "how long a silent worker keeps a job before it is taken up again")
	fs.IntVar(&c.MaxDeliveries, "max-deliveries", c.MaxDeliveries, "deliveries of one attempt before it fails with worker_lost")
	fs.DurationVar(&c.JobTimeout, "job-timeout", c.JobTimeout, "longest processing time of one attempt (queue time not counted)")
	fs.Int64Var(&c.MaxPixels, "max-pixels", c.MaxPixels, "largest image (width × height) accepted")
	fs.StringVar(&c.PlanLimits, "plan-limits", c.PlanLimits, "file size limits per plan, e.g. anonymous=10MiB,free=50MiB,pro=500MiB,business=2GiB")
	fs.Float64Var(&c.RateLimit, "rate-limit", c.RateLimit, "requests per second per client (0 disables)")
	fs.IntVar(&c.RateBurst, "rate-burst", c.RateBurst, "burst of requests per client")
	fs.StringVar(&c.ProcessorTimeouts, "processor-timeouts", c.ProcessorTimeouts, "per-processor timeouts overriding --job-timeout, e.g. document_conversion=5m,media_processing=1h")
	fs.StringVar(&c.EngineMemoryLimit, "engine-memory-limit", c.EngineMemoryLimit, "address-space limit of each engine subprocess (ffmpeg, tesseract, gs, …)")
	fs.StringVar(&c.MaxOutputBytes, "max-output-bytes", c.MaxOutputBytes, "largest result file an engine may write")
	fs.IntVar(&c.OfficeInstances, "office-instances", c.OfficeInstances, "warm LibreOffice instances per worker process")
	fs.IntVar(&c.OfficeRestartAfter, "office-restart-after", c.OfficeRestartAfter, "restart a LibreOffice instance after this many conversions")
	fs.IntVar(&c.OCRMaxPages, "ocr-max-pages", c.OCRMaxPages, "most pages one OCR job may have")
	fs.IntVar(&c.PDFMaxPages, "pdf-max-pages", c.PDFMaxPages, "most pages one PDF job may have")
	fs.DurationVar(&c.MaxMediaDuration, "max-media-duration", c.MaxMediaDuration, "longest audio or video accepted")
	fs.StringVar(&c.Transcriber, "transcriber", c.Transcriber, "speech engine: pocketsphinx, whisper (whisper.cpp CLI) or openai (an OpenAI-compatible endpoint)")
	fs.StringVar(&c.WhisperCLI, "whisper-cli", c.WhisperCLI, "path of whisper.cpp's whisper-cli (with --transcriber whisper)")
	fs.StringVar(&c.WhisperModel, "whisper-model", c.WhisperModel, "whisper.cpp model file (with --transcriber whisper)")
	fs.StringVar(&c.OpenAIURL, "openai-url", c.OpenAIURL, "base URL of an OpenAI-compatible transcription API (with --transcriber openai)")
	fs.StringVar(&c.OpenAIKey, "openai-key", c.OpenAIKey, "API key of that endpoint")
	fs.StringVar(&c.OpenAIModel, "openai-model", c.OpenAIModel, "model name for that endpoint")
	fs.StringVar(&c.WebhookURL, "webhook-url", c.WebhookURL, "POST job events (CloudEvents JSON, signed) to this URL from the worker role; empty disables it")
	fs.StringVar(&c.WebhookSecret, "webhook-secret", c.WebhookSecret, "HMAC-SHA256 key signing webhook deliveries (required with --webhook-url)")
	fs.StringVar(&c.WebhookEvents, "webhook-events", c.WebhookEvents, "event types to forward, e.g. completed,failed; all for every type")
	fs.StringVar(&c.WebhookConsumer, "webhook-consumer", c.WebhookConsumer, "name of the durable JetStream consumer behind the webhook (one per endpoint)")
	fs.StringVar(&c.MetricsAddr, "metrics-addr", c.MetricsAddr, "worker role: serve /metrics and /healthz on this address (the API serves them itself)")
	fs.StringVar(&c.LogLevel, "log-level", c.LogLevel, "debug, info, warn or error")
	fs.StringVar(&c.LogFormat, "log-format", c.LogFormat, "text or json")
}

// parseFlags reads args into c, then fills every flag not given on the
// command line from its TURBOLANE_* environment variable.
func (c *Config) parseFlags(name string, args []string, extra func(*flag.FlagSet)) error {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	c.flags(fs)
	if extra != nil {
		extra(fs)
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%s: unexpected arguments %q", name, fs.Args())
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		if set[f.Name] {
			return
		}
		if v, ok := os.LookupEnv(EnvName(f.Name)); ok {
			if err := f.Value.Set(v); err != nil {
				errs = append(errs, fmt.Errorf("%s=%q: %w", EnvName(f.Name), v, err))
			}
		}
	})
	return errors.Join(errs...)
}

// EnvName is the environment variable of a flag: --data-dir ↔ TURBOLANE_DATA_DIR.
func EnvName(flagName string) string {
	return "TURBOLANE_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// syncInterval reads --nats-sync-interval; 0 means fsync before every ack.
func (c Config) syncInterval() (time.Duration, error) {
	if c.NATSSyncInterval == "" || c.NATSSyncInterval == "always" {
		return 0, nil
	}
	d, err := time.ParseDuration(c.NATSSyncInterval)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("--nats-sync-interval %q: want \"always\" or a positive duration", c.NATSSyncInterval)
	}
	return d, nil
}

func (c Config) largeFileBytes() (int64, error) {
	n, err := domain.ParseBytes(c.LargeFileBytes)
	if err != nil {
		return 0, fmt.Errorf("--large-file-bytes: %w", err)
	}
	return n, nil
}

func (c Config) pools() ([]string, error) {
	switch c.Pool {
	case "all", "":
		return []string{domain.PoolStandard, domain.PoolLarge}, nil
	case domain.PoolStandard, domain.PoolLarge:
		return []string{c.Pool}, nil
	}
	return nil, fmt.Errorf("--pool %q: want standard, large or all", c.Pool)
}

// processorTimeouts reads --processor-timeouts.
func (c Config) processorTimeouts() (map[domain.ProcessorType]time.Duration, error) {
	out := map[domain.ProcessorType]time.Duration{}
	if strings.TrimSpace(c.ProcessorTimeouts) == "" {
		return out, nil
	}
	for _, part := range strings.Split(c.ProcessorTimeouts, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return nil, fmt.Errorf("--processor-timeouts %q: want type=duration", part)
		}
		t, err := domain.ParseProcessorType(k)
		if err != nil {
			return nil, fmt.Errorf("--processor-timeouts: %w", err)
		}
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return nil, fmt.Errorf("--processor-timeouts %q: not a positive duration", part)
		}
		out[t] = d
	}
	return out, nil
}

func (c Config) bytesFlag(name, v string) (int64, error) {
	n, err := domain.ParseBytes(v)
	if err != nil {
		return 0, fmt.Errorf("--%s: %w", name, err)
	}
	return n, nil
}
