package bayeux

import (
	"net/http"
	"os"
	"path/filepath"
	"testing"
)

func TestClientScript(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "bundle.js")
	if err := os.WriteFile(path, []byte("var Faye = {};"), 0o644); err != nil {
		t.Fatal(err)
	}
	ts := newTestServer(t, Config{ClientScript: path})
	base := ts.http.URL
	var etag string
	for _, p := range []string{"/bayeux.js", "/bayeux/client.js", "/bayeux/faye-browser-min.js"} {
		res, err := http.Get(base + p)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != 200 || res.Header.Get("Content-Type") != "text/javascript; charset=utf-8" || res.Header.Get("ETag") == "" || res.Header.Get("Last-Modified") == "" {
			t.Fatalf("GET %s: %d %v", p, res.StatusCode, res.Header)
		}
		etag = res.Header.Get("ETag")
	}
	req, _ := http.NewRequest(http.MethodGet, base+"/bayeux/client.js", nil)
	req.Header.Set("If-None-Match", etag)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusNotModified {
		t.Fatalf("conditional GET: %d, want 304", res.StatusCode)
	}
	if res, _ := http.Get(base + "/bayeux/client.js.map"); res.StatusCode != http.StatusNotFound {
		t.Fatalf("missing source map: %d, want 404", res.StatusCode)
	}
}

func TestClientScriptNotConfigured(t *testing.T) {
	ts := newTestServer(t, Config{})
	res, err := http.Get(ts.http.URL + "/bayeux/client.js")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusNotFound {
		t.Fatalf("status %d, want 404", res.StatusCode)
	}
}

func TestClientScriptMissingFile(t *testing.T) {
	if _, err := New(Config{ClientScript: filepath.Join(t.TempDir(), "nope.js")}); err == nil {
		t.Fatal("New accepted a client script that does not exist")
	}
}
