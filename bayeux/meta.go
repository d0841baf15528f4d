package bayeux

import (
	"net/http"
	"strings"
	"time"

	"github.com/bayou-pubsub/bayou/channels"
)

const (
	metaHandshake   = "/meta/handshake"
	metaConnect     = "/meta/connect"
	metaSubscribe   = "/meta/subscribe"
	metaUnsubscribe = "/meta/unsubscribe"
	metaDisconnect  = "/meta/disconnect"
)

// exchange is the processing of one batch of messages: one HTTP request or
// one WebSocket frame. Every message gets a reply carrying its id.
type exchange struct {
	srv     *Server
	req     *http.Request // the HTTP request, or the WebSocket's upgrade request
	ws      *wsConn       // the WebSocket the batch arrived on; nil for HTTP
	replies [][]byte      // encoded replies, in message order

	// connect is an HTTP /meta/connect of this batch, answered after the
	// other replies, when messages arrive or the hold time ends.
	connect *waitingConnect
	// closeAfter asks the WebSocket to close once the replies are written
	// (its session disconnected).
	closeAfter bool
}

// waitingConnect is a successful HTTP /meta/connect not yet answered.
type waitingConnect struct {
	sess  *Session
	reply reply
	hold  time.Duration
}

func (s *Server) newExchange(r *http.Request, ws *wsConn) *exchange {
	return &exchange{srv: s, req: r, ws: ws}
}

// run processes msgs in order.
func (x *exchange) run(msgs []Message) {
	for i := range msgs {
		x.handle(&msgs[i])
	}
}

func (x *exchange) add(r *reply) { x.replies = append(x.replies, r.appendTo(nil)) }

func (x *exchange) handle(m *Message) {
	if !channels.IsMeta(m.Channel) {
		x.publish(m)
		return
	}
	switch m.Channel {
	case metaHandshake:
		x.handshake(m)
	case metaConnect:
		x.connectMsg(m)
	case metaSubscribe:
		x.subscribe(m, true)
	case metaUnsubscribe:
		x.subscribe(m, false)
	case metaDisconnect:
		x.disconnect(m)
	default:
		// Meta channels are matched exactly: /meta/subscribe/x is not a
		// subscribe (faye's CVE-2020-11020).
		x.add(&reply{id: m.ID, clientID: m.ClientID, channel: m.Channel, err: errChannelForbidden(m.Channel)})
	}
}

// handshakeAdvice is the advice of every failed handshake or connect: start
// again with a handshake, after a pause so that rejected clients do not spin.
func (s *Server) handshakeAdvice() *advice {
	return &advice{reconnect: "handshake", interval: s.cfg.RetryInterval.Milliseconds()}
}

// retryAdvice is the advice of a successful handshake or connect.
func (s *Server) retryAdvice(connectionType string) *advice {
	if connectionType == "eventsource" {
		// The stream carries messages; the connect is a heartbeat every timeout.
		return &advice{reconnect: "retry", interval: s.cfg.Timeout.Milliseconds(), hasTimeout: true}
	}
	return &advice{reconnect: "retry", interval: s.cfg.Interval.Milliseconds(),
		timeout: s.cfg.Timeout.Milliseconds(), hasTimeout: true}
}

func (x *exchange) handshake(m *Message) {
	s := x.srv
	r := reply{id: m.ID, channel: metaHandshake, version: true, connTypes: true, err: m.Error}
	if m.Version == "" {
		r.err = errVersionMissing()
	}
	if !m.HasConnectionTypes {
		r.err = errParameterMissing("supportedConnectionTypes")
	} else if !anySupported(m.ConnectionTypes) {
		r.err = errConnTypesNotSupported(m.ConnectionTypes)
	}
	if r.err != "" {
		r.advice = s.handshakeAdvice()
		x.add(&r)
		return
	}
	sess := s.newSession()
	r.successful, r.clientID, r.advice = true, sess.id, s.retryAdvice("")
	x.add(&r)
}

func anySupported(types []string) bool {
	for _, t := range types {
		if supportedConnectionType(t) {
			return true
		}
	}
	return false
}

// newSession creates and registers a session with a fresh clientId.
func (s *Server) newSession() *Session {
	for {
		sess := &Session{id: newClientID(), srv: s, subs: make(map[string]struct{})}
		sess.touch()
		if s.sessions.add(sess) {
			return sess
		}
	}
}

func (x *exchange) connectMsg(m *Message) {
	s := x.srv
	r := reply{id: m.ID, clientID: m.ClientID, channel: metaConnect, err: m.Error}
	sess := s.sessions.get(m.ClientID)
	// faye's precedence: the last applicable check wins.
	if sess == nil {
		r.err = errClientUnknown(m.ClientID)
	}
	if m.ClientID == "" {
		r.err = errParameterMissing("clientId")
	}
	if !supportedConnectionType(m.ConnectionType) {
		r.err = errConnTypesNotSupported([]string{m.ConnectionType})
	}
	if m.ConnectionType == "" {
		r.err = errParameterMissing("connectionType")
	}
	if r.err != "" {
		r.clientID, r.advice = "", s.handshakeAdvice()
		x.add(&r)
		return
	}
	sess.touch()
	r.successful, r.advice = true, s.retryAdvice(m.ConnectionType)
	hold := s.cfg.Timeout
	if m.HasAdviceTimeout {
		hold = min(max(time.Duration(m.AdviceTimeout)*time.Millisecond, 0), s.cfg.Timeout)
	}
	if m.ConnectionType == "eventsource" {
		hold = 0
	}
	if x.ws != nil {
		x.ws.connect(sess, &r, hold, x)
		return
	}
	if x.connect != nil {
		// Two connects in one request: the older one is answered at once.
		x.add(&x.connect.reply)
	}
	x.connect = &waitingConnect{sess: sess, reply: r, hold: hold}
}

