package bayeux

import (
	"context"
	"log/slog"
	"net/netip"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// defaultSessionLogRate is Config.SessionLogRate's default, in lines per
// second.
const defaultSessionLogRate = 20

// sessionLog writes an Info line when a session starts and when it ends.
// Any client can start and end sessions as fast as it likes, so the lines
// share one budget (Config.SessionLogRate per second, in bursts of twice
// that): the lines over it are dropped and counted, and the next line
// written says how many were ("dropped"). Nothing is counted when the
// logger does not write Info lines.
type sessionLog struct {
	log     *slog.Logger
	budget  *rate.Limiter // nil: no lines
	dropped atomic.Int64
}

// newSessionLog returns the session log writing to log at perSecond lines
// per second at most; none when perSecond is negative.
func newSessionLog(log *slog.Logger, perSecond float64) sessionLog {
	if perSecond < 0 {
		return sessionLog{log: log}
	}
	if perSecond == 0 {
		perSecond = defaultSessionLogRate
	}
	return sessionLog{log: log, budget: rate.NewLimiter(rate.Limit(perSecond), max(1, int(2*perSecond)))}
}

// started logs the start of sess; overSocket says the handshake came on a
// WebSocket (otherwise an HTTP request).
func (l *sessionLog) started(sess *Session, overSocket bool) {
	if !l.admit() {
		return
	}
	via := "http"
	if overSocket {
		via = "websocket"
	}
	l.write("session started", "clientId", sess.id, "ip", logIP(sess.ip), "via", via)
}

// ended logs the end of sess, with why, its last transport and how long it
// lived; at Debug when the Info line is not written.
func (l *sessionLog) ended(sess *Session, why EndReason) {
	if !l.admit() {
		l.log.Debug("session ended", "clientId", sess.id, "reason", why.String())
		return
	}
	l.write("session ended", "clientId", sess.id, "ip", logIP(sess.ip), "transport", sess.Transport(),
		"reason", why.String(), "duration", time.Since(sess.started).Round(time.Millisecond))
}

// admit reports whether a line may be written now, counting it as dropped
// when the budget is spent.
func (l *sessionLog) admit() bool {
	if l.budget == nil || !l.log.Enabled(context.Background(), slog.LevelInfo) {
		return false
	}
	if !l.budget.Allow() {
		l.dropped.Add(1)
		return false
	}
	return true
}

// write logs msg with args, and the number of lines dropped since the
// last line written, if any.
func (l *sessionLog) write(msg string, args ...any) {
	if n := l.dropped.Swap(0); n > 0 {
		args = append(args, "dropped", n)
	}
	l.log.Info(msg, args...)
}

// debugMessage logs msg at Debug about the message m from the client at
// ip: its channel and clientId (cut to a readable length), and more args.
// Nothing is computed unless Debug is on.
func (s *Server) debugMessage(msg string, m *Message, ip netip.Addr, args ...any) {
	if !s.log.Enabled(context.Background(), slog.LevelDebug) {
		return
	}
	s.log.Debug(msg, append([]any{"channel", clip(m.Channel), "clientId", clip(m.ClientID), "ip", logIP(ip)}, args...)...)
}
