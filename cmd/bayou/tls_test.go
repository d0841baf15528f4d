package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/tidwall/gjson"

	"github.com/bayou-pubsub/bayou/internal/bayeuxtest"
)

// writeCertificate writes a fresh self-signed certificate for 127.0.0.1
// and localhost, with the given serial number, and its key as PEM files in
// dir (replacing those there), and returns the certificate.
func writeCertificate(t *testing.T, dir string, serial int64) *x509.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "bayou test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true, IsCA: true,
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	// Write to temporary files then rename, as a certificate manager does,
	// so that a reload never reads half a file.
	for name, block := range map[string]*pem.Block{"cert.pem": {Type: "CERTIFICATE", Bytes: der}, "key.pem": {Type: "EC PRIVATE KEY", Bytes: kder}} {
		tmp := filepath.Join(dir, name+".tmp")
		if err := os.WriteFile(tmp, pem.EncodeToMemory(block), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

// servedSerial makes a new TLS connection to addr and returns the serial
// number of the certificate the server presents.
func servedSerial(t *testing.T, addr string, roots *x509.CertPool) int64 {
	t.Helper()
	conn, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: roots})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0].SerialNumber.Int64()
}

// TestTLS serves Bayeux and the API over TLS with a self-signed
// certificate: long-polling negotiates HTTP/2, a WebSocket opens (on
// HTTP/1.1), and a reload (SIGHUP) swaps the certificate for new
// connections while the open WebSocket goes on working.
func TestTLS(t *testing.T) {
	dir := t.TempDir()
	first := writeCertificate(t, dir, 1)
	roots := x509.NewCertPool()
	roots.AddCert(first)
	c := startCommand(t, "--addr", "127.0.0.1:0", "--api-addr", "127.0.0.1:0", "--api-tls", "--log-level", "error",
		"--tls-cert", filepath.Join(dir, "cert.pem"), "--tls-key", filepath.Join(dir, "key.pem"))
	bayeuxURL, apiURL := c.url(t, "Bayeux"), c.url(t, "the HTTP API")
	if !strings.HasPrefix(bayeuxURL, "https://") || !strings.HasPrefix(apiURL, "https://") {
		t.Fatalf("URLs %s and %s", bayeuxURL, apiURL)
	}
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}, ForceAttemptHTTP2: true}}
	t.Cleanup(client.CloseIdleConnections)
	res, err := client.Post(bayeuxURL, "application/json", strings.NewReader(handshakeBody("")))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 || res.ProtoMajor != 2 {
		t.Fatalf("handshake over TLS: %d %s, want 200 over HTTP/2", res.StatusCode, res.Proto)
	}
	if res, err = client.Get(apiURL + "readyz"); err != nil || res.StatusCode != 200 {
		t.Fatalf("API readyz over TLS: %v %v", res, err)
	}
	res.Body.Close()

	// A WebSocket session, connected.
	dialer := websocket.Dialer{TLSClientConfig: &tls.Config{RootCAs: roots}, HandshakeTimeout: 5 * time.Second}
	ws, _, err := dialer.Dial(bayeuxtest.WebSocketURL(bayeuxURL), nil)
	if err != nil {
		t.Fatalf("WebSocket over TLS: %v", err)
	}
	defer ws.Close()
	exchange := func(msg string) gjson.Result {
		t.Helper()
		if err := ws.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
			t.Fatal(err)
		}
		_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, b, err := ws.ReadMessage()
		if err != nil {
			t.Fatal(err)
		}
		return gjson.ParseBytes(b)
	}
	id := exchange(`[{"channel":"/meta/handshake","version":"1.0","supportedConnectionTypes":["websocket"]}]`).Get("0.clientId").String()
	if r := exchange(`[{"channel":"/meta/connect","clientId":"` + id + `","connectionType":"websocket","advice":{"timeout":0}}]`); !r.Get("0.successful").Bool() {
		t.Fatalf("connect: %s", r.Raw)
	}

	// The certificate is replaced on disk and reloaded.
	u, _ := url.Parse(bayeuxURL)
	if s := servedSerial(t, u.Host, roots); s != 1 {
		t.Fatalf("serial %d served before the reload", s)
	}
	second := writeCertificate(t, dir, 2)
	roots.AddCert(second)
	c.hup <- syscall.SIGHUP
	bayeuxtest.Eventually(t, 5*time.Second, func() bool { return servedSerial(t, u.Host, roots) == 2 }, "the new certificate served")
	if r := exchange(`[{"channel":"/meta/subscribe","clientId":"` + id + `","subscription":"/after/reload"}]`); !r.Get("0.successful").Bool() {
		t.Fatalf("the WebSocket opened before the reload: %s", r.Raw)
	}

	// A broken certificate file is refused; the served one stays.
	if err := os.WriteFile(filepath.Join(dir, "cert.pem"), []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	c.hup <- syscall.SIGHUP
	bayeuxtest.Eventually(t, 5*time.Second, func() bool { return strings.Contains(c.stderr.String(), "reload failed") }, "the failed reload logged")
	if s := servedSerial(t, u.Host, roots); s != 2 {
		t.Fatalf("serial %d served after a failed reload", s)
	}
}