func (x *exchange) subscribe(m *Message, subscribe bool) {
	s := x.srv
	r := reply{id: m.ID, clientID: m.ClientID, channel: m.Channel, err: m.Error}
	sess := s.sessions.get(m.ClientID)
	// faye's precedence: the last applicable check wins.
	if sess == nil {
		r.err = errClientUnknown(m.ClientID)
	}
	if m.ClientID == "" {
		r.err = errParameterMissing("clientId")
	}
	if m.Subscription == "" {
		r.err = errParameterMissing("subscription")
	}
	r.subscription = m.Subscription
	if r.subscription == "" {
		r.subscription = "[]"
	}
	if r.err == "" {
		// Channels before a failing one stay (un)subscribed, like faye.
		for _, ch := range subscriptions(m.Subscription) {
			if !s.cfg.Grammar.Valid(ch) {
				r.err = errChannelInvalid(ch)
				break
			}
			if channels.IsMeta(ch) {
				r.err = errChannelForbidden(ch)
				break
			}
			if channels.IsService(ch) {
				// CometD clients subscribe to /service channels to hear
				// replies; the subscription succeeds but is not recorded,
				// since /service messages are never broadcast.
				continue
			}
			if subscribe {
				if err := s.subscribeSession(sess, ch); err != nil {
					s.log.Warn("subscribe failed", "clientId", sess.id, "channel", ch, "err", err)
					r.err = "500:" + ch + ":Subscription failed"
					break
				}
			} else {
				s.unsubscribeSession(sess, ch)
			}
		}
	}
	r.successful = r.err == ""
	x.add(&r)
}

// subscribeSession subscribes sess to pattern; subscribing twice is a no-op.
func (s *Server) subscribeSession(sess *Session, pattern string) error {
	pattern = strings.Clone(pattern) // it outlives the request buffer
	sess.mu.Lock()
	if _, dup := sess.subs[pattern]; dup || sess.closed {
		sess.mu.Unlock()
		return nil
	}
	sess.subs[pattern] = struct{}{}
	sess.mu.Unlock()
	if _, first := s.index.Add(pattern, sess); first {
		if err := s.engine.Subscribe(s.ctx, pattern); err != nil {
			sess.mu.Lock()
			delete(sess.subs, pattern)
			sess.mu.Unlock()
			s.index.Remove(pattern, sess)
			return err
		}
	}
	sess.mu.Lock()
	closed := sess.closed
	sess.mu.Unlock()
	if closed { // the session ended meanwhile; do not leave it in the index
		s.unsubscribeIndex(pattern, sess)
	}
	return nil
}

// unsubscribeSession removes one subscription; unknown ones are ignored.
func (s *Server) unsubscribeSession(sess *Session, pattern string) {
	sess.mu.Lock()
	_, ok := sess.subs[pattern]
	delete(sess.subs, pattern)
	sess.mu.Unlock()
	if ok {
		s.unsubscribeIndex(pattern, sess)
	}
}

func (x *exchange) disconnect(m *Message) {
	s := x.srv
	r := reply{id: m.ID, clientID: m.ClientID, channel: metaDisconnect, err: m.Error}
	sess := s.sessions.get(m.ClientID)
	if sess == nil {
		r.err = errClientUnknown(m.ClientID)
	}
	if m.ClientID == "" {
		r.err = errParameterMissing("clientId")
	}
	if r.err != "" {
		r.clientID = ""
		x.add(&r)
		return
	}
	if x.ws != nil && x.ws.boundTo(sess) {
		// The disconnect came on the session's own socket: answer it there,
		// then close the socket.
		if held := x.ws.detach(sess); held != nil {
			x.replies = append(x.replies, held)
		}
		x.closeAfter = true
	}
	s.end(sess, endDisconnect)
	r.successful = true
	x.add(&r)
}

func (x *exchange) publish(m *Message) {
	s := x.srv
	r := reply{id: m.ID, clientID: m.ClientID, channel: m.Channel, err: m.Error}
	if !s.cfg.Grammar.ValidName(m.Channel) {
		r.err = errChannelInvalid(m.Channel)
	}
	if m.Data == "" {
		r.err = errParameterMissing("data")
	}
	if r.err == "" && !channels.IsService(m.Channel) {
		if err := s.engine.Publish(s.ctx, m.Channel, encodeDelivery(m)); err != nil {
			s.log.Warn("publish failed", "channel", m.Channel, "err", err)
			r.err = errPublishFailed(m.Channel)
		}
	}
	r.successful = r.err == ""
	x.add(&r)
}
