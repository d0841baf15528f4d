package bayeux

import (
	"context"
	"errors"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"golang.org/x/time/rate"

	"github.com/bayou-pubsub/bayou/channels"
)

// exchange is the processing of one batch of messages: one HTTP request or
// one WebSocket frame. Every message gets a reply carrying its id. The
// exchange decides and the transport applies: a successful /meta/connect is
// left in connect for the transport to hold, and closeAfter asks a socket to
// close.
type exchange struct {
	srv *Server
	ctx context.Context
	req *http.Request // the HTTP request, or the WebSocket's upgrade request
	via stream        // the socket the batch arrived on; nil for HTTP
	// ip is the client's address (see ClientIP); client says there is
	// one: the batch came from a client, not from the server itself.
	ip      netip.Addr
	client  bool
	replies [][]byte // encoded replies, in message order

	// connect is the batch's successful /meta/connect, which the transport
	// holds until messages arrive or its hold time ends.
	connect *pendingConnect
	// closeAfter asks the socket to close once the replies are written
	// (its session disconnected on it).
	closeAfter bool
	// handshakes counts the batch's handshakes: one is allowed.
	handshakes int
	// meta is set when the batch has a message on a /meta channel.
	meta bool
	// after runs once the replies are on their way (see finish): replays
	// queue their messages there.
	after []func()
	// hooks is the context of the batch's hooks (see hookContext), made
	// on first use and released by finish; inRun is set by run.
	hooks       context.Context
	releaseHook context.CancelFunc
	inRun       bool
	// reply is the reply publish builds: encoded before the next message
	// is handled, it is kept here rather than allocated for each.
	reply Reply
}

// finish runs what waits for the replies to be sent. The transports call
// it once the replies are written (or could not be).
func (x *exchange) finish() {
	x.releaseHooks()
	for _, f := range x.after {
		f()
	}
	x.after = nil
}

// publishesOnly reports whether the batch held publishes only, with
// nothing waiting for its replies: their replies may wait for those of
// the next batches of the socket.
func (x *exchange) publishesOnly() bool {
	return !x.meta && x.connect == nil && !x.closeAfter && len(x.after) == 0
}

// pendingConnect is a successful /meta/connect not yet answered.
type pendingConnect struct {
	sess  *Session
	reply Reply
	hold  time.Duration
	at    int    // on a socket, its replies go at replies[at]
	batch uint64 // the reply's batch number (acknowledging sessions)
}

func (s *Server) newExchange(ctx context.Context, r *http.Request, via stream) *exchange {
	x := &exchange{srv: s, ctx: ctx, req: r, via: via}
	x.init()
	return x
}

// init sets the client address of a new exchange.
func (x *exchange) init() {
	s, r, via := x.srv, x.req, x.via
	if c, ok := via.(*socket); ok {
		x.ip, x.client = c.ip, true
	} else if r != nil {
		x.ip, x.client = s.requestIP(r), true
	}
}

// frameExchange returns an exchange for a frame of socket c, recycled from
// an earlier frame when one is free; recycle gives it back.
func (s *Server) frameExchange(c *socket) *exchange {
	x, _ := s.exchanges.Get().(*exchange)
	if x == nil {
		return s.newExchange(s.ctx, c.req, c)
	}
	x.srv, x.ctx, x.req, x.via = s, s.ctx, c.req, c
	x.init()
	return x
}

// recycle gives back an exchange of frameExchange once its replies are
// written or copied and finish has run. Nothing may use x afterwards.
func (s *Server) recycle(x *exchange) {
	clear(x.replies)
	*x = exchange{replies: x.replies[:0]}
	s.exchanges.Put(x)
}

// run processes msgs in order.
func (x *exchange) run(msgs []Message) {
	x.inRun = true
	for i := range msgs {
		x.handle(&msgs[i], nil)
	}
}

// add runs the outgoing extensions on r and queues its encoding.
func (x *exchange) add(r *Reply) { x.replies = append(x.replies, x.encode(r)) }

