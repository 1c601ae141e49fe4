package domain

import (
	"fmt"
	"math"
	"regexp"
	"sort"
	"strings"
)

// ProcessorType names a kind of work, as clients send it in processor_type.
type ProcessorType string

// The eight processor types of the contract.
const (
	ImageConversion    ProcessorType = "image_conversion"
	ImageCompression   ProcessorType = "image_compression"
	DocumentConversion ProcessorType = "document_conversion"
	OCRProcessing      ProcessorType = "ocr_processing"
	PDFOperations      ProcessorType = "pdf_operations"
	AudioTranscription ProcessorType = "audio_transcription"
	VideoTranscription ProcessorType = "video_transcription"
	MediaProcessing    ProcessorType = "media_processing"
)

// ParamKind is the JSON type of a parameter.
type ParamKind string

// Parameter kinds.
const (
	ParamString     ParamKind = "string"
	ParamInt        ParamKind = "integer"
	ParamNumber     ParamKind = "number"
	ParamBool       ParamKind = "boolean"
	ParamEnum       ParamKind = "enum"
	ParamFileID     ParamKind = "file_id"
	ParamFileIDList ParamKind = "file_id_list"
)

// ParamSpec describes one parameter of a processor.
type ParamSpec struct {
	Name        string    `json:"name"`
	Kind        ParamKind `json:"type"`
	Required    bool      `json:"required"`
	Default     any       `json:"default,omitempty"`
	Min         *float64  `json:"minimum,omitempty"`
	Max         *float64  `json:"maximum,omitempty"`
	Enum        []string  `json:"enum,omitempty"`
	Description string    `json:"description"`
	// Operations limits the parameter to these operations (pdf, media).
	Operations []string `json:"operations,omitempty"`
	// UnsupportedCode is the error code for a value outside Enum.
	unsupported bool
}

// Spec describes a processor type: what it reads, writes and accepts.
type Spec struct {
	Type          ProcessorType `json:"processorType"`
	Description   string        `json:"description"`
	Engine        string        `json:"engine"`
	Available     bool          `json:"available"`
	InputFormats  []string      `json:"inputFormats"`
	OutputFormats []string      `json:"outputFormats"`
	Operations    []string      `json:"operations,omitempty"`
	Params        []ParamSpec   `json:"params"`
}

func num(f float64) *float64 { return &f }

var imageOutputs = []string{"jpg", "jpeg", "png", "webp", "gif", "tiff", "bmp", "avif"}
var imageInputs = []string{"jpg", "jpeg", "png", "webp", "gif", "tiff", "bmp", "avif", "heic", "svg", "pdf"}

