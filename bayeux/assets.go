package bayeux

import (
	"bytes"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"net/http"
	"strings"
	"time"
)

// recoveryScript is the faye client extension that Bayou serves at
// {mount}/extensions/recovery.js (see the comment at its top): it resumes
// history channels after a new handshake, drops the copies an
// acknowledged session may get again, and turns acknowledgements on.
//
//go:embed recovery.js
var recoveryScript []byte

// extensionsDir is the path below the mount where client extensions are
// served.
const extensionsDir = "/extensions/"

// extensionScripts are the files served below {mount}/extensions/.
var extensionScripts = map[string]*asset{
	"recovery.js": newAsset(recoveryScript),
}

// asset is an embedded file served with a validator.
type asset struct {
	body []byte
	etag string
}

func newAsset(body []byte) *asset {
	sum := sha256.Sum256(body)
	return &asset{body: body, etag: `"` + hex.EncodeToString(sum[:16]) + `"`}
}

// serveExtensionScript answers GET and HEAD {mount}/extensions/<name> with
// the embedded script of that name (rest is the path below the mount), and
// 404 for any other name.
func (s *Server) serveExtensionScript(w http.ResponseWriter, r *http.Request, rest string) {
	a := extensionScripts[strings.TrimPrefix(rest, extensionsDir)]
	if a == nil {
		http.NotFound(w, r)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "Method not allowed", http.StatusMethodNotAllowed)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/javascript; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	// Revalidated every hour: a client does not run an old copy for long
	// after the server was upgraded.
	h.Set("Cache-Control", "public, max-age=3600")
	h.Set("ETag", a.etag)
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(a.body))
}
