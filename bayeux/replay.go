package bayeux

import (
	"context"
	"errors"
	"math"
	"strconv"

	"github.com/tidwall/gjson"

	"github.com/bayou-pubsub/bayou/channels"
)

// Positions on the wire. A copy of a publication on a channel with history
// carries its position in ext: {"replayId": <offset>, "epoch": "<epoch>"}
// (fields of the same names that the publisher put in ext are replaced).
// A /meta/subscribe asks for a replay with ext.replay, Salesforce's
// convention: {"<channel>": V}, V being -1 (only new messages), -2
// (everything retained), an offset N (everything after N), or
// {"replayId": N, "epoch": "E"} (everything after N, in epoch E).

// appendPositioned returns a copy of the encoded delivery msg whose ext
// carries pos.
func appendPositioned(msg []byte, pos Position) []byte {
	ext := gjson.GetBytes(msg, "ext")
	out := make([]byte, 0, len(msg)+48+len(pos.Epoch))
	start, end := len(msg)-1, len(msg)-1 // where the new ext goes
	if ext.Exists() {
		start, end = ext.Index, ext.Index+len(ext.Raw)
		out = append(out, msg[:start]...)
	} else {
		out = append(out, msg[:start]...)
		out = append(out, `,"ext":`...)
	}
	out = append(out, '{')
	if ext.IsObject() {
		ext.ForEach(func(k, v gjson.Result) bool {
			if s := k.String(); s != "replayId" && s != "epoch" {
				out = append(out, k.Raw...)
				out = append(out, ':')
				out = append(out, v.Raw...)
				out = append(out, ',')
			}
			return true
		})
	}
	out = appendPosition(out, pos)
	out = append(out, '}')
	return append(out, msg[end:]...)
}

// appendPosition appends `"replayId":N,"epoch":"E"` to b.
func appendPosition(b []byte, pos Position) []byte {
	b = append(b, `"replayId":`...)
	b = strconv.AppendUint(b, pos.Offset, 10)
	b = append(b, `,"epoch":`...)
	return appendString(b, pos.Epoch)
}

// positioned returns p with its position written into the message.
func positioned(p *Publication) *Publication {
	q := *p
	q.Message = appendPositioned(p.Message, p.Position)
	return &q
}

// Replay requests.
const (
	replayNew = -1 // only messages published from now on
	replayAll = -2 // everything retained
)

// replayRequest is what a subscribe asks to replay for one channel.
type replayRequest struct {
	from  int64  // replayNew, replayAll, or the offset to replay after
	epoch string // the epoch of from, when the client sent it
}

// replayRequests reads ext.replay of a subscribe: the requests by channel,
// and whether an unreadable one was found (the reply then is an error).
func replayRequests(ext string) (map[string]replayRequest, bool) {
	if ext == "" {
		return nil, true
	}
	r := gjson.Get(ext, "replay")
	if !r.IsObject() {
		return nil, true
	}
	reqs := make(map[string]replayRequest)
	ok := true
	r.ForEach(func(k, v gjson.Result) bool {
		var rq replayRequest
		if v.IsObject() {
			id := v.Get("replayId")
			rq.epoch = v.Get("epoch").String()
			v = id
		}
		if v.Type != gjson.Number || v.Num != math.Trunc(v.Num) || v.Num < replayAll || v.Num > math.MaxInt64/2 {
			ok = false
			return false
		}
		rq.from = v.Int()
		reqs[k.String()] = rq
		return true
	})
	return reqs, ok
}

// replayPolicy returns the answer to a lost position for a subscribe: the
// server's, unless its ext asks for a report ("replayLost": "report").
func (s *Server) replayPolicy(ext string) ReplayLostPolicy {
	if ext != "" && gjson.Get(ext, "replayLost").Str == "report" {
		return ReplayLostReport
	}
	return s.cfg.ReplayLost
}

// replayResult is the outcome of a replay for the subscribe's reply.
type replayResult struct {
	channel   string
	pos       Position
	recovered bool
}