var specs = []Spec{
	{
		Type: ImageConversion, Engine: "libvips", Available: true,
		Description:  "Convert an image to another format, optionally resized.",
		InputFormats: imageInputs, OutputFormats: imageOutputs,
		Params: []ParamSpec{
			{Name: "file_id", Kind: ParamFileID, Required: true, Description: "the input image"},
			{Name: "output_format", Kind: ParamEnum, Required: true, Enum: imageOutputs, unsupported: true, Description: "the format to write"},
			{Name: "quality", Kind: ParamInt, Default: 85, Min: num(1), Max: num(100), Description: "encoder quality for lossy formats"},
			{Name: "maintain_aspect", Kind: ParamBool, Default: true, Description: "keep the aspect ratio when both width and height are given"},
			{Name: "optimize", Kind: ParamBool, Default: false, Description: "spend more effort for a smaller file and strip metadata"},
			{Name: "width", Kind: ParamInt, Min: num(1), Max: num(65535), Description: "target width in pixels"},
			{Name: "height", Kind: ParamInt, Min: num(1), Max: num(65535), Description: "target height in pixels"},
		},
	},
	{
		Type: ImageCompression, Engine: "libvips", Available: true,
		Description:  "Make an image smaller: re-encode, downscale, strip metadata.",
		InputFormats: imageInputs, OutputFormats: imageOutputs,
		Params: []ParamSpec{
			{Name: "file_id", Kind: ParamFileID, Required: true, Description: "the input image"},
			{Name: "quality", Kind: ParamInt, Default: 75, Min: num(1), Max: num(100), Description: "encoder quality for lossy formats"},
			{Name: "output_format", Kind: ParamEnum, Enum: imageOutputs, unsupported: true, Description: "the format to write (default: the input's)"},
			{Name: "max_width", Kind: ParamInt, Min: num(1), Max: num(65535), Description: "downscale to at most this width"},
			{Name: "max_height", Kind: ParamInt, Min: num(1), Max: num(65535), Description: "downscale to at most this height"},
			{Name: "lossless", Kind: ParamBool, Default: false, Description: "lossless encoding where the format has it (webp, png, avif)"},
			{Name: "strip_metadata", Kind: ParamBool, Default: true, Description: "remove EXIF, XMP and ICC metadata"},
		},
	},
	{
		Type: DocumentConversion, Engine: "libreoffice", Available: true,
		Description:   "Convert office documents, spreadsheets and presentations.",
		InputFormats:  []string{"doc", "docx", "odt", "rtf", "txt", "html", "xls", "xlsx", "ods", "csv", "ppt", "pptx", "odp"},
		OutputFormats: []string{"pdf", "docx", "odt", "rtf", "txt", "html", "xlsx", "ods", "csv", "pptx", "odp"},
		Params: []ParamSpec{
			{Name: "file_id", Kind: ParamFileID, Required: true, Description: "the input document"},
			{Name: "output_format", Kind: ParamEnum, Required: true, Enum: []string{"pdf", "docx", "odt", "rtf", "txt", "html", "xlsx", "ods", "csv", "pptx", "odp"}, unsupported: true, Description: "the format to write (per input family)"},
		},
	},
	{
		Type: OCRProcessing, Engine: "tesseract", Available: true,
		Description:   "Recognise text in images and scanned PDFs.",
		InputFormats:  []string{"png", "jpg", "jpeg", "tiff", "bmp", "webp", "gif", "pdf"},
		OutputFormats: []string{"txt", "hocr", "pdf", "json"},
		Params: []ParamSpec{
			{Name: "file_id", Kind: ParamFileID, Required: true, Description: "the input image or PDF"},
			{Name: "language", Kind: ParamString, Default: "eng", Description: "tesseract language code(s), e.g. eng or eng+deu"},
			{Name: "output_format", Kind: ParamEnum, Default: "txt", Enum: []string{"txt", "hocr", "pdf", "json"}, unsupported: true, Description: "txt, hocr, pdf (searchable) or json (words with boxes and confidence)"},
			{Name: "dpi", Kind: ParamInt, Default: 300, Min: num(70), Max: num(600), Description: "resolution PDF pages are rasterized at, and assumed for images without one"},
			{Name: "psm", Kind: ParamInt, Default: 3, Min: num(0), Max: num(13), Description: "tesseract page segmentation mode (3 = automatic, 6 = one block, 11 = sparse text)"},
		},
	},
	{
		Type: PDFOperations, Engine: "pdfcpu", Available: true,
		Description:   "Merge, split, rotate, compress, encrypt, decrypt, watermark, extract pages and inspect PDFs.",
		InputFormats:  []string{"pdf"},
		OutputFormats: []string{"pdf", "json", "zip"},
		Operations:    []string{"merge", "split", "rotate", "compress", "encrypt", "decrypt", "watermark", "extract_pages", "info"},
		Params: []ParamSpec{
			{Name: "operation", Kind: ParamEnum, Required: true, Enum: []string{"merge", "split", "rotate", "compress", "encrypt", "decrypt", "watermark", "extract_pages", "info"}, Description: "what to do"},
			{Name: "file_id", Kind: ParamFileID, Description: "the input PDF (all operations but merge)"},
			{Name: "file_ids", Kind: ParamFileIDList, Description: "the PDFs to merge, in order", Operations: []string{"merge"}},
			{Name: "pages", Kind: ParamString, Description: "page selection such as 1-3,5 or 4- (split: one result per part, default one per page; rotate and watermark: default every page)", Operations: []string{"split", "rotate", "extract_pages", "watermark"}},
			{Name: "angle", Kind: ParamInt, Default: 90, Description: "rotation: 90, 180 or 270", Operations: []string{"rotate"}},
			{Name: "password", Kind: ParamString, Description: "password to set (encrypt: AES-256, as user and owner password) or to open with (decrypt); other operations need an unencrypted input", Operations: []string{"encrypt", "decrypt"}},
			{Name: "text", Kind: ParamString, Description: "watermark text", Operations: []string{"watermark"}},
			{Name: "lossy", Kind: ParamBool, Default: false, Description: "downsample and re-encode images with ghostscript (smaller, lossy); otherwise pdfcpu's lossless optimize", Operations: []string{"compress"}},
			{Name: "quality", Kind: ParamEnum, Default: "ebook", Enum: []string{"screen", "ebook", "printer", "prepress"}, Description: "ghostscript preset for lossy compression: screen (72 dpi), ebook (150 dpi), printer (300 dpi), prepress", Operations: []string{"compress"}},
		},
	},
	{
		Type: AudioTranscription, Engine: "pocketsphinx", Available: true,
		Description:   "Transcribe speech in a recording.",
		InputFormats:  []string{"wav", "mp3", "m4a", "aac", "ogg", "opus", "flac"},
		OutputFormats: []string{"txt", "srt", "vtt", "json"},
		Params: []ParamSpec{
			{Name: "file_id", Kind: ParamFileID, Required: true, Description: "the recording"},
			{Name: "language", Kind: ParamString, Default: "en", Description: "spoken language"},
			{Name: "output_format", Kind: ParamEnum, Default: "txt", Enum: []string{"txt", "srt", "vtt", "json"}, unsupported: true, Description: "txt, srt, vtt or json with timestamps"},
		},
	},
	{
		Type: VideoTranscription, Engine: "ffmpeg+pocketsphinx", Available: true,
		Description:   "Transcribe the speech of a video's audio track.",
		InputFormats:  []string{"mp4", "mov", "mkv", "webm", "avi"},
		OutputFormats: []string{"txt", "srt", "vtt", "json"},
		Params: []ParamSpec{
			{Name: "file_id", Kind: ParamFileID, Required: true, Description: "the video"},
			{Name: "language", Kind: ParamString, Default: "en", Description: "spoken language"},
			{Name: "output_format", Kind: ParamEnum, Default: "txt", Enum: []string{"txt", "srt", "vtt", "json"}, unsupported: true, Description: "txt, srt, vtt or json with timestamps"},
		},
	},
	{
		Type: MediaProcessing, Engine: "ffmpeg", Available: true,
		Description:   "Transcode, trim, resize, extract audio from or take a thumbnail of audio and video.",
		InputFormats:  []string{"mp4", "mov", "mkv", "webm", "avi", "mp3", "m4a", "aac", "ogg", "opus", "wav", "flac"},
		OutputFormats: []string{"mp4", "webm", "mov", "mkv", "mp3", "m4a", "aac", "ogg", "opus", "wav", "flac", "jpg", "png"},
		Operations:    []string{"transcode", "extract_audio", "thumbnail", "trim", "resize"},
		Params: []ParamSpec{
			{Name: "file_id", Kind: ParamFileID, Required: true, Description: "the input media"},
			{Name: "operation", Kind: ParamEnum, Required: true, Enum: []string{"transcode", "extract_audio", "thumbnail", "trim", "resize"}, Description: "what to do"},
			{Name: "output_format", Kind: ParamEnum, Enum: []string{"mp4", "webm", "mov", "mkv", "mp3", "m4a", "aac", "ogg", "opus", "wav", "flac", "jpg", "png"}, unsupported: true, Description: "the container or image format to write"},
			{Name: "start", Kind: ParamNumber, Min: num(0), Description: "trim start in seconds", Operations: []string{"trim"}},
			{Name: "duration", Kind: ParamNumber, Min: num(0), Description: "trim length in seconds", Operations: []string{"trim"}},
			{Name: "time", Kind: ParamNumber, Min: num(0), Description: "thumbnail position in seconds (default 10% into the media)", Operations: []string{"thumbnail"}},
			{Name: "width", Kind: ParamInt, Min: num(2), Max: num(7680), Description: "target width", Operations: []string{"resize"}},
			{Name: "height", Kind: ParamInt, Min: num(2), Max: num(4320), Description: "target height", Operations: []string{"resize"}},
			{Name: "bitrate", Kind: ParamString, Description: "target bitrate such as 128k or 2M"},
			{Name: "video_codec", Kind: ParamEnum, Enum: []string{"h264", "h265", "vp9", "av1"}, unsupported: true, Description: "video codec (default: h264 for mp4, mov and mkv, vp9 for webm)", Operations: []string{"transcode", "trim", "resize"}},
			{Name: "audio_codec", Kind: ParamEnum, Enum: []string{"aac", "mp3", "opus", "vorbis", "flac", "pcm"}, unsupported: true, Description: "audio codec (default: the output format's usual one)", Operations: []string{"transcode", "trim", "resize", "extract_audio"}},
		},
	},
}

