package transcribe

import (
	"errors"
	"fmt"
	"os/exec"
)

// ErrBadConfig is returned by NewTranscriber for an unusable configuration.
var ErrBadConfig = errors.New("bad transcriber configuration")

// Config names a Transcriber and its settings, as the service's flags give
// them.
type Config struct {
	// Name is "pocketsphinx" (default), "whisper" or "openai".
	Name         string
	WhisperCLI   string
	WhisperModel string
	OpenAIURL    string
	OpenAIKey    string
	OpenAIModel  string
}

// NewTranscriber builds the Transcriber c names and checks that what it
// needs is there.
func NewTranscriber(c Config) (Transcriber, error) {
	switch c.Name {
	case "", "pocketsphinx":
		if _, err := exec.LookPath("pocketsphinx_continuous"); err != nil {
			return nil, fmt.Errorf("pocketsphinx_continuous (Debian pocketsphinx) not found: %w", ErrBadConfig)
		}
		return Pocketsphinx{}, nil
	case "whisper", "whisper.cpp", "whisper-cli":
		if c.WhisperCLI == "" || c.WhisperModel == "" {
			return nil, fmt.Errorf("--transcriber whisper needs --whisper-cli and --whisper-model: %w", ErrBadConfig)
		}
		if _, err := exec.LookPath(c.WhisperCLI); err != nil {
			return nil, fmt.Errorf("whisper-cli %q not found: %w", c.WhisperCLI, ErrBadConfig)
		}
		return WhisperCPP{CLI: c.WhisperCLI, Model: c.WhisperModel}, nil
	case "openai":
		if c.OpenAIURL == "" {
			return nil, fmt.Errorf("--transcriber openai needs --openai-url: %w", ErrBadConfig)
		}
		return OpenAI{URL: c.OpenAIURL, Key: c.OpenAIKey, Model: c.OpenAIModel}, nil
	}
	return nil, fmt.Errorf("unknown transcriber %q (want pocketsphinx, whisper or openai): %w", c.Name, ErrBadConfig)
}
