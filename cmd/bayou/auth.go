package main

import (
	"errors"
	"flag"
	"fmt"
	"log/slog"

	"github.com/bayou-pubsub/bayou/bayeux"
	"github.com/bayou-pubsub/bayou/extensions/acl"
	"github.com/bayou-pubsub/bayou/extensions/callback"
	"github.com/bayou-pubsub/bayou/extensions/jwtauth"
	"github.com/bayou-pubsub/bayou/extensions/tokenauth"
)

// The authentication modes of --auth.
const (
	authNone     = "none"
	authToken    = "token"
	authJWT      = "jwt"
	authCallback = "callback"
)

// authOptions select and configure the authentication extension.
type authOptions struct {
	mode     string
	tokenKey string

	// token
	tokenSecret      string
	tokenFile        string
	protect          string
	requireHandshake bool

	// jwt
	jwtSecret            string
	jwtPublicKey         string
	jwtIssuer            string
	jwtAudience          string
	jwtRolesClaim        string
	jwtChannelsClaim     string
	jwtAuthenticateOnly  bool
	jwtPublic            string
	jwtWideSubscriptions bool
	jwtOptional          bool

	// callback
	callbackURL       string
	callbackTimeout   float64
	callbackHeaders   string
	callbackData      bool
	callbackCacheSize int
	callbackCacheTTL  float64
}

func (a *authOptions) register(fs *flag.FlagSet) {
	fs.StringVar(&a.mode, "auth", authNone, "authentication: none, token (shared secret or token list), jwt, or callback (ask an HTTP service)")
	fs.StringVar(&a.tokenKey, "token-key", "token", "ext field carrying the client's credential (token or JWT); it is removed before anything is broadcast")

	fs.StringVar(&a.tokenSecret, "token-secret", "", "token auth: the shared secret clients send in ext")
	fs.StringVar(&a.tokenFile, "token-file", "", "token auth: file of accepted tokens, a JSON object {\"TOKEN\": \"USER\"} or lines \"TOKEN USER\"")
	fs.StringVar(&a.protect, "protect", "", "token auth: comma-separated channel patterns that need a token to subscribe or publish (e.g. /private/**); empty protects every channel")
	fs.BoolVar(&a.requireHandshake, "require-handshake", false, "token auth: refuse handshakes without a valid token")

	fs.StringVar(&a.jwtSecret, "jwt-secret", "", "jwt auth: secret of HS256 tokens")
	fs.StringVar(&a.jwtPublicKey, "jwt-public-key", "", "jwt auth: PEM file of the RSA or ECDSA public key of RS256/ES256 tokens")
	fs.StringVar(&a.jwtIssuer, "jwt-issuer", "", "jwt auth: required \"iss\" claim; empty accepts any")
	fs.StringVar(&a.jwtAudience, "jwt-audience", "", "jwt auth: required \"aud\" claim; empty accepts any")
	fs.StringVar(&a.jwtRolesClaim, "jwt-roles-claim", jwtauth.DefaultRolesClaim, "jwt auth: claim holding the user's roles")
	fs.StringVar(&a.jwtChannelsClaim, "jwt-channels-claim", jwtauth.DefaultChannelsClaim, "jwt auth: claim listing the channel patterns the token allows ({sub} is the subject)")
	fs.BoolVar(&a.jwtAuthenticateOnly, "jwt-authenticate-only", false, "jwt auth: ignore the channels claim and leave channel access to the ACL")
	fs.StringVar(&a.jwtPublic, "jwt-public", "", "jwt auth: comma-separated channel patterns open to every session, with or without a token")
	fs.BoolVar(&a.jwtWideSubscriptions, "jwt-wide-subscriptions", false, "jwt auth: accept wildcard subscribes (such as /**) reaching beyond the allowed channels; only allowed channels are delivered through them")
	fs.BoolVar(&a.jwtOptional, "jwt-optional", false, "jwt auth: accept handshakes without a token (such sessions reach only --jwt-public channels)")

	fs.StringVar(&a.callbackURL, "callback-url", "", "callback auth: URL that is POSTed each handshake, subscribe and publish and answers {\"allow\": true|false, ...}")
	fs.Float64Var(&a.callbackTimeout, "callback-timeout", 2, "callback auth: seconds to wait for the answer before refusing with 503")
	fs.StringVar(&a.callbackHeaders, "callback-headers", "", "callback auth: comma-separated request headers forwarded to the URL (e.g. Authorization,Cookie)")
	fs.BoolVar(&a.callbackData, "callback-data", false, "callback auth: send the data of publishes too")
	fs.IntVar(&a.callbackCacheSize, "callback-cache-size", callback.DefaultCacheSize, "callback auth: answers kept in the cache; negative disables it")
	fs.Float64Var(&a.callbackCacheTTL, "callback-cache-ttl", callback.DefaultCacheTTL.Seconds(), "callback auth: seconds an answer is reused")
}