// Specs returns every processor spec, in catalog order.
func Specs() []Spec {
	out := make([]Spec, len(specs))
	copy(out, specs)
	return out
}

// LookupSpec returns the spec of a processor type.
func LookupSpec(t ProcessorType) (Spec, bool) {
	for _, s := range specs {
		if s.Type == t {
			return s, true
		}
	}
	return Spec{}, false
}

// ProcessorTypes lists every processor type name.
func ProcessorTypes() []string {
	out := make([]string, len(specs))
	for i, s := range specs {
		out[i] = string(s.Type)
	}
	return out
}

// ParseProcessorType validates a processor type name.
func ParseProcessorType(s string) (ProcessorType, error) {
	if s == "" {
		return "", Validationf("processor_type is required")
	}
	if _, ok := LookupSpec(ProcessorType(s)); !ok {
		return "", Validationf("unknown processor_type %q; one of %s", s, strings.Join(ProcessorTypes(), ", "))
	}
	return ProcessorType(s), nil
}

// ValidateParams checks params against the spec of t and returns them with
// defaults filled in and numbers normalised (integers as int), plus the input
// file ids they name, in order. It rejects unknown parameters, so that a typo
// is an error rather than a silent default.
func ValidateParams(t ProcessorType, params map[string]any) (map[string]any, []string, error) {
	spec, ok := LookupSpec(t)
	if !ok {
		return nil, nil, Validationf("unknown processor_type %q", t)
	}
	out := make(map[string]any, len(params))
	known := map[string]ParamSpec{}
	for _, p := range spec.Params {
		known[p.Name] = p
	}
	names := make([]string, 0, len(params))
	for k := range params {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		p, ok := known[k]
		if !ok {
			return nil, nil, Validationf("params.%s is not a parameter of %s", k, t)
		}
		v, err := p.check(params[k])
		if err != nil {
			return nil, nil, err
		}
		out[k] = v
	}
	op, _ := out["operation"].(string)
	for _, p := range spec.Params {
		_, present := out[p.Name]
		if len(p.Operations) > 0 && present && !contains(p.Operations, op) {
			return nil, nil, Validationf("params.%s does not apply to operation %q", p.Name, op)
		}
		if !present && p.Required {
			return nil, nil, Validationf("params.%s is required for %s", p.Name, t)
		}
		if !present && p.Default != nil && (len(p.Operations) == 0 || contains(p.Operations, op)) {
			out[p.Name] = p.Default
		}
	}
	files, err := inputFiles(t, op, out)
	if err != nil {
		return nil, nil, err
	}
	if err := crossCheck(t, op, out); err != nil {
		return nil, nil, err
	}
	return out, files, nil
}

