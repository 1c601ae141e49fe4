package domain

import (
	"encoding/json"
	"errors"
	"testing"
)

func TestValidateParams(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		typ  ProcessorType
		json string
		err  error
	}{
		{"ok", ImageConversion, `{"file_id":"f","output_format":"WEBP","quality":80}`, nil},
		{"missing file", ImageConversion, `{"output_format":"webp"}`, ErrValidation},
		{"missing format", ImageConversion, `{"file_id":"f"}`, ErrValidation},
		{"unknown format", ImageConversion, `{"file_id":"f","output_format":"xcf"}`, ErrUnsupported},
		{"quality 0", ImageConversion, `{"file_id":"f","output_format":"png","quality":0}`, ErrValidation},
		{"quality 101", ImageConversion, `{"file_id":"f","output_format":"png","quality":101}`, ErrValidation},
		{"quality float", ImageConversion, `{"file_id":"f","output_format":"png","quality":80.5}`, ErrValidation},
		{"quality string", ImageConversion, `{"file_id":"f","output_format":"png","quality":"80"}`, ErrValidation},
		{"unknown param", ImageConversion, `{"file_id":"f","output_format":"png","qualty":80}`, ErrValidation},
		{"compression defaults", ImageCompression, `{"file_id":"f"}`, nil},
		{"merge", PDFOperations, `{"operation":"merge","file_ids":["a","b"]}`, nil},
		{"merge one", PDFOperations, `{"operation":"merge","file_ids":["a"]}`, ErrValidation},
		{"encrypt no password", PDFOperations, `{"operation":"encrypt","file_id":"a"}`, ErrValidation},
		{"unknown op", PDFOperations, `{"operation":"shred","file_id":"a"}`, ErrValidation},
		{"rotate bad angle", PDFOperations, `{"operation":"rotate","file_id":"a","angle":45}`, ErrValidation},
		{"param of other op", PDFOperations, `{"operation":"info","file_id":"a","password":"x"}`, ErrValidation},
		{"trim", MediaProcessing, `{"operation":"trim","file_id":"a","start":1.5,"duration":2}`, nil},
		{"resize none", MediaProcessing, `{"operation":"resize","file_id":"a"}`, ErrValidation},
		{"bitrate ok", MediaProcessing, `{"operation":"transcode","file_id":"a","output_format":"mp4","bitrate":"2.5M"}`, nil},
		{"bitrate hostile", MediaProcessing, `{"operation":"transcode","file_id":"a","output_format":"mp4","bitrate":"1k -i /etc/passwd"}`, ErrValidation},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var p map[string]any
			if err := json.Unmarshal([]byte(c.json), &p); err != nil {
				t.Fatal(err)
			}
			out, files, err := ValidateParams(c.typ, p)
			if c.err == nil {
				if err != nil {
					t.Fatalf("unexpected error %v", err)
				}
				if len(files) == 0 {
					t.Fatal("no input files returned")
				}
				return
			}
			if !errors.Is(err, c.err) {
				t.Fatalf("want %v, got %v (%v)", c.err, err, out)
			}
		})
	}
	out, _, _ := ValidateParams(ImageCompression, map[string]any{"file_id": "f"})
	if out["quality"] != 75 || out["strip_metadata"] != true {
		t.Fatalf("defaults not filled: %v", out)
	}
	out, _, _ = ValidateParams(ImageConversion, map[string]any{"file_id": "f", "output_format": "WebP", "quality": 80.0})
	if out["quality"] != 80 || out["output_format"] != "webp" {
		t.Fatalf("normalisation: %#v", out)
	}
}

func FuzzValidateParams(f *testing.F) {
	f.Add("image_conversion", `{"file_id":"f","output_format":"webp","quality":80}`)
	f.Add("pdf_operations", `{"operation":"merge","file_ids":["a","b"]}`)
	f.Add("media_processing", `{"operation":"trim","file_id":"a","start":-1}`)
	f.Fuzz(func(t *testing.T, typ, body string) {
		var p map[string]any
		if json.Unmarshal([]byte(body), &p) != nil {
			return
		}
		out, files, err := ValidateParams(ProcessorType(typ), p)
		if err != nil {
			var de *Error
			if !errors.As(err, &de) || (de.Kind != KindInvalid) {
				t.Fatalf("validation must return a 422 domain error, got %v", err)
			}
			return
		}
		if len(files) == 0 || out == nil {
			t.Fatalf("accepted params without input files: %v", out)
		}
	})
}

func TestPlans(t *testing.T) {
	t.Parallel()
	l := DefaultPlanLimits()
	if l.MaxFileSize(PlanAnonymous) != 10<<20 || l.MaxFileSize(PlanBusiness) != 2<<30 {
		t.Fatal("defaults")
	}
	if !errors.Is(l.Check(PlanFree, 50<<20+1), ErrFileTooLarge) || l.Check(PlanFree, 50<<20) != nil {
		t.Fatal("free limit")
	}
	l2, err := ParsePlanLimits("anonymous=1MiB,pro=2GiB")
	if err != nil || l2[PlanAnonymous] != 1<<20 || l2[PlanPro] != 2<<30 || l2[PlanFree] != 50<<20 {
		t.Fatalf("parse: %v %v", l2, err)
	}
	if _, err := ParsePlanLimits("nonsense"); err == nil {
		t.Fatal("want error")
	}
}

func TestIDs(t *testing.T) {
	t.Parallel()
	id := NewJobID()
	if !ValidID("job", id) || ValidID("file", id) || ValidID("job", "job_../../etc") || ValidID("job", "job_*") {
		t.Fatalf("id validation: %s", id)
	}
}
