package main

import (
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"sync/atomic"
)

// tlsOptions select the certificate of the listeners.
type tlsOptions struct {
	cert string
	key  string
	api  bool
}

func (t *tlsOptions) register(fs *flag.FlagSet) {
	fs.StringVar(&t.cert, "tls-cert", "", "PEM file of the certificate (chain) to serve the Bayeux listener over TLS (HTTPS and WSS, HTTP/2 for the HTTP transports); reloaded on SIGHUP")
	fs.StringVar(&t.key, "tls-key", "", "PEM file of the private key of --tls-cert")
	fs.BoolVar(&t.api, "api-tls", false, "serve the HTTP API over TLS too, with the same certificate")
}

func (t *tlsOptions) validate() error {
	if (t.cert == "") != (t.key == "") {
		return errors.New("--tls-cert and --tls-key go together")
	}
	if t.api && t.cert == "" {
		return errors.New("--api-tls needs --tls-cert and --tls-key")
	}
	return nil
}

// certificate holds the served certificate, which reload replaces: every
// new TLS handshake gets the current one (tls.Config.GetCertificate), the
// connections already open keep theirs.
type certificate struct {
	certFile, keyFile string
	current           atomic.Pointer[tls.Certificate]
}

// loadCertificate reads the certificate and key files.
func loadCertificate(certFile, keyFile string) (*certificate, error) {
	c := &certificate{certFile: certFile, keyFile: keyFile}
	if err := c.reload(); err != nil {
		return nil, err
	}
	return c, nil
}

// reload reads the files again; on an error the current certificate stays.
func (c *certificate) reload() error {
	cert, err := tls.LoadX509KeyPair(c.certFile, c.keyFile)
	if err != nil {
		return fmt.Errorf("--tls-cert/--tls-key: %w", err)
	}
	c.current.Store(&cert)
	return nil
}

func (c *certificate) get(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return c.current.Load(), nil
}

// config returns the TLS configuration of a listener: the current
// certificate, TLS 1.2 or later, and HTTP/2 offered (ALPN) besides
// HTTP/1.1. Browsers and faye's clients open WebSockets on HTTP/1.1
// connections of their own; the long-polling and EventSource requests of
// a browser share an HTTP/2 connection.
func (c *certificate) config() *tls.Config {
	return &tls.Config{GetCertificate: c.get, MinVersion: tls.VersionTLS12, NextProtos: []string{"h2", "http/1.1"}}
}
