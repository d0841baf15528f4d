// Package callback is a Bayou extension that asks an HTTP back end whether
// to allow each handshake, subscribe and publish, so that an application
// keeps its access rules in its own service.
//
// For each of those messages the extension POSTs a Request (JSON: type,
// clientId, channel, subscription, optionally the published data, the
// message's ext, selected request headers and the session's identity) to
// Config.URL and obeys the Answer: {"allow": bool, "error": "...",
// "final": bool, "identity": {"user", "roles", "claims"}}. An identity in an
// allowing answer is attached to the session.
//
// The back end must answer within Config.Timeout; when it does not, fails
// or answers something else than JSON with a 2xx status, the message is
// refused with "503::Auth service unavailable" (a 401 or 403 status is a
// refusal). Answers are cached for a while (Config.CacheTTL, at most
// Config.CacheSize of them), keyed by everything sent that may decide them
// except the clientId: type, channel, subscription, ext, forwarded headers,
// the identity's user and roles, and data when sent. Answers that attach an
// identity are cached only when the message carried an ext, so that the
// credential in it is part of the key. Failures are never cached.
//
// The hook waits for the back end on the goroutine handling the client's
// request: keep the back end fast, and the timeout short.
package callback

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/bayou-pubsub/bayou/bayeux"
	"github.com/bayou-pubsub/bayou/channels"
)

// The error strings of refusals the back end did not word.
const (
	// ErrUnavailable refuses a message when the back end cannot be asked.
	ErrUnavailable = "503::Auth service unavailable"
	// ErrForbidden refuses a message the back end refused without an error.
	ErrForbidden = "403::Forbidden"
)

// Defaults of Config.
const (
	DefaultTimeout   = 2 * time.Second
	DefaultCacheSize = 1000
	DefaultCacheTTL  = 10 * time.Second
)

// maxAnswer caps the size of an answer body.
const maxAnswer = 64 << 10

// Config configures the extension.
type Config struct {
	// URL receives the POSTs. Required.
	URL string
	// Timeout bounds the back end's answer to one message (all the
	// subscriptions of a subscribe together). Default 2s.
	Timeout time.Duration
	// Headers names the request headers forwarded to the back end, such as
	// "Authorization" or "Cookie". Default none.
	Headers []string
	// IncludeData sends the data of publishes.
	IncludeData bool
	// CacheSize caps the number of cached answers. Default 1000; negative
	// disables the cache.
	CacheSize int
	// CacheTTL is how long an answer is reused. Default 10s.
	CacheTTL time.Duration
	// StripExt lists ext fields removed from every incoming message after
	// the back end saw them, so that the extensions and handlers after it
	// do not see the credentials, nor subscribers where the server
	// forwards ext (bayeux.Config.ForwardExt).
	StripExt []string
	// Client makes the requests. Default: a client of its own.
	Client *http.Client
	// Now returns the current time, for the cache. Default time.Now.
	Now func() time.Time
	// Logger receives warnings when the back end fails. Default
	// slog.Default().
	Logger *slog.Logger
}

// Callback is the extension. It is safe for concurrent use.
type Callback struct {
	bayeux.NopExtension
	cfg     Config
	headers []string // canonical names
	cache   *cache   // nil when disabled
	client  *http.Client
	log     *slog.Logger
}

