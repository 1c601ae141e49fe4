// Package transcribe is the engine behind audio_transcription and
// video_transcription. It probes the input with workers/media (no audio
// track, truncated, empty or over-long inputs fail with their codes), cuts
// the first audio track into chunks of 16 kHz mono 16-bit WAV with ffmpeg
// one at a time (so memory and temporary disk stay bounded however long the
// recording is), hands each chunk to a Transcriber and writes the joined
// segments as txt, srt, vtt or json.
//
// Three Transcribers exist: Pocketsphinx (Debian's pocketsphinx_continuous
// with the pocketsphinx-en-us model, the offline default), WhisperCPP
// (whisper.cpp's whisper-cli with a model file) and OpenAI (an
// OpenAI-compatible POST /v1/audio/transcriptions endpoint). WER measures
// the word error rate of a hypothesis against a reference.
package transcribe
