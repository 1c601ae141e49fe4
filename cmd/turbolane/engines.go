package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/convilyn/turbolane/domain"
	"github.com/convilyn/turbolane/workers"
	"github.com/convilyn/turbolane/workers/document"
	"github.com/convilyn/turbolane/workers/image"
	"github.com/convilyn/turbolane/workers/media"
	"github.com/convilyn/turbolane/workers/ocr"
	"github.com/convilyn/turbolane/workers/pdf"
	"github.com/convilyn/turbolane/workers/transcribe"
)

// limits turns the limit flags into the engines' limits.
func (c Config) limits() (workers.Limits, error) {
	mem, err := c.bytesFlag("engine-memory-limit", c.EngineMemoryLimit)
	if err != nil {
		return workers.Limits{}, err
	}
	out, err := c.bytesFlag("max-output-bytes", c.MaxOutputBytes)
	if err != nil {
		return workers.Limits{}, err
	}
	return workers.Limits{
		MaxPixels: c.MaxPixels, MaxPages: c.PDFMaxPages,
		MaxDurationSeconds: c.MaxMediaDuration.Seconds(), MaxOutputBytes: out, MemoryLimit: mem,
	}, nil
}

// buildEngines starts one engine per processor family and returns the
// registry and a function that stops the engines' long-lived helpers (warm
// LibreOffice instances …). Each engine registers in its own block below.
func buildEngines(cfg Config, limits workers.Limits, logger *slog.Logger) (workers.Registry, func() error, error) {
	registry := workers.Registry{}
	var closers []func() error
	closeAll := func() error {
		var errs []error
		for i := len(closers) - 1; i >= 0; i-- {
			errs = append(errs, closers[i]())
		}
		return errors.Join(errs...)
	}
	fail := func(what string, err error) (workers.Registry, func() error, error) {
		_ = closeAll()
		return nil, nil, fmt.Errorf("start %s engine: %w", what, err)
	}

	// --- images: libvips in process ---
	img, err := image.New()
	if err != nil {
		return fail("image", err)
	}
	registry.Register(img, domain.ImageConversion, domain.ImageCompression)

	// --- documents ---
	// LibreOffice starts at the first conversion, so that processes that
	// never convert a document (API-only nodes, most tests) pay nothing.
	docOpts := []document.Option{
		document.WithInstances(cfg.OfficeInstances), document.WithRestartAfter(cfg.OfficeRestartAfter),
		document.WithMemoryLimit(limits.MemoryLimit), document.WithLazyStart(),
	}
	if logger != nil {
		docOpts = append(docOpts, document.WithLogger(logger))
	}
	doc, err := document.New(context.Background(), docOpts...)
	if err != nil {
		return fail("document", err)
	}
	closers = append(closers, doc.Close)
	registry.Register(doc, domain.DocumentConversion)

	// --- PDF ---
	pdfEngine, err := pdf.New()
	if err != nil {
		return fail("pdf", err)
	}
	registry.Register(pdfEngine, domain.PDFOperations)

	// --- OCR ---
	ocrEngine, err := ocr.New(ocr.WithMaxPages(cfg.OCRMaxPages))
	if err != nil {
		return fail("ocr", err)
	}
	registry.Register(ocrEngine, domain.OCRProcessing)

	// --- media ---
	registry.Register(media.New(), domain.MediaProcessing)

	// --- transcription ---
	tr, err := transcribe.NewTranscriber(transcribe.Config{
		Name: cfg.Transcriber, WhisperCLI: cfg.WhisperCLI, WhisperModel: cfg.WhisperModel,
		OpenAIURL: cfg.OpenAIURL, OpenAIKey: cfg.OpenAIKey, OpenAIModel: cfg.OpenAIModel,
	})
	if err != nil {
		return fail("transcription", err)
	}
	speech, err := transcribe.New(tr)
	if err != nil {
		return fail("transcription", err)
	}
	registry.Register(speech, domain.AudioTranscription, domain.VideoTranscription)

	return registry, closeAll, nil
}
