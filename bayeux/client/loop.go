package client

import (
	"errors"
	"fmt"
	"slices"

	"github.com/bayou-pubsub/bayou/channels"
)

// run is the connect loop: handshake, then /meta/connect after
// /meta/connect, as the server's advice says.
//
//   - reconnect "retry": the next connect is sent advice.interval after the
//     reply (at once with the default interval 0); a held connect returns
//     after advice.timeout at most, or as soon as there are deliveries.
//   - reconnect "handshake" (the server lost the session, e.g. after a
//     restart: "401:<id>:Unknown client"): handshake again after
//     advice.interval, restore every subscription, and resume.
//   - reconnect "none": stop for good (StateClosed, ErrStopped).
//
// Failures (a dropped socket, a server that does not answer, a refused
// handshake) are retried after a pause that grows exponentially, with
// jitter, and is never shorter than advice.interval. After a dropped
// WebSocket the client first opens a new socket and connects with its
// session id, so that a server that kept the session also kept the
// messages queued for it; if no socket can be opened it handshakes again.
func (c *Client) run() {
	defer c.wg.Done()
	fails := 0         // consecutive failures, for the backoff
	handshake := true  // a new session is needed
	immediate := false // ask the server not to hold the next connect
	for c.ctx.Err() == nil {
		if handshake {
			if err := c.handshake(); err != nil {
				if c.ctx.Err() != nil {
					return
				}
				if c.advice().reconnect == "none" {
					c.reportFirst(c.stop(err))
					return
				}
				c.reportFirst(err)
				fails++
				c.log.Warn("bayeux handshake failed", "err", err, "attempt", fails)
				if !c.pause(max(c.advice().interval, c.backoff(fails))) {
					return
				}
				continue
			}
			handshake, immediate = false, true
			c.restoreSubscriptions()
		}

		reply, err := c.connect(immediate)
		if c.ctx.Err() != nil {
			return
		}
		if err != nil {
			c.reportFirst(err)
			c.setState(StateDisconnected, err)
			fails++
			if !c.pause(c.backoff(fails)) {
				return
			}
			handshake, immediate = !c.reopen(), true
			continue
		}

		adv := c.advice()
		if !reply.Successful {
			err := replyError(reply)
			if adv.reconnect == "none" {
				c.reportFirst(c.stop(err))
				return
			}
			c.reportFirst(err)
			c.setState(StateDisconnected, err)
			if adv.reconnect == "handshake" || err.unknownClient() {
				c.dropSession()
				handshake = true
			}
			fails++
			if !c.pause(max(adv.interval, c.backoff(fails))) {
				return
			}
			immediate = true
			continue
		}

		fails, immediate = 0, false
		switch adv.reconnect {
		case "none":
			c.reportFirst(c.stop(errors.New("connect reply advised reconnect none")))
			return
		case "handshake":
			c.setState(StateDisconnected, errors.New("server advised a new handshake"))
			c.dropSession()
			handshake, immediate = true, true
		default:
			c.setState(StateConnected, nil)
			c.reportFirst(nil)
			c.restoreSubscriptions()
		}
		if !c.pause(adv.interval) {
			return
		}
	}
}

// handshake obtains a new session over HTTP and chooses its transport.
func (c *Client) handshake() error {
	m := &Message{
		Channel:                  channels.MetaHandshake,
		ID:                       c.nextID(),
		Version:                  "1.0",
		SupportedConnectionTypes: transportNames(c.opts.transports),
	}
	// Salesforce replays only for sessions that announce it.
	m.SetExt("replay", true)
	if !c.opts.noAck {
		m.SetExt("ack", true)
	}
	p, err := c.start(c.http, m, true, c.opts.requestTimeout)
	if err != nil {
		return fmt.Errorf("handshake: %w", err)
	}
	reply, err := c.await(c.ctx, p, c.opts.requestTimeout)
	if err != nil {
		return fmt.Errorf("handshake: %w", err)
	}
	if !reply.Successful {
		return fmt.Errorf("handshake: %w", replyError(reply))
	}
	if reply.ClientID == "" {
		return errors.New("handshake: reply carries no clientId")
	}
	tr, err := c.chooseTransport(reply.SupportedConnectionTypes)
	if err != nil {
		return fmt.Errorf("handshake: %w", err)
	}
	acking, batch := ackOffered(reply)
	acking = acking && !c.opts.noAck
	c.mu.Lock()
	c.clientID = reply.ClientID
	c.tr = tr
	c.acking, c.batch = acking, batch
	c.epoch.Add(1)
	c.mu.Unlock()
	c.log.Debug("bayeux handshake succeeded", "clientId", reply.ClientID, "transport", tr.name(), "ack", acking)
	return nil
}

// transportNames returns the names of ts, for SupportedConnectionTypes.
func transportNames(ts []Transport) []string {
	names := make([]string, len(ts))
	for i, t := range ts {
		names[i] = string(t)
	}
	return names
}

