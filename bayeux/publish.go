package bayeux

import "github.com/bayou-pubsub/bayou/channels"

// publish handles a message on a non-meta channel and returns the error of
// its reply ("" when it was published). pub holds a server publish's
// options.
func (x *exchange) publish(m *Message, pub *publishOptions) string {
	s := x.srv
	r := &x.reply
	*r = Reply{ID: m.ID, ClientID: m.ClientID, Channel: m.Channel, Error: m.Error, Session: m.Session}
	if !s.cfg.Grammar.ValidName(m.Channel) {
		r.Error = ErrorInvalidChannel(m.Channel)
	}
	if m.Data == "" {
		r.Error = ErrorParameterMissing("data")
	}
	service := channels.IsService(m.Channel)
	if r.Error == "" && !service {
		p := &Publication{Channel: m.Channel, Message: encodeDelivery(m)}
		if m.Session != nil && s.excludesSender(m.Channel) {
			p.Exclude = m.Session.id
		}
		if pub != nil {
			if pub.exclude != "" {
				p.Exclude = pub.exclude
			}
			p.Audience = pub.audience
			if pub.local != nil {
				// PublishLocal: this node's sessions only.
				s.fanout(p, pub.local)
				p = nil
			}
		}
		if p != nil {
			if s.history != nil && p.Audience == nil {
				// Publishes for some sessions only are never kept: a
				// replay would show them to everyone.
				p.History = s.historyRule(m.Channel)
			}
			if err := s.engine.Publish(x.ctx, p); err != nil {
				s.log.Warn("publish failed", "channel", m.Channel, "err", err)
				r.Error = errPublishFailed(m.Channel)
			}
		}
	}
	r.Successful = r.Error == ""
	x.add(r)
	if !r.Successful {
		return r.Error
	}
	s.stats.published.Add(1)
	if service {
		s.local.dispatch(m)
		x.callService(m)
	}
	if s.hasPublishEvents() {
		s.emitPublish(m.Session, m.Channel, []byte(m.Data))
	}
	return ""
}

// excludesSender reports whether Config.ExcludeSender covers channel.
func (s *Server) excludesSender(channel string) bool {
	for _, p := range s.cfg.ExcludeSender {
		if channels.Match(p, channel) {
			return true
		}
	}
	return false
}