// New returns the extension configured by cfg.
func New(cfg Config) (*Callback, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("callback: URL %q must be an absolute http(s) URL", cfg.URL)
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.CacheSize == 0 {
		cfg.CacheSize = DefaultCacheSize
	}
	if cfg.CacheTTL <= 0 {
		cfg.CacheTTL = DefaultCacheTTL
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	c := &Callback{cfg: cfg, client: cfg.Client, log: cfg.Logger}
	if c.client == nil {
		c.client = &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
	}
	if c.log == nil {
		c.log = slog.Default()
	}
	for _, h := range cfg.Headers {
		if h = strings.TrimSpace(h); h != "" {
			c.headers = append(c.headers, http.CanonicalHeaderKey(h))
		}
	}
	if cfg.CacheSize > 0 {
		c.cache = newCache(cfg.CacheSize, cfg.CacheTTL, cfg.Now)
	}
	return c, nil
}

// Incoming asks the back end about handshakes, subscribes and publishes,
// and strips Config.StripExt from every message.
func (c *Callback) Incoming(ctx context.Context, m *bayeux.Message) {
	ext := m.Ext // with the credentials, for the back end
	for _, k := range c.cfg.StripExt {
		m.DeleteExt(k)
	}
	if m.Error != "" {
		return // an earlier extension refused it
	}
	var typ string
	switch {
	case m.Channel == channels.MetaHandshake:
		typ = "handshake"
	case m.Channel == channels.MetaSubscribe:
		typ = "subscribe"
	case channels.IsMeta(m.Channel), m.FromServer():
		return // other protocol messages, and the server's own publishes
	default:
		typ = "publish"
	}
	req := Request{Type: typ, ClientID: m.ClientID, Channel: m.Channel, Headers: c.forwarded(m.Request)}
	if ip, ok := bayeux.ClientIP(ctx); ok && ip.IsValid() {
		req.IP = ip.String()
	}
	if m.Session != nil {
		req.ClientID = m.Session.ID()
		req.Identity = fromIdentity(m.Session.Identity())
	}
	if ext != "" {
		req.Ext = json.RawMessage(ext)
	}
	if typ == "publish" && c.cfg.IncludeData {
		req.Data = json.RawMessage(m.Data)
	}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	subs := []string{""}
	if typ == "subscribe" {
		subs = m.Subscriptions()
	}
	for _, sub := range subs {
		req.Subscription = sub
		a := c.answer(ctx, &req)
		if !a.Allow {
			refusal := a.Error
			if refusal == "" {
				refusal = ErrForbidden
			}
			if typ == "subscribe" {
				m.RejectChannel(sub, refusal) // the other channels may pass
				continue
			}
			m.Error = refusal
			m.Final = a.Final && typ == "handshake"
			return
		}
		if a.Identity != nil && m.Session != nil {
			m.Session.SetIdentity(a.Identity.toIdentity())
		}
	}
}

// forwarded returns the configured headers that r has.
func (c *Callback) forwarded(r *http.Request) map[string]string {
	if r == nil || len(c.headers) == 0 {
		return nil
	}
	var h map[string]string
	for _, name := range c.headers {
		if v := strings.Join(r.Header.Values(name), ", "); v != "" {
			if h == nil {
				h = make(map[string]string, len(c.headers))
			}
			h[name] = v
		}
	}
	return h
}

// answer returns the back end's answer to req, from the cache when it can.
func (c *Callback) answer(ctx context.Context, req *Request) Answer {
	var key [sha256.Size]byte
	if c.cache != nil {
		key = c.key(req)
		if a, ok := c.cache.get(key); ok {
			return a
		}
	}
	a, err := c.ask(ctx, req)
	if err != nil {
		c.log.Warn("callback: auth service unavailable", "url", c.cfg.URL, "type", req.Type, "err", err)
		return Answer{Error: ErrUnavailable}
	}
	if c.cache != nil && (a.Identity == nil || hasExt(req.Ext)) {
		c.cache.put(key, a)
	}
	return a
}

// hasExt reports whether ext is a non-empty JSON value (not {} or null).
func hasExt(ext json.RawMessage) bool {
	s := string(bytes.TrimSpace(ext))
	return s != "" && s != "{}" && s != "null"
}

// key digests what the back end's answer may depend on, each part
// length-prefixed so that no two requests share a key by concatenation.
func (c *Callback) key(req *Request) [sha256.Size]byte {
	h := sha256.New()
	part := func(s string) {
		_ = binary.Write(h, binary.BigEndian, uint64(len(s)))
		_, _ = io.WriteString(h, s)
	}
	part(req.Type)
	part(req.Channel)
	part(req.Subscription)
	part(string(req.Ext))
	part(string(req.Data))
	for _, name := range c.headers {
		part(req.Headers[name])
	}
	part(req.IP)
	if req.Identity == nil {
		part("anonymous")
	} else {
		part("identified")
		part(req.Identity.User)
		for _, r := range req.Identity.Roles {
			part(r)
		}
	}
	var k [sha256.Size]byte
	h.Sum(k[:0])
	return k
}

// errStatus reports an answer with an unexpected HTTP status.
var errStatus = errors.New("unexpected status")

// ask POSTs req and decodes the answer.
func (c *Callback) ask(ctx context.Context, req *Request) (Answer, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return Answer{}, fmt.Errorf("encoding the request: %w", err)
	}
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, c.cfg.URL, bytes.NewReader(body))
	if err != nil {
		return Answer{}, fmt.Errorf("building the request: %w", err)
	}
	hr.Header.Set("Content-Type", "application/json")
	res, err := c.client.Do(hr)
	if err != nil {
		return Answer{}, fmt.Errorf("posting: %w", err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(io.LimitReader(res.Body, maxAnswer))
	if err != nil {
		return Answer{}, fmt.Errorf("reading the answer: %w", err)
	}
	var a Answer
	switch {
	case res.StatusCode == http.StatusUnauthorized || res.StatusCode == http.StatusForbidden:
		_ = json.Unmarshal(b, &a) // an error text, if any
		return Answer{Error: a.Error}, nil
	case res.StatusCode < 200 || res.StatusCode > 299:
		return Answer{}, fmt.Errorf("%w %s", errStatus, res.Status)
	}
	if err := json.Unmarshal(b, &a); err != nil {
		return Answer{}, fmt.Errorf("decoding the answer: %w", err)
	}
	return a, nil
}