// ackOffered reads a handshake reply's ext.ack: true, or (CometD's newer
// form) an object {"enabled": true, "batch": N}, when the server enables
// acknowledgements, with the batch to start from.
func ackOffered(reply *Message) (bool, int64) {
	switch v := reply.Ext["ack"].(type) {
	case bool:
		return v, 0
	case map[string]any:
		if enabled, _ := v["enabled"].(bool); enabled {
			n, _ := extUint(v["batch"])
			return true, int64(min(n, 1<<53))
		}
	}
	return false, 0
}

// chooseTransport returns the first of the client's transports that the
// server offers and that works: an open WebSocket is kept across
// handshakes (the server rebinds it to the new session), otherwise one is
// opened; long-polling needs nothing more.
func (c *Client) chooseTransport(offered []string) (transport, error) {
	var wsErr error
	for _, name := range c.opts.transports {
		if !slices.Contains(offered, string(name)) {
			continue
		}
		if name == TransportLongPolling {
			return c.http, nil
		}
		c.mu.Lock()
		ws := c.ws
		c.mu.Unlock()
		if ws != nil && ws.alive() {
			return ws, nil
		}
		if ws, wsErr = c.openWebSocket(); wsErr == nil {
			return ws, nil
		}
		c.log.Info("websocket unavailable", "err", wsErr)
	}
	if wsErr != nil {
		return nil, wsErr
	}
	return nil, fmt.Errorf("no common connection type: server offers %q, client allows %q", offered, c.opts.transports)
}

// openWebSocket opens a socket and makes it the client's, closing the
// previous one.
func (c *Client) openWebSocket() (*wsTransport, error) {
	ws, err := dialWebSocket(c.ctx, c)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		ws.close()
		return nil, ErrClosed
	}
	old := c.ws
	c.ws = ws
	c.mu.Unlock()
	if old != nil {
		old.close()
	}
	return ws, nil
}

// reopen prepares the transport for a new connect after a failure: a
// failed WebSocket is replaced by a new one. It returns false when that is
// impossible, so the client handshakes again.
func (c *Client) reopen() bool {
	c.mu.Lock()
	ws, isWS := c.tr.(*wsTransport)
	c.mu.Unlock()
	if !isWS || ws.alive() {
		return true
	}
	nws, err := c.openWebSocket()
	if err != nil {
		c.log.Debug("reopening websocket failed; handshaking again", "err", err)
		return false
	}
	c.mu.Lock()
	c.tr = nws
	c.mu.Unlock()
	return true
}

// connect sends one /meta/connect and waits for its reply. With immediate
// it asks the server to answer at once (advice.timeout 0), which it does
// after a handshake or a failure, so that the client knows quickly whether
// it is connected; otherwise the server holds it for up to advice.timeout.
func (c *Client) connect(immediate bool) (*Message, error) {
	c.mu.Lock()
	id, tr, adv, acking, batch := c.clientID, c.tr, c.adv, c.acking, c.batch
	c.mu.Unlock()
	if tr == nil {
		return nil, &transportError{errTransportClosed}
	}
	m := &Message{Channel: channels.MetaConnect, ID: c.nextID(), ClientID: id, ConnectionType: string(tr.name())}
	if acking {
		// Everything up to this batch was received.
		m.SetExt("ack", batch)
	}
	timeout := c.opts.requestTimeout
	if immediate {
		zero := int64(0)
		m.Advice = &Advice{Timeout: &zero}
	} else {
		timeout += adv.timeout
	}
	p, err := c.start(tr, m, true, timeout)
	if err != nil {
		return nil, err
	}
	reply, err := c.await(c.ctx, p, timeout)
	if ws, ok := tr.(*wsTransport); ok && err != nil && errors.Is(err, errNoReply) {
		// A socket that leaves a connect unanswered is dead.
		ws.fail(err)
	}
	if err == nil && acking && reply.Successful {
		// The messages of the reply were received with it (before it, in
		// its response or frame): the next connect acknowledges them.
		if n, ok := extUint(reply.Ext["ack"]); ok {
			c.mu.Lock()
			c.batch = int64(min(n, 1<<53))
			c.mu.Unlock()
		}
	}
	return reply, err
}

// dropSession forgets the session the server no longer knows.
func (c *Client) dropSession() {
	c.mu.Lock()
	c.clientID = ""
	c.mu.Unlock()
}

// stop makes the client inert after the server advised reconnect "none",
// and returns the error its operations now fail with.
func (c *Client) stop(cause error) error {
	err := fmt.Errorf("%w: %w", ErrStopped, cause)
	c.mu.Lock()
	c.stopErr = err // before the state change wakes the waiters
	c.clientID = ""
	ws := c.ws
	c.mu.Unlock()
	c.setState(StateClosed, err)
	if ws != nil {
		ws.fail(err)
	}
	c.endSubscriptions(err)
	return err
}
