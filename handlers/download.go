package handlers

import (
	"archive/zip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path"
	"strings"

	"github.com/convilyn/turbolane/domain"
)

// maxDownloadJobs is the contract's limit of jobs per ZIP.
const maxDownloadJobs = 20

type downloadRequest struct {
	JobIDs []string `json:"jobIds"`
}

type manifest struct {
	Included []manifestJob     `json:"included"`
	Skipped  []manifestSkipped `json:"skipped"`
}

type manifestJob struct {
	JobID string `json:"jobId"`
	// Files are the entry names inside the job's folder.
	Files []string `json:"files"`
}

type manifestSkipped struct {
	JobID  string `json:"jobId"`
	Reason string `json:"reason"`
}

// downloadJobs streams the results of the caller's completed jobs as one
// ZIP. Which jobs go in is decided before the first byte, so "none" can
// still be a clean 404; a result whose bytes vanish while streaming is left
// out and named in the manifest, which is written last for that reason.
func (s *server) downloadJobs(w http.ResponseWriter, r *http.Request) {
	id, err := user(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var req downloadRequest
	if err := decodeJSON(w, r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	if n := len(req.JobIDs); n < 1 || n > maxDownloadJobs {
		s.writeError(w, r, domain.Validationf("jobIds must hold between 1 and %d ids, got %d", maxDownloadJobs, n))
		return
	}
	m := manifest{Included: []manifestJob{}, Skipped: []manifestSkipped{}}
	var included []domain.Job
	seen := map[string]bool{}
	for _, jid := range req.JobIDs {
		if seen[jid] {
			continue
		}
		seen[jid] = true
		j, err := s.ownedJob(r.Context(), id.UserID, jid)
		switch {
		case errors.Is(err, domain.ErrJobNotFound):
			m.Skipped = append(m.Skipped, manifestSkipped{JobID: jid, Reason: "not_found"})
		case err != nil:
			s.writeError(w, r, err)
			return
		case j.Status != domain.StatusCompleted:
			m.Skipped = append(m.Skipped, manifestSkipped{JobID: jid, Reason: "not_completed: the job is " + string(j.Status)})
		default:
			included = append(included, j)
		}
	}
	if len(included) == 0 {
		s.writeError(w, r, domain.ErrNoCompletedJobs.WithMessage("none of the %d jobs is a completed job of yours", len(seen)))
		return
	}

	w.Header().Set("Content-Type", "application/zip")
	w.Header().Set("Content-Disposition", attachment("turbolane-results.zip"))
	w.WriteHeader(http.StatusOK)
	zw := zip.NewWriter(w)
	for _, j := range included {
		mj := manifestJob{JobID: j.ID, Files: []string{}}
		names := map[string]bool{}
		for _, f := range j.ResultFiles {
			name := uniqueName(names, f.FileName)
			if err := s.zipFile(r, zw, j.ID+"/"+name, f.FileID); err != nil {
				s.log.Warn("leave a result out of the zip", "job", j.ID, "file", f.FileID, "err", err)
				if errors.Is(err, errZipBroken) {
					return // the stream is broken; the client sees a truncated archive
				}
				continue
			}
			mj.Files = append(mj.Files, name)
		}
		m.Included = append(m.Included, mj)
	}
	mf, err := zw.Create("manifest.json")
	if err == nil {
		enc := json.NewEncoder(mf)
		enc.SetIndent("", "  ")
		err = enc.Encode(m)
	}
	if err == nil {
		err = zw.Close()
	}
	if err != nil {
		s.log.Info("zip download cut short", "err", err)
	}
}

// errZipBroken means writing to the client failed mid-archive.
var errZipBroken = errors.New("zip stream broken")

func (s *server) zipFile(r *http.Request, zw *zip.Writer, name, fileID string) error {
	rc, _, err := s.deps.Blobs.Get(r.Context(), fileID)
	if err != nil {
		return fmt.Errorf("open result %s: %w", fileID, err)
	}
	defer rc.Close()
	// Opening the blob before creating the entry keeps a missing blob from
	// leaving an empty entry behind; a read failure after this point does.
	ew, err := zw.Create(name)
	if err != nil {
		return fmt.Errorf("%w: %w", errZipBroken, err)
	}
	if _, err := io.Copy(ew, rc); err != nil {
		return fmt.Errorf("%w: copy result %s: %w", errZipBroken, fileID, err)
	}
	return nil
}

// uniqueName makes a safe entry name out of a result file name, unique
// within its job's folder.
func uniqueName(seen map[string]bool, name string) string {
	name = path.Base(strings.ReplaceAll(name, `\`, "/"))
	if name == "." || name == "/" || name == ".." || name == "" {
		name = "result"
	}
	base, ext := strings.TrimSuffix(name, path.Ext(name)), path.Ext(name)
	for i := 2; seen[name]; i++ {
		name = fmt.Sprintf("%s-%d%s", base, i, ext)
	}
	seen[name] = true
	return name
}
