package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

const usage = `turbolane — the Turbo Lane file-processing service

Usage:
  turbolane serve   [flags]   API, workers, embedded NATS and blob store in one process
  turbolane api     [flags]   the HTTP API only
  turbolane worker  [flags]   worker pool(s) only (--pool standard|large|all)
  turbolane replay  [flags]   rebuild the read views from the event log (--verify compares)
  turbolane convert FILE... --to FORMAT [--processor TYPE] [--param k=v]... [--out DIR] [--zip]
                              upload, convert with progress bars, download the results
  turbolane jobs list|get|retry|delete   the caller's jobs
  turbolane events JOB_ID [--verify]     a job's event timeline; --verify replays it through the state machine
  turbolane version           print the version

Every flag has an environment variable: --data-dir ↔ TURBOLANE_DATA_DIR.
Run "turbolane serve -h" for the flags. The client commands take --server URL
(default http://127.0.0.1:8080, env TURBOLANE_SERVER) and --api-key KEY
(env TURBOLANE_API_KEY).
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "turbolane:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errors.New("missing command")
	}
	cmd, rest := args[0], args[1:]
	cfg := DefaultConfig()
	switch cmd {
	case "serve", "api", "worker":
		if err := cfg.parseFlags(cmd, rest, nil); err != nil {
			return err
		}
		return runRole(ctx, Role(cmd), cfg, stderr)
	case "replay":
		if err := cfg.parseFlags(cmd, rest, func(fs *flag.FlagSet) {
			fs.BoolVar(&cfg.Verify, "verify", false, "rebuild into a temporary view and compare it with the live one instead of replacing it")
		}); err != nil {
			return err
		}
		return replay(ctx, cfg, stdout, newLogger(cfg, stderr))
	case "convert":
		return runConvert(ctx, rest, stdout, stderr)
	case "jobs":
		return runJobs(ctx, rest, stdout, stderr)
	case "events":
		return runEvents(ctx, rest, stdout, stderr)
	case "version", "--version", "-v":
		fmt.Fprintln(stdout, "turbolane", version)
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("unknown command %q", cmd)
}

// runRole runs one role until ctx is cancelled (SIGTERM/SIGINT), then shuts
// down gracefully: stop taking work, hand back in-flight jobs, flush, exit 0.
func runRole(ctx context.Context, role Role, cfg Config, stderr io.Writer) error {
	m := NewMain(role, cfg, newLogger(cfg, stderr))
	if err := m.Run(ctx); err != nil {
		_ = m.Close()
		return err
	}
	<-ctx.Done()
	m.Logger.Info("shutting down", "role", role)
	return m.Close()
}

func newLogger(cfg Config, w io.Writer) *slog.Logger {
	var level slog.Level
	if err := level.UnmarshalText([]byte(cfg.LogLevel)); err != nil {
		level = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: level}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
