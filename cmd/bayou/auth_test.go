package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/bayou-pubsub/bayou/extensions/acl"
	"github.com/bayou-pubsub/bayou/extensions/callback"
	"github.com/bayou-pubsub/bayou/extensions/jwtauth"
	"github.com/bayou-pubsub/bayou/extensions/tokenauth"
	"github.com/bayou-pubsub/bayou/internal/bayeuxtest"
	"github.com/golang-jwt/jwt/v5"
)

func noEnv(string) string { return "" }

func TestAuthValidation(t *testing.T) {
	tests := []struct {
		args    []string
		wantErr string
	}{
		{[]string{"--auth", "none"}, ""},
		{[]string{"--auth", "ldap"}, "--auth must be"},
		{[]string{"--auth", "token"}, "--token-secret or --token-file"},
		{[]string{"--auth", "token", "--token-secret", "s"}, ""},
		{[]string{"--auth", "jwt"}, "one of --jwt-secret and --jwt-public-key"},
		{[]string{"--auth", "jwt", "--jwt-secret", "s", "--jwt-public-key", "k.pem"}, "one of --jwt-secret and --jwt-public-key"},
		{[]string{"--auth", "jwt", "--jwt-secret", "s"}, ""},
		{[]string{"--auth", "callback"}, "--callback-url"},
		{[]string{"--auth", "callback", "--callback-url", "http://127.0.0.1:1/x", "--callback-timeout", "0"}, "must be positive"},
		{[]string{"--auth", "callback", "--callback-url", "http://127.0.0.1:1/x"}, ""},
	}
	for _, tt := range tests {
		_, err := parseOptions(tt.args, noEnv, &bytes.Buffer{})
		if (tt.wantErr == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tt.wantErr)) {
			t.Errorf("%q: err = %v, want %q", tt.args, err, tt.wantErr)
		}
	}
}

// publicKeyFile writes a fresh ECDSA public key as PEM and returns its
// path and the private key.
func publicKeyFile(t *testing.T) (string, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return writeFile(t, "key.pem", string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))), key
}

func TestExtensionsFromOptions(t *testing.T) {
	keyFile, _ := publicKeyFile(t)
	tokens := writeFile(t, "tokens", "t1 ana\n")
	rules := writeFile(t, "acl.json", `{"acl": {"rules": [{"pattern": "/a/**", "subscribe": "anyone"}]}}`)
	badRules := writeFile(t, "bad-acl.json", `{"acl": {"rules": [{"pattern": "/a/**", "subscribe": "everyone"}]}}`)
	tests := []struct {
		name    string
		args    []string
		want    string // the extensions' types
		wantErr string
	}{
		{"none", nil, "", ""},
		{"token list", []string{"--auth", "token", "--token-file", tokens}, "*tokenauth.Auth", ""},
		{"missing token list", []string{"--auth", "token", "--token-file", tokens + ".nope"}, "", "--token-file"},
		{"jwt public key", []string{"--auth", "jwt", "--jwt-public-key", keyFile}, "*jwtauth.Auth", ""},
		{"jwt bad key file", []string{"--auth", "jwt", "--jwt-public-key", tokens}, "", "--jwt-public-key"},
		{"callback", []string{"--auth", "callback", "--callback-url", "http://127.0.0.1:1/auth"}, "*callback.Callback", ""},
		{"callback bad URL", []string{"--auth", "callback", "--callback-url", "not a url"}, "", "callback"},
		{"token and ACL", []string{"--config", rules, "--auth", "token", "--token-secret", "s"}, "*tokenauth.Auth *acl.ACL", ""},
		{"ACL alone", []string{"--config", rules}, "*acl.ACL", ""},
		{"bad ACL", []string{"--config", badRules}, "", "acl"},
		{"bad protect pattern", []string{"--auth", "token", "--token-secret", "s", "--protect", "/a/**/b"}, "", "protect"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, err := parseOptions(tt.args, noEnv, &bytes.Buffer{})
			if err != nil {
				t.Fatal(err)
			}
			exts, err := o.extensions(nil)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one mentioning %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var types []string
			for _, e := range exts {
				types = append(types, fmt.Sprintf("%T", e))
			}
			if strings.Join(types, " ") != tt.want {
				t.Fatalf("extensions %q, want %q", types, tt.want)
			}
		})
	}
}

func TestHelpListsAuthFlags(t *testing.T) {
	var out bytes.Buffer
	_, _ = parseOptions([]string{"--help"}, noEnv, &out)
	for _, want := range []string{"--config (BAYOU_CONFIG)", "--auth (BAYOU_AUTH)", "--token-secret (BAYOU_TOKEN_SECRET)",
		"--jwt-public-key (BAYOU_JWT_PUBLIC_KEY)", "--callback-url (BAYOU_CALLBACK_URL)", "--api-addr (BAYOU_API_ADDR)",
		"--api-key (BAYOU_API_KEY)", `"acl"`} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("--help lacks %q", want)
		}
	}
}

