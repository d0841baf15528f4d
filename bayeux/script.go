package bayeux

import (
	"bytes"
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"
)

// clientScript is the browser bundle named by Config.ClientScript, read once
// when the server starts.
type clientScript struct {
	body    []byte
	map_    []byte // the source map beside it, if any
	etag    string
	modTime time.Time
}

func loadClientScript(path string) (*clientScript, error) {
	body, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("bayeux: reading client script: %w", err)
	}
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("bayeux: reading client script: %w", err)
	}
	sum := sha1.Sum(body)
	cs := &clientScript{body: body, etag: `"` + hex.EncodeToString(sum[:]) + `"`, modTime: st.ModTime()}
	if m, err := os.ReadFile(path + ".map"); err == nil {
		cs.map_ = m
	}
	return cs, nil
}

// serveClientScript answers <mount>.js, <mount>/client.js and any other
// <mount>/<name>.js with the configured browser bundle (and <name>.js.map
// with its source map), with ETag and Last-Modified for conditional
// requests. Without a configured bundle it answers 404 and says, once, how
// to configure one.
func (s *Server) serveClientScript(w http.ResponseWriter, r *http.Request) {
	cs := s.script
	if cs == nil {
		s.scriptHint.Do(func() {
			s.log.Info("a page asked for the client script, but none is configured: start bayou with --client-js PATH "+
				"(for example node_modules/faye/client/faye-browser-min.js from `npm install faye`) to serve it",
				"path", r.URL.Path)
		})
		http.NotFound(w, r)
		return
	}
	body, ctype := cs.body, "text/javascript; charset=utf-8"
	if strings.HasSuffix(r.URL.Path, ".map") {
		if cs.map_ == nil {
			http.NotFound(w, r)
			return
		}
		body, ctype = cs.map_, "application/json; charset=utf-8"
	}
	h := w.Header()
	h.Set("Content-Type", ctype)
	h.Set("ETag", cs.etag)
	http.ServeContent(w, r, "", cs.modTime, bytes.NewReader(body))
}