// validate checks that the chosen mode has what it needs.
func (a *authOptions) validate() error {
	switch a.mode {
	case authNone:
	case authToken:
		if a.tokenSecret == "" && a.tokenFile == "" {
			return errors.New("--auth token needs --token-secret or --token-file")
		}
	case authJWT:
		if (a.jwtSecret == "") == (a.jwtPublicKey == "") {
			return errors.New("--auth jwt needs one of --jwt-secret and --jwt-public-key")
		}
	case authCallback:
		if a.callbackURL == "" {
			return errors.New("--auth callback needs --callback-url")
		}
		if a.callbackTimeout <= 0 || a.callbackCacheTTL <= 0 {
			return errors.New("--callback-timeout and --callback-cache-ttl must be positive")
		}
	default:
		return fmt.Errorf("--auth must be none, token, jwt or callback, got %q", a.mode)
	}
	return nil
}

// extensions builds the server's extensions: the authentication one of
// --auth, then the ACL of the config file (so that the ACL sees the
// identity the first attached).
func (o *options) extensions(log *slog.Logger) ([]bayeux.Extension, error) {
	var exts []bayeux.Extension
	auth, err := o.auth.extension(log)
	if err != nil {
		return nil, err
	}
	if auth != nil {
		exts = append(exts, auth)
	}
	if o.acl != nil {
		cfg := *o.acl
		cfg.Logger = log
		rules, err := acl.New(cfg)
		if err != nil {
			return nil, fmt.Errorf("config acl: %w", err)
		}
		exts = append(exts, rules)
	}
	return exts, nil
}

// extension returns the authentication extension of the mode, nil for
// none.
func (a *authOptions) extension(log *slog.Logger) (bayeux.Extension, error) {
	switch a.mode {
	case authToken:
		cfg := tokenauth.Config{Key: a.tokenKey, Secret: a.tokenSecret, Protect: list(a.protect),
			RequireHandshake: a.requireHandshake, Logger: log}
		if a.tokenFile != "" {
			tokens, err := tokenauth.LoadTokens(a.tokenFile)
			if err != nil {
				return nil, fmt.Errorf("--token-file: %w", err)
			}
			cfg.Tokens = tokens
		}
		ext, err := tokenauth.New(cfg)
		if err != nil {
			return nil, err
		}
		return ext, nil
	case authJWT:
		cfg := jwtauth.Config{Key: a.tokenKey, Issuer: a.jwtIssuer, Audience: a.jwtAudience,
			RolesClaim: a.jwtRolesClaim, ChannelsClaim: a.jwtChannelsClaim, AuthenticateOnly: a.jwtAuthenticateOnly,
			Public: list(a.jwtPublic), WideSubscriptions: a.jwtWideSubscriptions, Optional: a.jwtOptional, Logger: log}
		if a.jwtSecret != "" {
			cfg.Secret = []byte(a.jwtSecret)
		} else {
			key, err := jwtauth.LoadPublicKey(a.jwtPublicKey)
			if err != nil {
				return nil, fmt.Errorf("--jwt-public-key: %w", err)
			}
			cfg.PublicKey = key
		}
		ext, err := jwtauth.New(cfg)
		if err != nil {
			return nil, err
		}
		return ext, nil
	case authCallback:
		ext, err := callback.New(callback.Config{URL: a.callbackURL, Timeout: seconds(a.callbackTimeout),
			Headers: list(a.callbackHeaders), IncludeData: a.callbackData, CacheSize: a.callbackCacheSize,
			CacheTTL: seconds(a.callbackCacheTTL), StripExt: []string{a.tokenKey}, Logger: log})
		if err != nil {
			return nil, err
		}
		return ext, nil
	}
	return nil, nil
}