// encodeReply runs the outgoing extensions on r and encodes it.
func (s *Server) encodeReply(ctx context.Context, r *Reply) []byte {
	for _, e := range s.cfg.Extensions {
		e.Outgoing(ctx, r)
	}
	s.stats.countReply(r)
	return r.encoded()
}

// handle resolves the sender's session, runs the incoming extensions and
// dispatches the message. pub holds the options of a publish made through
// the server API (nil for clients' messages). It returns the error of the
// message's reply when it was refused or failed to publish.
func (x *exchange) handle(m *Message, pub *publishOptions) string {
	s := x.srv
	m.Request = x.req
	m.fromServer = pub != nil
	m.x = x
	defer func() { m.x = nil }() // AfterReply works while the message is handled
	if x.inRun {
		s.stats.received[receivedKind(m.Channel)].Add(1)
	} else {
		defer x.finish() // a server publish: a batch of one
	}
	s.debugMessage("message", m, x.ip, "fromServer", pub != nil)
	if m.invalid == "" {
		m.invalid = s.lim.channelError(m.Channel)
	}
	if channels.IsMeta(m.Channel) {
		x.meta = true
	}
	if m.invalid != "" {
		return x.refuse(m, m.invalid, nil)
	}
	switch {
	case m.Channel == channels.MetaHandshake:
		if msg, advice := x.admitHandshake(); msg != "" {
			return x.refuse(m, msg, advice)
		}
		m.Session = s.allocSession()
		m.Session.ip = x.ip
	case m.ClientID != "":
		m.Session = s.sessions.get(m.ClientID)
	}
	if !channels.IsMeta(m.Channel) && !x.admitPublish(m.Session) {
		return x.refuse(m, errPublishRate(m.Channel), nil)
	}
	sent := m.Ext
	if len(s.cfg.Extensions) > 0 {
		ctx := x.hookContext()
		for _, e := range s.cfg.Extensions {
			e.Incoming(ctx, m)
		}
		s.stats.countRejections(m)
	}
	if !channels.IsMeta(m.Channel) {
		if pub == nil && !s.cfg.ForwardExt {
			m.stripExt, m.forwardExt = true, deliveredExt(sent, m.Ext)
		}
		return x.publish(m, pub)
	}
	switch m.Channel {
	case channels.MetaHandshake:
		x.handshake(m)
	case channels.MetaConnect:
		x.connectMsg(m)
	case channels.MetaSubscribe:
		x.subscribe(m, true)
	case channels.MetaUnsubscribe:
		x.subscribe(m, false)
	case channels.MetaDisconnect:
		x.disconnect(m)
	default:
		// Meta channels are matched exactly: /meta/subscribe/x is not a
		// subscribe (faye's CVE-2020-11020).
		x.add(&Reply{ID: m.ID, ClientID: m.ClientID, Channel: m.Channel, Error: ErrorForbidden(m.Channel), Session: m.Session})
	}
	s.local.dispatch(m)
	return ""
}

// refuse answers m with error msg before extensions or handlers see it:
// the message was invalid or over a limit. Handshakes and connects get
// advice to handshake again (or the given advice).
func (x *exchange) refuse(m *Message, msg string, advice *Advice) string {
	r := Reply{ID: m.ID, Channel: m.Channel, Error: msg, Advice: advice}
	if len(r.Channel) > x.srv.lim.chanLen {
		r.Channel = clip(r.Channel)
	}
	x.srv.debugMessage("message refused", m, x.ip, "error", msg)
	if advice == nil && (m.Channel == channels.MetaHandshake || m.Channel == channels.MetaConnect) {
		r.Advice = x.srv.handshakeAdvice()
	}
	x.add(&r)
	return msg
}

// admitHandshake applies the limits on handshakes: one per batch, and
// Config.HandshakeRate per client address. It returns the error and advice
// of a refusal, or "".
func (x *exchange) admitHandshake() (string, *Advice) {
	s := x.srv
	if x.handshakes++; x.handshakes > 1 {
		return errTooManyHandshakes, nil
	}
	if s.throttle == nil || !x.client {
		return "", nil
	}
	if ok, wait := s.throttle.allowHandshake(limitAddr(x.ip)); !ok {
		a := s.handshakeAdvice()
		a.Interval = max(a.Interval, wait.Milliseconds()+1)
		return errHandshakeRate, a
	}
	return "", nil
}

