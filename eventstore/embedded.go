package eventstore

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// EmbeddedConfig configures the in-process nats-server of `turbolane serve`.
type EmbeddedConfig struct {
	// DataDir is the JetStream store directory (the server keeps its files
	// in DataDir/jetstream); turbolane passes <data-dir>/nats. Required.
	DataDir string
	// Listen is the client listener as host:port. Empty means no listener at
	// all (in-process connections only); port 0 picks a free port.
	Listen string
	// SyncInterval is how often JetStream fsyncs. Zero means fsync before
	// every ack ("sync_interval: always"): Jepsen lost acknowledged writes on
	// power failure with the 2-minute default, so only an operator who
	// accepts that risk should relax it.
	SyncInterval time.Duration
	// MaxStore caps JetStream disk usage in bytes; 0 leaves the server's
	// default (a share of the free disk).
	MaxStore int64

	// ServerName names this server; required by JetStream clustering.
	ServerName string
	// ClusterName, ClusterListen (host:port) and Routes (nats-route://host:port)
	// join this server to a cluster; all empty means standalone.
	ClusterName   string
	ClusterListen string
	Routes        []string

	// Logger receives the server's log; nil keeps it silent.
	Logger server.Logger
}

// StartEmbedded starts a nats-server with JetStream on local disk and waits
// until it accepts connections. The caller owns the server and must call
// Shutdown (and WaitForShutdown) on it.
func StartEmbedded(cfg EmbeddedConfig) (*server.Server, error) {
	opts, err := serverOptions(cfg)
	if err != nil {
		return nil, err
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("create embedded nats-server: %w", err)
	}
	// The server reports fatal configuration problems only through its
	// logger; catch them to fail fast with the reason.
	log := &startLogger{next: cfg.Logger, fatal: make(chan string, 1)}
	srv.SetLoggerV2(log, false, false, false)
	go srv.Start()
	deadline := time.Now().Add(30 * time.Second)
	for !srv.ReadyForConnections(50 * time.Millisecond) {
		select {
		case msg := <-log.fatal:
			srv.Shutdown()
			srv.WaitForShutdown()
			return nil, fmt.Errorf("start embedded nats-server: %s", msg)
		default:
		}
		if time.Now().After(deadline) {
			srv.Shutdown()
			srv.WaitForShutdown()
			return nil, errors.New("start embedded nats-server: not ready for connections after 30s")
		}
	}
	if !srv.JetStreamEnabled() {
		srv.Shutdown()
		srv.WaitForShutdown()
		return nil, errors.New("start embedded nats-server: jetstream did not start")
	}
	return srv, nil
}

func serverOptions(cfg EmbeddedConfig) (*server.Options, error) {
	if cfg.DataDir == "" {
		return nil, errors.New("start embedded nats-server: a data directory is required")
	}
	if cfg.SyncInterval < 0 {
		return nil, fmt.Errorf("start embedded nats-server: negative sync interval %s", cfg.SyncInterval)
	}
	opts := &server.Options{
		ServerName:        cfg.ServerName,
		JetStream:         true,
		StoreDir:          cfg.DataDir,
		JetStreamMaxStore: cfg.MaxStore,
		NoSigs:            true,
	}
	if cfg.SyncInterval == 0 {
		opts.SyncAlways = true
	} else {
		opts.SyncInterval = cfg.SyncInterval
	}
	if cfg.Listen == "" {
		opts.DontListen = true
	} else {
		host, port, err := splitHostPort(cfg.Listen)
		if err != nil {
			return nil, fmt.Errorf("start embedded nats-server: client listen address: %w", err)
		}
		opts.Host, opts.Port = host, port
	}
	if cfg.ClusterName != "" || cfg.ClusterListen != "" || len(cfg.Routes) > 0 {
		if cfg.ClusterName == "" || cfg.ClusterListen == "" || cfg.ServerName == "" {
			return nil, errors.New("start embedded nats-server: clustering needs a server name, a cluster name and a cluster listen address")
		}
		host, port, err := splitHostPort(cfg.ClusterListen)
		if err != nil {
			return nil, fmt.Errorf("start embedded nats-server: cluster listen address: %w", err)
		}
		opts.Cluster.Name = cfg.ClusterName
		opts.Cluster.Host, opts.Cluster.Port = host, port
		if len(cfg.Routes) > 0 {
			for _, r := range cfg.Routes {
				u, err := url.Parse(r)
				if err != nil || u.Scheme == "" || u.Host == "" {
					return nil, fmt.Errorf("start embedded nats-server: invalid route %q (want nats-route://host:port)", r)
				}
				opts.Routes = append(opts.Routes, u)
			}
		}
	}
	return opts, nil
}

// splitHostPort parses host:port; port 0 asks the server for a random port
// (nats-server reads 0 as "the default port", so it becomes RANDOM_PORT).
func splitHostPort(addr string) (string, int, error) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < 0 || port > 65535 {
		return "", 0, fmt.Errorf("invalid port %q", p)
	}
	if port == 0 {
		port = server.RANDOM_PORT
	}
	return host, port, nil
}

// ConnectEmbedded connects to an embedded server in process, without a socket.
func ConnectEmbedded(srv *server.Server) (*nats.Conn, error) {
	if srv == nil {
		return nil, errors.New("connect to embedded nats-server: nil server")
	}
	nc, err := nats.Connect("", nats.InProcessServer(srv), nats.Name("turbolane-embedded"), nats.MaxReconnects(-1))
	if err != nil {
		return nil, fmt.Errorf("connect to embedded nats-server: %w", err)
	}
	return nc, nil
}

// Connect connects to an external NATS server or cluster and keeps
// reconnecting forever after the first successful connection.
func Connect(url, name string) (*nats.Conn, error) {
	if url == "" {
		return nil, errors.New("connect to nats: empty url")
	}
	nc, err := nats.Connect(url, nats.Name(name), nats.MaxReconnects(-1), nats.ReconnectWait(time.Second))
	if err != nil {
		return nil, fmt.Errorf("connect to nats at %s: %w", url, err)
	}
	return nc, nil
}

// startLogger forwards the server's log to next (if any) and hands the
// first fatal message to StartEmbedded.
type startLogger struct {
	next  server.Logger
	fatal chan string
}

func (l *startLogger) Noticef(format string, v ...any) {
	if l.next != nil {
		l.next.Noticef(format, v...)
	}
}

func (l *startLogger) Warnf(format string, v ...any) {
	if l.next != nil {
		l.next.Warnf(format, v...)
	}
}

func (l *startLogger) Errorf(format string, v ...any) {
	if l.next != nil {
		l.next.Errorf(format, v...)
	}
}

func (l *startLogger) Debugf(format string, v ...any) {
	if l.next != nil {
		l.next.Debugf(format, v...)
	}
}

func (l *startLogger) Tracef(format string, v ...any) {
	if l.next != nil {
		l.next.Tracef(format, v...)
	}
}

func (l *startLogger) Fatalf(format string, v ...any) {
	msg := fmt.Sprintf(format, v...)
	select {
	case l.fatal <- msg:
	default:
	}
	if l.next != nil {
		l.next.Errorf("fatal: %s", msg)
	}
}