// subscribeReplay subscribes sess to the channel ch and replays what rq
// asks for, with no gap and no duplicate at the switch to live messages:
// live publications are held back from the moment the subscription exists
// until the history has been read; then the replayed ones are queued, then
// the held-back ones that came after them. The queueing happens in
// x.after, once the reply is on its way (faye's client drops messages for
// a channel until it has seen the subscribe reply). It returns the error
// of the reply ("" when it succeeded) and the position for the reply's ext.
func (x *exchange) subscribeReplay(sess *Session, ch string, rq replayRequest, policy ReplayLostPolicy) (string, *replayResult) {
	s := x.srv
	since := uint64(math.MaxInt64) // replayNew: only the position
	switch {
	case rq.from == replayAll:
		since = 0
	case rq.from >= 0:
		since = uint64(rq.from)
	}
	began, again := sess.beginRecovery(ch)
	if !began {
		if !again {
			return "", nil // a replay of ch is under way: it answers
		}
		// Subscribed already (a retried subscribe whose reply was lost):
		// what the first one replayed was delivered; answer as it did.
		pubs, pos, err := s.history.History(x.ctx, ch, since, 1)
		if err != nil {
			return errReplayFailed(ch), nil
		}
		return "", &replayResult{channel: ch, pos: pos, recovered: rq.from < 0 || !lost(rq, pubs, pos)}
	}
	if err := s.subscribeSession(x.ctx, sess, ch); err != nil {
		sess.endRecovery(ch, nil, Position{}, false)
		return subscribeError(s, sess, ch, err), nil
	}
	pubs, pos, err := s.history.History(x.ctx, ch, since, 0)
	if err != nil {
		s.log.Warn("replay: reading the history failed", "channel", ch, "err", err)
		s.unsubscribeSession(sess, ch)
		sess.endRecovery(ch, nil, Position{}, false)
		return errReplayFailed(ch), nil
	}
	res := &replayResult{channel: ch, pos: pos, recovered: true}
	if rq.from >= 0 && lost(rq, pubs, pos) {
		if policy == ReplayLostError {
			s.unsubscribeSession(sess, ch)
			sess.endRecovery(ch, nil, Position{}, false)
			return errReplayLost(ch, rq.from), nil
		}
		res.recovered, pubs = false, nil
	}
	x.after = append(x.after, func() { sess.endRecovery(ch, pubs, pos, true) })
	return "", res
}

// lost reports whether the replay after rq.from cannot be complete: the
// epoch changed, the position is ahead of the channel's, or publications
// after it are no longer retained.
func lost(rq replayRequest, pubs []*Publication, pos Position) bool {
	from := uint64(rq.from)
	switch {
	case rq.epoch != "" && rq.epoch != pos.Epoch:
		return true
	case from > pos.Offset:
		return true
	case from == pos.Offset:
		return false
	}
	return len(pubs) == 0 || pubs[0].Position.Offset != from+1
}

// appendReplayExt appends to b the ext of a subscribe reply that replayed:
// {"replay":{"<channel>":{"replayId":N,"epoch":"E","recovered":bool},...}}.
func appendReplayExt(b []byte, results []*replayResult) []byte {
	b = append(b, `{"replay":{`...)
	for i, r := range results {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, r.channel)
		b = append(b, ":{"...)
		b = appendPosition(b, r.pos)
		b = append(b, `,"recovered":`...)
		b = strconv.AppendBool(b, r.recovered)
		b = append(b, '}')
	}
	return append(b, "}}"...)
}

// beginRecovery starts holding back the live publications of channel ch
// for the session, unless it is recovering ch already or has ended, or is
// subscribed to ch already (then again is true).
func (s *Session) beginRecovery(ch string) (began, again bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || s.recovering[ch] != nil {
		return false, false
	}
	if s.subs.has(ch) {
		return false, true
	}
	if s.recovering == nil {
		s.recovering = make(map[string]*recovery)
	}
	s.recovering[ch] = &recovery{}
	return true, false
}

// recovery holds back the live publications of a channel being replayed.
type recovery struct {
	live []heldBack
}

type heldBack struct {
	pos Position
	msg []byte
}

