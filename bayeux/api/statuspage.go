package api

import (
	"embed"
	"net/http"
	"strconv"
)

// statusFiles are the files of the status page: plain HTML, CSS and a
// script, with no build step and nothing loaded from elsewhere.
//
//go:embed statuspage
var statusFiles embed.FS

// The routes of the status page. The page, its script and its style hold
// no data and are served without key: a browser opening the page cannot
// send one. The figures come from statusDataPath, which needs the API's
// access like every other route.
const (
	statusPagePath   = "/status"
	statusScriptPath = "/status.js"
	statusStylePath  = "/status.css"
	statusDataPath   = "/status.json"
)

// statusCSP allows the page its own script, style and requests, and
// nothing else: no inline code, no framing, no form posts.
const statusCSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; " +
	"base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// staticFile is one embedded file of the status page.
type staticFile struct {
	body        []byte
	contentType string
}

// statusPage returns the handlers of the page's files, by path.
func statusPage() map[string]staticFile {
	read := func(name string) []byte {
		b, err := statusFiles.ReadFile("statuspage/" + name)
		if err != nil {
			panic("api: the status page lacks " + name) // the files are embedded: a build error
		}
		return b
	}
	return map[string]staticFile{
		statusPagePath:   {read("status.html"), "text/html; charset=utf-8"},
		statusScriptPath: {read("status.js"), "text/javascript; charset=utf-8"},
		statusStylePath:  {read("status.css"), "text/css; charset=utf-8"},
	}
}

// ServeHTTP answers GET and HEAD with the file and the page's security
// headers; other methods get 405.
func (f staticFile) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Content-Security-Policy", statusCSP)
	hd.Set("Referrer-Policy", "no-referrer")
	hd.Set("X-Frame-Options", "DENY")
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		hd.Set("Allow", "GET, HEAD")
		writeJSON(w, http.StatusMethodNotAllowed, struct {
			Error errorBody `json:"error"`
		}{errorBody{Code: codeMethodNotAllowed, Message: r.Method + " is not allowed on " + r.URL.Path + "; use GET, HEAD"}})
		return
	}
	hd.Set("Content-Type", f.contentType)
	hd.Set("Content-Length", strconv.Itoa(len(f.body)))
	hd.Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodGet {
		_, _ = w.Write(f.body)
	}
}