// startRun runs the command with args on a free port and returns the
// Bayeux URL; the command is stopped when the test ends.
func startRun(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	stdout := &bayeuxtest.Buffer{}
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, append([]string{"--addr", "127.0.0.1:0", "--timeout", "1", "--log-level", "error"}, args...), noEnv, stdout, io.Discard, nil)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("run: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("run did not return after its context ended")
		}
	})
	re := regexp.MustCompile(`serving Bayeux at (http://\S+)`)
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if m := re.FindStringSubmatch(stdout.String()); m != nil {
			return m[1]
		}
		select {
		case err := <-done:
			t.Fatalf("run ended: %v", err)
		default:
		}
	}
	t.Fatalf("no URL printed: %q", stdout.String())
	return ""
}

// post sends one Bayeux message and returns the first reply.
func post(t *testing.T, url, body string) map[string]any {
	t.Helper()
	res, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var replies []map[string]any
	if err := json.NewDecoder(res.Body).Decode(&replies); err != nil || len(replies) == 0 {
		t.Fatalf("POST %s: %v %v", body, replies, err)
	}
	return replies[0]
}

func handshakeBody(ext string) string {
	return `{"channel":"/meta/handshake","version":"1.0","supportedConnectionTypes":["long-polling"]` + ext + `}`
}

func subscribeBody(id, ch string) string {
	return `{"channel":"/meta/subscribe","clientId":"` + id + `","subscription":"` + ch + `"}`
}

func TestRunWithTokenAuthAndACL(t *testing.T) {
	cfg := writeFile(t, "bayou.json", `{"auth": "token", "token-secret": "s3cret", "protect": ["/private/**"],
		"acl": {"rules": [{"pattern": "/readonly/**", "subscribe": "anyone", "publish": "none"}]}}`)
	url := startRun(t, "--config", cfg)
	anon := post(t, url, handshakeBody(""))["clientId"].(string)
	if r := post(t, url, subscribeBody(anon, "/private/x")); r["error"] != tokenauth.ErrForbidden {
		t.Fatalf("anonymous subscribe: %v", r)
	}
	if r := post(t, url, subscribeBody(anon, "/readonly/x")); r["successful"] != true {
		t.Fatalf("subscribe /readonly/x: %v", r)
	}
	authed := post(t, url, handshakeBody(`,"ext":{"token":"s3cret"}`))["clientId"].(string)
	if r := post(t, url, subscribeBody(authed, "/private/x")); r["successful"] != true {
		t.Fatalf("authenticated subscribe: %v", r)
	}
	if r := post(t, url, `{"channel":"/readonly/x","clientId":"`+authed+`","data":1}`); r["error"] != acl.ErrForbidden {
		t.Fatalf("publish on a read-only channel: %v", r)
	}
}

func TestRunWithJWTPublicKey(t *testing.T) {
	keyFile, key := publicKeyFile(t)
	url := startRun(t, "--auth", "jwt", "--jwt-public-key", keyFile, "--jwt-issuer", "me")
	sign := func(claims jwt.MapClaims) string {
		s, err := jwt.NewWithClaims(jwt.SigningMethodES256, claims).SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	exp := time.Now().Add(time.Hour).Unix()
	if r := post(t, url, handshakeBody(`,"ext":{"token":"`+sign(jwt.MapClaims{"sub": "u1", "iss": "other", "exp": exp})+`"}`)); r["error"] != jwtauth.ErrInvalidToken {
		t.Fatalf("wrong issuer: %v", r)
	}
	tok := sign(jwt.MapClaims{"sub": "u1", "iss": "me", "exp": exp, "channels": []string{"/users/{sub}/**"}})
	id := post(t, url, handshakeBody(`,"ext":{"token":"`+tok+`"}`))["clientId"].(string)
	if r := post(t, url, subscribeBody(id, "/users/u1/*")); r["successful"] != true {
		t.Fatalf("own channel: %v", r)
	}
	if r := post(t, url, subscribeBody(id, "/users/u2/*")); r["error"] != jwtauth.ErrChannelNotAllowed {
		t.Fatalf("another user's channel: %v", r)
	}
}

func TestRunWithCallback(t *testing.T) {
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req callback.Request
		_ = json.NewDecoder(r.Body).Decode(&req)
		_ = json.NewEncoder(w).Encode(callback.Answer{Allow: req.Type != "subscribe" || req.Subscription == "/ok"})
	}))
	defer be.Close()
	url := startRun(t, "--auth", "callback", "--callback-url", be.URL, "--callback-timeout", "1")
	id := post(t, url, handshakeBody(""))["clientId"].(string)
	if r := post(t, url, subscribeBody(id, "/ok")); r["successful"] != true {
		t.Fatalf("allowed subscribe: %v", r)
	}
	if r := post(t, url, subscribeBody(id, "/no")); r["error"] != callback.ErrForbidden {
		t.Fatalf("refused subscribe: %v", r)
	}
}