// admitPublish applies Config.PublishRate: per session, or per client
// address for anonymous publishes. The server's own publishes (no request)
// are not limited.
func (x *exchange) admitPublish(sess *Session) bool {
	if sess != nil && sess.publishes != nil {
		return sess.publishes.Allow()
	}
	if sess == nil && x.client && x.srv.throttle != nil {
		return x.srv.throttle.allowPublish(limitAddr(x.ip))
	}
	return true
}

// failureAdvice is the advice of a failed handshake or connect: handshake
// again after a pause, or stop when an extension said the failure is final.
func (s *Server) failureAdvice(m *Message) *Advice {
	if m.Final {
		return &Advice{Reconnect: "none", Interval: s.cfg.RetryInterval.Milliseconds()}
	}
	return s.handshakeAdvice()
}

// handshakeAdvice is the advice of every failed handshake or connect: start
// again with a handshake, after a pause so that rejected clients do not spin.
func (s *Server) handshakeAdvice() *Advice {
	return &Advice{Reconnect: "handshake", Interval: s.cfg.RetryInterval.Milliseconds()}
}

// retryAdvice is the advice of a successful handshake or connect (acked:
// of an acknowledging session, whose connects carry its messages).
func (s *Server) retryAdvice(connectionType string, acked bool) *Advice {
	if connectionType == "eventsource" && !acked {
		// The stream carries messages; the connect is a heartbeat every timeout.
		return &Advice{Reconnect: "retry", Interval: s.cfg.Timeout.Milliseconds(), HasTimeout: true}
	}
	return &Advice{Reconnect: "retry", Interval: s.cfg.Interval.Milliseconds(),
		Timeout: s.cfg.Timeout.Milliseconds(), HasTimeout: true}
}

func (x *exchange) handshake(m *Message) {
	s := x.srv
	r := Reply{ID: m.ID, Channel: channels.MetaHandshake, version: true, connTypes: true, Error: m.Error}
	if m.Version == "" {
		r.Error = errVersionMissing()
	}
	if !m.HasConnectionTypes {
		r.Error = ErrorParameterMissing("supportedConnectionTypes")
	} else if !anySupported(m.ConnectionTypes) {
		r.Error = errConnTypesNotSupported(m.ConnectionTypes)
	}
	if r.Error != "" {
		r.Advice = s.failureAdvice(m)
		x.add(&r)
		return
	}
	sess := m.Session
	ext := handshakeExt(m.Ext, sess, !s.cfg.NoAck)
	s.register(sess)
	if s.cluster != nil {
		if err := s.cluster.ClaimSession(x.ctx, sess.id, s.claimTTL()); err != nil {
			s.sessions.remove(sess)
			s.log.Warn("cluster: claiming a new session", "err", err)
			r.Error, r.Advice = errClusterUnavailable, s.failureAdvice(m)
			x.add(&r)
			return
		}
		sess.claimed.Store(time.Now().UnixNano())
	}
	r.Successful, r.ClientID, r.Advice, r.Session = true, sess.id, s.retryAdvice("", false), sess
	r.Ext = ext
	x.add(&r)
	s.sessionLog.started(sess, x.via != nil)
	s.stats.handshakes.Add(1)
	s.emitHandshake(sess)
}

func anySupported(types []string) bool {
	for _, t := range types {
		if supportedConnectionType(t) {
			return true
		}
	}
	return false
}

// allocSession returns a session with a fresh clientId, not yet
// registered: extensions see it during the handshake, and it is dropped if
// the handshake fails.
func (s *Server) allocSession() *Session {
	sess := &Session{id: newClientID(), srv: s}
	if s.cfg.PublishRate > 0 {
		sess.publishes = rate.NewLimiter(rate.Limit(s.cfg.PublishRate), s.cfg.PublishBurst)
	}
	return sess
}

