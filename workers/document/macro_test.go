package document

import (
	"archive/zip"
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// macroODT is a text document whose Basic macro, bound to the document's
// load event, writes marker.
func macroODT(t *testing.T, marker string) []byte {
	t.Helper()
	listener := func(event string) string {
		return `<script:event-listener script:language="ooo:script" script:event-name="` + event +
			`" xlink:href="vnd.sun.star.script:Standard.Module1.Main?language=Basic&amp;location=document" xlink:type="simple"/>`
	}
	files := []struct{ name, body string }{
		{"mimetype", "application/vnd.oasis.opendocument.text"},
		{"content.xml", `<?xml version="1.0" encoding="UTF-8"?>
<office:document-content xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" xmlns:script="urn:oasis:names:tc:opendocument:xmlns:script:1.0" xmlns:xlink="http://www.w3.org/1999/xlink" xmlns:dom="http://www.w3.org/2001/xml-events" office:version="1.2">
<office:scripts><office:event-listeners>` + listener("dom:load") + listener("office:load") + `</office:event-listeners></office:scripts>
<office:body><office:text><text:p>A document with an auto-run macro</text:p></office:text></office:body></office:document-content>`},
		{"Basic/Standard/Module1.xml", `<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE script:module PUBLIC "-//OpenOffice.org//DTD OfficeDocument 1.0//EN" "module.dtd">
<script:module xmlns:script="http://openoffice.org/2000/script" script:name="Module1" script:language="StarBasic">Sub Main
  Open "` + marker + `" For Output As #1
  Print #1, "macro ran"
  Close #1
End Sub
</script:module>`},
		{"Basic/Standard/script-lb.xml", `<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE library:library PUBLIC "-//OpenOffice.org//DTD OfficeDocument 1.0//EN" "library.dtd">
<library:library xmlns:library="http://openoffice.org/2000/library" library:name="Standard" library:readonly="false" library:passwordprotected="false"><library:element library:name="Module1"/></library:library>`},
		{"Basic/script-lc.xml", `<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE library:libraries PUBLIC "-//OpenOffice.org//DTD OfficeDocument 1.0//EN" "libraries.dtd">
<library:libraries xmlns:library="http://openoffice.org/2000/library" xmlns:xlink="http://www.w3.org/1999/xlink"><library:library library:name="Standard" library:link="false"/></library:libraries>`},
		{"META-INF/manifest.xml", `<?xml version="1.0" encoding="UTF-8"?>
<manifest:manifest xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0" manifest:version="1.2">
 <manifest:file-entry manifest:full-path="/" manifest:media-type="application/vnd.oasis.opendocument.text"/>
 <manifest:file-entry manifest:full-path="content.xml" manifest:media-type="text/xml"/>
 <manifest:file-entry manifest:full-path="Basic/" manifest:media-type=""/>
 <manifest:file-entry manifest:full-path="Basic/Standard/" manifest:media-type=""/>
 <manifest:file-entry manifest:full-path="Basic/Standard/Module1.xml" manifest:media-type="text/xml"/>
 <manifest:file-entry manifest:full-path="Basic/Standard/script-lb.xml" manifest:media-type="text/xml"/>
 <manifest:file-entry manifest:full-path="Basic/script-lc.xml" manifest:media-type="text/xml"/>
</manifest:manifest>`},
	}
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, f := range files {
		method := zip.Deflate
		if f.name == "mimetype" {
			method = zip.Store
		}
		w, err := zw.CreateHeader(&zip.FileHeader{Name: f.name, Method: method})
		require.NoError(t, err)
		_, err = w.Write([]byte(f.body))
		require.NoError(t, err)
	}
	require.NoError(t, zw.Close())
	return buf.Bytes()
}

// TestMacrosNeverRun converts documents whose load-event macro would write
// a file, to several formats, and checks that the file never appears and
// that the instance runs with macros disabled.
func TestMacrosNeverRun(t *testing.T) {
	e := shared(t)
	marker := filepath.Join(t.TempDir(), "macro-ran")
	src := writeFile(t, "macro.odt", string(macroODT(t, marker)))
	for _, target := range []string{"pdf", "docx", "odt"} {
		out, err := convert(t, e, src, "macro.odt", target)
		require.NoError(t, err)
		require.FileExists(t, out.Path)
		require.NoFileExists(t, marker, "the document's macro ran during the %s conversion", target)
	}
	xcu, err := os.ReadFile(filepath.Join(e.all[0].dir, "profile", "user", "registrymodifications.xcu"))
	require.NoError(t, err)
	for _, want := range []string{
		`<prop oor:name="MacroSecurityLevel" oor:op="fuse"><value>3</value>`,
		`<prop oor:name="DisableMacrosExecution" oor:op="fuse"><value>true</value>`,
	} {
		require.True(t, strings.Contains(string(xcu), want), "profile lacks %s", want)
	}
}
