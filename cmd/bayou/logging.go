package main

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"strings"
)

// logOptions are the settings of the command's log (on standard error).
type logOptions struct {
	level      string
	format     string
	sessionLog float64
}

func (l *logOptions) register(fs *flag.FlagSet) {
	fs.StringVar(&l.level, "log-level", "info", "log level: debug (every message, with its clientId and channel), info, warn or error")
	fs.StringVar(&l.format, "log-format", "text", "log format: text (key=value) or json (one object per line)")
	fs.Float64Var(&l.sessionLog, "session-log-rate", 20, "info lines per second, at most, about sessions starting and ending (client address, transport, reason), all clients together; lines over it are dropped and counted in the next one; 0 logs none")
}

func (l *logOptions) validate() error {
	var level slog.Level
	if err := level.UnmarshalText([]byte(l.level)); err != nil {
		return fmt.Errorf("--log-level: %w", err)
	}
	if l.format != "text" && l.format != "json" {
		return fmt.Errorf("--log-format must be text or json, got %q", l.format)
	}
	if l.sessionLog < 0 {
		return fmt.Errorf("--session-log-rate must not be negative, got %v", l.sessionLog)
	}
	return nil
}

// logger returns the logger the options describe, writing to w; the
// options are valid.
func (l *logOptions) logger(w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(l.level))
	ho := &slog.HandlerOptions{Level: level}
	if l.format == "json" {
		return slog.New(slog.NewJSONHandler(w, ho))
	}
	return slog.New(slog.NewTextHandler(w, ho))
}

// sessionLogRate is bayeux.Config.SessionLogRate for the options: the
// flag's 0 (none) is the library's negative value.
func (l *logOptions) sessionLogRate() float64 {
	if l.sessionLog == 0 {
		return -1
	}
	return l.sessionLog
}

// redactURL returns raw fit for a log: the password of its user
// information and the values of query parameters that look like secrets
// masked. A URL that does not parse is not shown at all.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparseable URL)"
	}
	if u.RawQuery != "" {
		q := u.Query()
		for k := range q {
			if lk := strings.ToLower(k); strings.Contains(lk, "pass") || strings.Contains(lk, "secret") || strings.Contains(lk, "token") {
				q[k] = []string{"xxxxx"}
			}
		}
		u.RawQuery = q.Encode()
	}
	return u.Redacted()
}