func inputFiles(t ProcessorType, op string, p map[string]any) ([]string, error) {
	if t == PDFOperations && op == "merge" {
		ids, _ := p["file_ids"].([]string)
		if len(ids) < 2 {
			return nil, Validationf("params.file_ids needs at least two PDFs to merge")
		}
		if _, ok := p["file_id"]; ok {
			return nil, Validationf("merge takes params.file_ids, not params.file_id")
		}
		return ids, nil
	}
	id, _ := p["file_id"].(string)
	if id == "" {
		return nil, Validationf("params.file_id is required for %s", t)
	}
	return []string{id}, nil
}

// bitratePattern is what ffmpeg's -b:v/-b:a accept that we let through.
var bitratePattern = regexp.MustCompile(`^[1-9][0-9]{0,8}(\.[0-9]{1,3})?[kKmM]?$`)

func crossCheck(t ProcessorType, op string, p map[string]any) error {
	switch t {
	case PDFOperations:
		switch op {
		case "encrypt", "decrypt":
			if s, _ := p["password"].(string); s == "" {
				return Validationf("params.password is required for %s", op)
			}
		case "watermark":
			if s, _ := p["text"].(string); s == "" {
				return Validationf("params.text is required for watermark")
			}
		case "extract_pages":
			if s, _ := p["pages"].(string); s == "" {
				return Validationf("params.pages is required for extract_pages")
			}
		case "rotate":
			if a, _ := p["angle"].(int); a%90 != 0 || a == 0 || a < -270 || a > 270 {
				return Validationf("params.angle must be 90, 180 or 270")
			}
		}
	case MediaProcessing:
		if b, ok := p["bitrate"].(string); ok && !bitratePattern.MatchString(b) {
			return Validationf("params.bitrate must look like 128k, 2.5M or 96000; got %q", b)
		}
		if op == "resize" {
			if _, w := p["width"]; !w {
				if _, h := p["height"]; !h {
					return Validationf("resize needs params.width or params.height")
				}
			}
		}
		if op == "trim" {
			if _, ok := p["duration"]; !ok {
				if _, ok := p["start"]; !ok {
					return Validationf("trim needs params.start or params.duration")
				}
			}
		}
	}
	return nil
}