// register makes a session known, with a new id in the (practically
// impossible) case of a collision.
func (s *Server) register(sess *Session) {
	sess.touch()
	sess.started = time.Now()
	for !s.sessions.add(sess) {
		sess.id = newClientID()
	}
}

func (x *exchange) connectMsg(m *Message) {
	s := x.srv
	r := Reply{ID: m.ID, ClientID: m.ClientID, Channel: channels.MetaConnect, Error: m.Error}
	sess := m.Session
	// faye's precedence: the last applicable check wins.
	if e := clientError(m); e != "" {
		r.Error = e
	}
	if !supportedConnectionType(m.ConnectionType) {
		r.Error = errConnTypesNotSupported([]string{m.ConnectionType})
	}
	if m.ConnectionType == "" {
		r.Error = ErrorParameterMissing("connectionType")
	}
	if r.Error != "" {
		r.ClientID, r.Advice = "", s.failureAdvice(m)
		x.add(&r)
		return
	}
	sess.touch()
	sess.setTransport(m.ConnectionType)
	r.Successful, r.Advice, r.Session = true, s.retryAdvice(m.ConnectionType, sess.ack != nil), sess
	hold := s.cfg.Timeout
	if m.HasAdviceTimeout {
		hold = min(max(time.Duration(m.AdviceTimeout)*time.Millisecond, 0), s.cfg.Timeout)
	}
	if m.ConnectionType == "eventsource" && sess.ack == nil {
		hold = 0 // the stream carries the messages
	}
	if x.connect != nil {
		// Two connects in one batch: the older one is answered at once.
		x.add(&x.connect.reply)
	}
	pc := &pendingConnect{sess: sess, reply: r, hold: hold, at: len(x.replies)}
	if sess.ack != nil {
		pc.batch = sess.acknowledge(ackedBatch(m.Ext))
		pc.reply.Ext = string(appendAckExt(nil, pc.batch))
	}
	x.connect = pc
}

// clientError is the error of a message that needs a session and has
// none: with faye's precedence a missing clientId wins over an unknown one.
// It is "" when the message has a session.
func clientError(m *Message) string {
	switch {
	case m.ClientID == "":
		return ErrorParameterMissing("clientId")
	case m.Session == nil:
		return ErrorUnknownClient(m.ClientID)
	}
	return ""
}

func (x *exchange) subscribe(m *Message, subscribe bool) {
	r := Reply{ID: m.ID, ClientID: m.ClientID, Channel: m.Channel, Error: m.Error, Session: m.Session}
	sess := m.Session
	// faye's precedence: the last applicable check wins.
	if e := clientError(m); e != "" {
		r.Error = e
	}
	if m.Subscription == "" {
		r.Error = ErrorParameterMissing("subscription")
	}
	r.Subscription = m.Subscription
	if r.Subscription == "" {
		r.Subscription = "[]"
	}
	if r.Error == "" {
		x.subscribeAll(m, sess, subscribe, &r)
	}
	r.Successful = r.Error == ""
	x.add(&r)
}

// subscribeAll (un)subscribes sess to the channels of m, replaying those
// its ext asks for. Channels before a failing one stay (un)subscribed, like
// faye; channels an extension rejected (Message.RejectChannel) are skipped
// and the others handled. It sets the reply's error, and the ext of its
// replays and rejections.
func (x *exchange) subscribeAll(m *Message, sess *Session, subscribe bool, r *Reply) {
	r.Error, r.Ext = x.subscribeEach(m, sess, subscribe, &r.Subscription)
}

