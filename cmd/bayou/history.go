package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/bayou-pubsub/bayou/bayeux"
	"github.com/bayou-pubsub/bayou/channels"
)

// historyOptions are the settings of channel history, replay and
// acknowledgements (see the package bayeux documentation, "Delivery
// guarantees").
type historyOptions struct {
	rules      historyRules
	maxBytes   int64
	replayLost string
	noAck      bool
	forwardExt bool
}

func (h *historyOptions) register(fs *flag.FlagSet) {
	fs.Var(&h.rules, "history", "keep the last SIZE publications of the channels matching PATTERN, each for at most TTL (a Go duration; none: until pushed out), for clients to replay: PATTERN=SIZE[:TTL], e.g. '/chat/**=100:10m'; repeat the flag for more rules (the first matching one applies), or separate rules with commas (see above)")
	fs.Int64Var(&h.maxBytes, "history-max-bytes", 64<<20, "bytes the in-memory history may take, all channels together (past it the oldest publications go first); with --redis the history is kept in Redis, SIZE per channel")
	fs.StringVar(&h.replayLost, "replay-lost", "error", "answer to a subscribe replaying from a position no longer retained: error (a 400 error, as Salesforce does) or report (subscribed, the reply's ext says the messages were not recovered)")
	fs.BoolVar(&h.noAck, "no-ack", false, "turn off the acknowledgement extension (CometD's AckExtension) that clients enable in their handshake")
	fs.BoolVar(&h.forwardExt, "forward-ext", false, "deliver a publisher's ext to subscribers, as faye does (by default they get only what the server's extensions set: a client's credentials are never broadcast)")
}

func (h *historyOptions) validate() error {
	if h.maxBytes <= 0 {
		return fmt.Errorf("--history-max-bytes must be positive, got %v", h.maxBytes)
	}
	_, err := h.policy()
	return err
}

// policy parses --replay-lost.
func (h *historyOptions) policy() (bayeux.ReplayLostPolicy, error) {
	switch h.replayLost {
	case "error":
		return bayeux.ReplayLostError, nil
	case "report":
		return bayeux.ReplayLostReport, nil
	}
	return 0, fmt.Errorf("--replay-lost must be error or report, got %q", h.replayLost)
}

// apply sets the history settings in c; the options are valid.
func (h *historyOptions) apply(c *bayeux.Config) {
	c.History = append([]bayeux.HistoryRule(nil), h.rules.list...)
	c.HistoryMaxBytes = h.maxBytes
	c.ReplayLost, _ = h.policy()
	c.NoAck = h.noAck
	c.ForwardExt = h.forwardExt
}

// historyRules is the value of --history: each Set appends the rules of its
// comma-separated text (no channel name or pattern holds a comma), except
// that the first Set after restart replaces the rules, so that the command
// line replaces the environment's rules rather than adding to them.
type historyRules struct {
	list    []bayeux.HistoryRule
	restart bool
}

// String lists the rules in the flag's syntax.
func (r *historyRules) String() string {
	if r == nil {
		return ""
	}
	items := make([]string, len(r.list))
	for i, rule := range r.list {
		items[i] = fmt.Sprintf("%s=%d", rule.Pattern, rule.Size)
		if rule.TTL > 0 {
			items[i] += ":" + rule.TTL.String()
		}
	}
	return strings.Join(items, ",")
}

// Set adds the comma-separated rules of s.
func (r *historyRules) Set(s string) error {
	var add []bayeux.HistoryRule
	for _, item := range list(s) {
		rule, err := parseHistoryRule(item)
		if err != nil {
			return err
		}
		add = append(add, rule)
	}
	if len(add) == 0 {
		return errors.New("want PATTERN=SIZE[:TTL], got nothing")
	}
	if r.restart {
		r.list, r.restart = nil, false
	}
	r.list = append(r.list, add...)
	return nil
}

// parseHistoryRule parses PATTERN=SIZE[:TTL]. Neither "=" nor ":" can be
// part of a channel name, so the first "=" ends the pattern.
func parseHistoryRule(s string) (bayeux.HistoryRule, error) {
	pattern, rest, ok := strings.Cut(s, "=")
	if !ok {
		return bayeux.HistoryRule{}, fmt.Errorf("history rule %q: want PATTERN=SIZE[:TTL]", s)
	}
	sizeText, ttlText, hasTTL := strings.Cut(rest, ":")
	size, err := strconv.Atoi(strings.TrimSpace(sizeText))
	if err != nil {
		return bayeux.HistoryRule{}, fmt.Errorf("history rule %q: size %q is not a whole number", s, sizeText)
	}
	rule := bayeux.HistoryRule{Pattern: strings.TrimSpace(pattern), Size: size}
	if hasTTL {
		if rule.TTL, err = time.ParseDuration(strings.TrimSpace(ttlText)); err != nil {
			return bayeux.HistoryRule{}, fmt.Errorf("history rule %q: ttl %q is not a duration such as 90s, 10m or 24h", s, ttlText)
		}
	}
	return rule, rule.Validate(channels.Strict)
}

// historyRuleJSON is one rule of the config file's "history" array.
type historyRuleJSON struct {
	Pattern string `json:"pattern"`
	Size    int    `json:"size"`
	TTL     string `json:"ttl"` // a Go duration; empty or absent: none
}

// SetJSON sets the rules from the config file's "history" value: an array
// of {"pattern", "size", "ttl"} objects (or of strings in the flag's
// syntax), or one string in the flag's syntax.
func (r *historyRules) SetJSON(raw json.RawMessage) error {
	var text string
	if json.Unmarshal(raw, &text) == nil {
		return r.Set(text)
	}
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		return errors.New(`want an array of {"pattern": "/chat/**", "size": 100, "ttl": "10m"}`)
	}
	var rules historyRules
	for i, item := range items {
		if json.Unmarshal(item, &text) == nil {
			if err := rules.Set(text); err != nil {
				return fmt.Errorf("item %d: %w", i, err)
			}
			continue
		}
		var j historyRuleJSON
		dec := json.NewDecoder(bytes.NewReader(item))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&j); err != nil {
			return fmt.Errorf("item %d: %w", i, err)
		}
		rule := bayeux.HistoryRule{Pattern: j.Pattern, Size: j.Size}
		if j.TTL != "" {
			ttl, err := time.ParseDuration(j.TTL)
			if err != nil {
				return fmt.Errorf("item %d: ttl %q is not a duration such as 90s, 10m or 24h", i, j.TTL)
			}
			rule.TTL = ttl
		}
		if err := rule.Validate(channels.Strict); err != nil {
			return fmt.Errorf("item %d: %w", i, err)
		}
		rules.list = append(rules.list, rule)
	}
	r.list = rules.list
	return nil
}
