package main

import (
	"flag"
	"fmt"
	"log/slog"

	"github.com/bayou-pubsub/bayou/extensions/presence"
)

// presenceOptions are the settings of the presence extension.
type presenceOptions struct {
	patterns string
	prefix   string
}

func (p *presenceOptions) register(fs *flag.FlagSet) {
	fs.StringVar(&p.patterns, "presence", "", "comma-separated channel patterns whose subscribers are tracked (e.g. '/chat/*'): clients subscribe to the companion channel (/presence/chat/room1) for the members and their joins and leaves, or ask /service/presence; the API answers GET /presence?channel=; empty disables presence")
	fs.StringVar(&p.prefix, "presence-prefix", presence.DefaultPrefix, "prefix of the companion channels that carry presence events")
}

// extension returns the presence extension, nil when --presence is empty.
func (p *presenceOptions) extension(log *slog.Logger) (*presence.Presence, error) {
	patterns := list(p.patterns)
	if len(patterns) == 0 {
		return nil, nil
	}
	ext, err := presence.New(presence.Config{Channels: patterns, Prefix: p.prefix, Logger: log})
	if err != nil {
		return nil, fmt.Errorf("--presence: %w", err)
	}
	return ext, nil
}