func (p ParamSpec) check(v any) (any, error) {
	name := "params." + p.Name
	switch p.Kind {
	case ParamString, ParamFileID:
		s, ok := v.(string)
		if !ok {
			return nil, Validationf("%s must be a string", name)
		}
		if p.Kind == ParamFileID && s == "" {
			return nil, Validationf("%s must not be empty", name)
		}
		if len(s) > 4096 {
			return nil, Validationf("%s is too long", name)
		}
		return s, nil
	case ParamEnum:
		s, ok := v.(string)
		if !ok {
			return nil, Validationf("%s must be a string", name)
		}
		s = strings.ToLower(s)
		if !contains(p.Enum, s) {
			e := Validationf("%s must be one of %s, got %q", name, strings.Join(p.Enum, ", "), s)
			if p.unsupported {
				e = Unsupportedf("%s %q is not supported; one of %s", name, s, strings.Join(p.Enum, ", "))
			}
			return nil, e
		}
		return s, nil
	case ParamBool:
		b, ok := v.(bool)
		if !ok {
			return nil, Validationf("%s must be true or false", name)
		}
		return b, nil
	case ParamInt, ParamNumber:
		f, ok := toFloat(v)
		if !ok {
			return nil, Validationf("%s must be a number", name)
		}
		if p.Kind == ParamInt && f != math.Trunc(f) {
			return nil, Validationf("%s must be an integer", name)
		}
		if (p.Min != nil && f < *p.Min) || (p.Max != nil && f > *p.Max) {
			return nil, Validationf("%s must be between %s and %s, got %v", name, bound(p.Min), bound(p.Max), f)
		}
		if p.Kind == ParamInt {
			return int(f), nil
		}
		return f, nil
	case ParamFileIDList:
		list, ok := v.([]any)
		if !ok {
			if ss, ok2 := v.([]string); ok2 {
				return ss, nil
			}
			return nil, Validationf("%s must be an array of file ids", name)
		}
		if len(list) > 50 {
			return nil, Validationf("%s takes at most 50 files", name)
		}
		ids := make([]string, 0, len(list))
		for _, x := range list {
			s, ok := x.(string)
			if !ok || s == "" {
				return nil, Validationf("%s must contain file id strings", name)
			}
			ids = append(ids, s)
		}
		return ids, nil
	}
	return nil, fmt.Errorf("param %s: unknown kind %s", p.Name, p.Kind)
}

func toFloat(v any) (float64, bool) {
	switch n := v.(type) {
	case float64:
		return n, true
	case int:
		return float64(n), true
	case int64:
		return float64(n), true
	}
	return 0, false
}

func bound(f *float64) string {
	if f == nil {
		return "any"
	}
	return fmt.Sprint(*f)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// IntParam reads an integer parameter from validated params.
func IntParam(p map[string]any, name string, def int) int {
	switch v := p[name].(type) {
	case int:
		return v
	case float64:
		return int(v)
	}
	return def
}

// BoolParam reads a boolean parameter from validated params.
func BoolParam(p map[string]any, name string, def bool) bool {
	if v, ok := p[name].(bool); ok {
		return v
	}
	return def
}

// StringParam reads a string parameter from validated params.
func StringParam(p map[string]any, name, def string) string {
	if v, ok := p[name].(string); ok && v != "" {
		return v
	}
	return def
}
