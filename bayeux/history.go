package bayeux

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/bayou-pubsub/bayou/channels"
)

// Position is a publication's place in the history of its channel: Offset
// grows by one with each publication on the channel (the first is 1), and
// Epoch names the history the offsets count in. A new epoch starts whenever
// the history was lost (an engine restarted without it, a store that
// dropped it), so that an offset is only ever compared within its epoch.
type Position struct {
	Offset uint64
	Epoch  string
}

// HistoryRule keeps the history of the channels matching Pattern: the last
// Size publications of each, for at most TTL.
type HistoryRule struct {
	// Pattern is a channel name or wildcard pattern ("/chat/**").
	Pattern string
	// Size is how many publications are kept per channel; at least 1.
	Size int
	// TTL is how long a publication is kept; 0 keeps it until Size newer
	// ones push it out (or, in memory, the engine's byte budget does).
	TTL time.Duration
}

// Historian is implemented by engines that keep channel history (the
// in-memory engine and the Redis engine do). A publish whose
// Publication.History is set is appended to its channel's history, gets the
// next Position, and is delivered with it; the engine delivers the
// publications of one channel in the order of their offsets.
type Historian interface {
	// History returns the retained publications of channel after offset
	// since, oldest first, at most limit of them (0: no limit), with the
	// channel's current position (the offset of its latest publication,
	// retained or not, and its epoch). since 0 returns everything retained.
	// A channel that never had a publication has position {0, ""}.
	History(ctx context.Context, channel string, since uint64, limit int) ([]*Publication, Position, error)

	// RemoveHistory deletes the history of channel: the next publication
	// starts a new epoch.
	RemoveHistory(ctx context.Context, channel string) error
}

// ErrNoHistory is returned by the server's history methods when the
// channel has no history rule.
var ErrNoHistory = errors.New("bayeux: channel has no history")

// Validate reports what is wrong with r under the channel grammar g (nil
// when nothing is).
func (r HistoryRule) Validate(g channels.Grammar) error {
	if !g.Valid(r.Pattern) || channels.IsMeta(r.Pattern) || channels.IsService(r.Pattern) {
		return fmt.Errorf("history rule: %q is not a channel name or pattern (such as /chat/room or /chat/**) outside /meta and /service", r.Pattern)
	}
	if r.Size < 1 {
		return fmt.Errorf("history rule %q: size must be at least 1, got %d", r.Pattern, r.Size)
	}
	if r.TTL < 0 {
		return fmt.Errorf("history rule %q: ttl must not be negative, got %v", r.Pattern, r.TTL)
	}
	return nil
}

// checkHistoryRules validates the rules of Config.History.
func checkHistoryRules(rules []HistoryRule, g channels.Grammar) error {
	for _, r := range rules {
		if err := r.Validate(g); err != nil {
			return fmt.Errorf("bayeux: %w", err)
		}
	}
	return nil
}

// historyRule returns the rule covering channel: the first in
// Config.History whose pattern matches it, or nil.
func (s *Server) historyRule(channel string) *HistoryRule {
	for i := range s.cfg.History {
		if r := &s.cfg.History[i]; channels.Match(r.Pattern, channel) {
			return r
		}
	}
	return nil
}
