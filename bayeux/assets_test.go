package bayeux

import (
	"bytes"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"
)

// fetchAsset requests url and returns the response with its body read.
func fetchAsset(t *testing.T, method, url string, header map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res, body
}

func TestRecoveryScript(t *testing.T) {
	onDisk, err := os.ReadFile("recovery.js")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(recoveryScript, onDisk) {
		t.Fatal("the embedded recovery.js differs from the file")
	}
	// With a client bundle configured too: other names below extensions/
	// must not fall through to it.
	bundle := filepath.Join(t.TempDir(), "bundle.js")
	if err := os.WriteFile(bundle, []byte("var Faye = {};"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, mount := range []string{"/bayeux", "/"} {
		t.Run("mount "+mount, func(t *testing.T) {
			ts := newTestServer(t, Config{Mount: mount, ClientScript: bundle})
			base := ts.http.URL
			if mount != "/" {
				base += mount
			}
			url := base + "/extensions/recovery.js"

			res, body := fetchAsset(t, http.MethodGet, url, nil)
			if res.StatusCode != http.StatusOK {
				t.Fatalf("GET %s: %d", url, res.StatusCode)
			}
			if got := res.Header.Get("Content-Type"); got != "text/javascript; charset=utf-8" {
				t.Errorf("Content-Type %q", got)
			}
			if res.Header.Get("Cache-Control") == "" || res.Header.Get("ETag") == "" {
				t.Errorf("no Cache-Control or ETag: %v", res.Header)
			}
			if !bytes.Equal(body, recoveryScript) {
				t.Errorf("served %d bytes, not the embedded %d", len(body), len(recoveryScript))
			}

			res, _ = fetchAsset(t, http.MethodGet, url, map[string]string{"If-None-Match": res.Header.Get("ETag")})
			if res.StatusCode != http.StatusNotModified {
				t.Errorf("If-None-Match: %d, want 304", res.StatusCode)
			}
			res, body = fetchAsset(t, http.MethodHead, url, nil)
			if res.StatusCode != http.StatusOK || len(body) != 0 {
				t.Errorf("HEAD: %d with %d bytes", res.StatusCode, len(body))
			}
			res, _ = fetchAsset(t, http.MethodPost, url, nil)
			if res.StatusCode != http.StatusMethodNotAllowed || res.Header.Get("Allow") != "GET, HEAD" {
				t.Errorf("POST: %d, Allow %q; want 405", res.StatusCode, res.Header.Get("Allow"))
			}
			for _, p := range []string{"/extensions/", "/extensions/other.js", "/extensions/recovery.js.map",
				"/extensions/sub/recovery.js", "/extensions/recovery"} {
				if res, _ := fetchAsset(t, http.MethodGet, base+p, nil); res.StatusCode != http.StatusNotFound {
					t.Errorf("GET %s: %d, want 404", p, res.StatusCode)
				}
			}
			// The bundle is still served beside it.
			if res, body := fetchAsset(t, http.MethodGet, base+"/client.js", nil); res.StatusCode != http.StatusOK || string(body) != "var Faye = {};" {
				t.Errorf("GET client.js: %d %q", res.StatusCode, body)
			}
		})
	}
}

func TestClassifyExtensionScript(t *testing.T) {
	for _, tc := range []struct {
		method, rest string
		want         route
	}{
		{http.MethodGet, "/extensions/recovery.js", routeExtensionScript},
		{http.MethodGet, "/extensions/nope", routeExtensionScript},
		{http.MethodGet, "/client.js", routeClientScript},
		{http.MethodGet, "/recovery.js", routeClientScript},
		{http.MethodPost, "", routeLongPolling},
	} {
		r, _ := http.NewRequest(tc.method, "http://h/bayeux"+tc.rest, nil)
		if got := classify(r, tc.rest); got != tc.want {
			t.Errorf("%s %q: %v, want %v", tc.method, tc.rest, got, tc.want)
		}
	}
}
