// Package media is the ffmpeg engine behind media_processing: transcode,
// extract_audio, thumbnail, trim and resize of audio and video. Every input is
// probed with ffprobe first (not media → unsupported_format, a damaged file
// of a known container → corrupt_input, longer than the duration limit or
// larger than the pixel limit → input_too_large). ffprobe and ffmpeg run
// through workers/subprocess (no shell, own process group, address-space
// limit) with -protocol_whitelist file,pipe, a -format_whitelist of plain
// media containers and inputs given as file: paths, so a playlist (HLS) or
// concat file cannot make them read local files or reach the network.
// Progress comes from ffmpeg -progress; the result size is bounded with -fs.
//
// Probe and ExtractWAV are shared with the transcription engine.
package media