// admit decides for a publication at pos on channel ch, on its way to the
// queue: it is held back while ch is being replayed, dropped when the
// replay delivered it already, else admitted (true). s.mu is held.
func (s *Session) admit(ch string, pos Position, msg []byte) bool {
	if r := s.recovering[ch]; r != nil {
		r.live = append(r.live, heldBack{pos: pos, msg: msg})
		s.pendBytes += len(msg)
		return false
	}
	last, ok := s.replayed[ch]
	if !ok {
		return true
	}
	if last.Epoch == pos.Epoch && pos.Offset <= last.Offset {
		return false
	}
	s.replayed[ch] = pos
	return true
}

// endRecovery ends the recovery of ch. When deliver is set, the replayed
// publications are queued, then the held-back ones after position top;
// otherwise the held-back ones are dropped (the subscribe failed).
func (s *Session) endRecovery(ch string, replayed []*Publication, top Position, deliver bool) {
	s.mu.Lock()
	r := s.recovering[ch]
	if r == nil {
		s.mu.Unlock()
		return
	}
	delete(s.recovering, ch)
	if len(s.recovering) == 0 {
		s.recovering = nil
	}
	for _, h := range r.live {
		s.pendBytes -= len(h.msg)
	}
	if !deliver || s.closed {
		s.mu.Unlock()
		return
	}
	msgs := make([][]byte, 0, len(replayed)+len(r.live))
	n := 0
	for _, p := range replayed {
		if p.Exclude != s.id {
			m := appendPositioned(p.Message, p.Position)
			msgs = append(msgs, m)
			n += len(m)
		}
	}
	fromHistory := len(msgs)
	last := top
	for _, h := range r.live {
		if h.pos.Epoch != top.Epoch || h.pos.Offset > top.Offset {
			msgs = append(msgs, h.msg)
			n += len(h.msg)
			last = h.pos
		}
	}
	if s.queued+s.pendBytes+n > s.srv.cfg.MaxQueueBytes {
		s.mu.Unlock()
		s.srv.log.Warn("dropping slow consumer", "clientId", s.id, "maxQueueBytes", s.srv.cfg.MaxQueueBytes)
		s.srv.crew.spawn(func() { s.srv.end(s, EndSlow) })
		return
	}
	if s.replayed == nil {
		s.replayed = make(map[string]Position)
	}
	s.replayed[ch] = last
	s.srv.stats.replayed.Add(uint64(fromHistory))
	// Queued in one step, so that no live message comes in between.
	first := len(s.queue) == 0 && len(msgs) > 0
	s.queue = append(s.queue, msgs...)
	s.queued += n
	s.wakeLocked(first, false)
}

// subscribeError is the reply error of a failed subscribeSession.
func subscribeError(s *Server, sess *Session, ch string, err error) string {
	if errors.Is(err, errTooManySubs) {
		return errTooManySubscriptions(ch, s.cfg.MaxSubscriptions)
	}
	s.log.Warn("subscribe failed", "clientId", sess.id, "channel", ch, "err", err)
	return "500:" + ch + ":Subscription failed"
}

// History returns the retained publications of channel after offset since
// (0: all of them), oldest first, at most limit (0: no limit), each with
// its Position and its Message carrying it in ext as subscribers receive
// it, and the channel's current position. It returns ErrNoHistory when no
// Config.History rule covers channel.
func (s *Server) History(ctx context.Context, channel string, since uint64, limit int) ([]*Publication, Position, error) {
	if s.history == nil || s.historyRule(channel) == nil {
		return nil, Position{}, ErrNoHistory
	}
	pubs, pos, err := s.history.History(ctx, channel, since, limit)
	if err != nil {
		return nil, Position{}, err
	}
	out := make([]*Publication, len(pubs))
	for i, p := range pubs {
		out[i] = positioned(p)
	}
	return out, pos, nil
}

// RemoveHistory deletes the history of channel; its next publication
// starts a new epoch, so clients holding positions in the old one are told
// their messages were not recovered. It returns ErrNoHistory when no
// Config.History rule covers channel.
func (s *Server) RemoveHistory(ctx context.Context, channel string) error {
	if s.history == nil || s.historyRule(channel) == nil {
		return ErrNoHistory
	}
	return s.history.RemoveHistory(ctx, channel)
}

// replayable reports whether channel can be replayed: a channel name (not
// a pattern) outside /meta and /service.
func replayable(ch string) bool {
	return !channels.IsWildcard(ch) && !channels.IsMeta(ch) && !channels.IsService(ch)
}