// subscribeEach does subscribeAll's work; a channel over the limits
// replaces *sub (it is cut short in the echo).
func (x *exchange) subscribeEach(m *Message, sess *Session, subscribe bool, sub *string) (errMsg, ext string) {
	s := x.srv
	var (
		replays map[string]replayRequest
		results []*replayResult
		refused []rejection
	)
	if subscribe && m.Ext != "" {
		var ok bool
		if replays, ok = replayRequests(m.Ext); !ok {
			return errReplayInvalid(m.Subscription), ""
		}
	}
	for _, ch := range subscriptions(m.Subscription) {
		if msg := s.lim.channelError(ch); msg != "" {
			*sub = string(appendString(nil, clip(ch)))
			return msg, ""
		}
		if !s.cfg.Grammar.Valid(ch) {
			return ErrorInvalidChannel(ch), ""
		}
		if channels.IsMeta(ch) {
			return ErrorForbidden(ch), ""
		}
		if e, ok := m.rejection(ch); ok {
			refused = append(refused, rejection{channel: ch, err: e})
			continue
		}
		if channels.IsService(ch) {
			// CometD clients subscribe to /service channels to hear
			// replies; the subscription succeeds but is not recorded,
			// since /service messages are never broadcast.
			continue
		}
		if !subscribe {
			s.unsubscribeSession(sess, ch)
			continue
		}
		rq, replay := replays[ch]
		if replay && rq.from == replayNew && s.historyRule(ch) == nil {
			replay = false // nothing to replay, no position to give
		}
		if !replay {
			if err := s.subscribeSession(x.ctx, sess, ch); err != nil {
				return subscribeError(s, sess, ch, err), ""
			}
			continue
		}
		if !replayable(ch) {
			return errReplayInvalid(ch), ""
		}
		if s.history == nil || s.historyRule(ch) == nil {
			// No history: everything retained is nothing, a position
			// is lost.
			if rq.from >= 0 && s.replayPolicy(m.Ext) == ReplayLostError {
				return errReplayLost(ch, rq.from), ""
			}
			if err := s.subscribeSession(x.ctx, sess, ch); err != nil {
				return subscribeError(s, sess, ch, err), ""
			}
			results = append(results, &replayResult{channel: ch, recovered: rq.from < 0})
			continue
		}
		msg, res := x.subscribeReplay(sess, ch, rq, s.replayPolicy(m.Ext))
		if msg != "" {
			return msg, ""
		}
		if res != nil {
			results = append(results, res)
		}
	}
	var b []byte
	if len(results) > 0 {
		b = appendReplayExt(nil, results)
	}
	if len(refused) > 0 {
		b = appendRejectedExt(b, refused)
		errMsg = refused[0].err
	}
	return errMsg, string(b)
}

// errTooManySubs refuses a subscription past Config.MaxSubscriptions.
var errTooManySubs = errors.New("bayeux: too many subscriptions")

// subscribeSession subscribes sess to pattern; subscribing twice is a no-op.
func (s *Server) subscribeSession(ctx context.Context, sess *Session, pattern string) error {
	pattern = strings.Clone(pattern) // it outlives the request buffer
	if added, err := sess.addSubscription(pattern, s.cfg.MaxSubscriptions); !added {
		return err
	}
	if err := s.acquire(ctx, pattern); err != nil {
		sess.removeSubscription(pattern)
		return err
	}
	s.index.Add(pattern, sess)
	if sess.ended() { // the session ended meanwhile; do not leave it in the index
		s.unindex(sess, pattern)
		return nil
	}
	s.emitSubscribe(sess, pattern)
	return nil
}

// unsubscribeSession removes one subscription; unknown ones are ignored.
func (s *Server) unsubscribeSession(sess *Session, pattern string) {
	if sess.removeSubscription(pattern) {
		s.unindex(sess, pattern)
	}
}

func (x *exchange) disconnect(m *Message) {
	s := x.srv
	r := Reply{ID: m.ID, ClientID: m.ClientID, Channel: channels.MetaDisconnect, Error: m.Error, Session: m.Session}
	sess := m.Session
	if e := clientError(m); e != "" {
		r.Error = e
	}
	if r.Error != "" {
		r.ClientID = ""
		x.add(&r)
		return
	}
	if x.via != nil {
		if held, bound := sess.unbind(x.via); bound {
			// The disconnect came on the session's own socket: answer it
			// there (with the connect held on it), then close the socket.
			if held != nil {
				x.replies = append(x.replies, held.reply)
			}
			x.closeAfter = true
		}
	}
	r.Successful = true
	x.add(&r)
	s.end(sess, EndDisconnect)
}
