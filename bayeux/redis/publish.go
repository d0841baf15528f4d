package redis

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/redis/rueidis"

	"github.com/bayou-pubsub/bayou/bayeux"
	"github.com/bayou-pubsub/bayou/channels"
)

// headerVersion is the first byte of the payload of a publication without
// history and without audience; audienceVersion marks those with an
// audience (Server.PublishTo), historyVersion those kept in history. A
// node drops payloads of another version (log, count) rather than misread
// them: a node that predates audiences drops audience publications rather
// than deliver them to every subscriber.
const (
	headerVersion   = 1
	audienceVersion = 3
)

// publisher holds the state of Publish and of the receiving side of
// publications: the sequence counter, the deliver function and the
// duplicate filter.
type publisher struct {
	// epoch tells this engine instance from an earlier one with the same
	// NodeID, whose sequence numbers started over.
	epoch uint64
	seq   atomic.Uint64
	// deliver is set by Start before any message can arrive.
	deliver func(*bayeux.Publication)
	bufs    sync.Pool // *publishBuf

	dedupMu sync.Mutex
	dedup   dedup
	// dropped counts payloads that could not be decoded.
	dropped atomic.Uint64
}

func (p *publisher) init() {
	p.epoch = randUint64()
	p.dedup.windows = make(map[origin]*window)
}

// publishBuf is the per-call scratch space of Publish, pooled.
type publishBuf struct {
	patterns []string
	cmds     []rueidis.Completed
}

// header is the decoded prefix of a publication payload.
type header struct {
	node    string
	epoch   uint64
	seq     uint64
	channel string
	exclude string
	// audience is the publication's audience, nil for everyone.
	audience *bayeux.Audience
}

// appendHeader appends the encoding of h to dst:
//
//	version byte | epoch uint64 BE | uvarint seq |
//	uvarint len + node | uvarint len + channel | uvarint len + exclude
//
// With an audience the version is audienceVersion and three lists follow,
// Users, Roles and ClientIDs, each a uvarint count and its strings (each
// uvarint len + bytes). The message follows the header unchanged.
func appendHeader(dst []byte, h *header) []byte {
	version := byte(headerVersion)
	if h.audience != nil {
		version = audienceVersion
	}
	dst = append(dst, version)
	dst = binary.BigEndian.AppendUint64(dst, h.epoch)
	dst = binary.AppendUvarint(dst, h.seq)
	for _, s := range [...]string{h.node, h.channel, h.exclude} {
		dst = binary.AppendUvarint(dst, uint64(len(s)))
		dst = append(dst, s...)
	}
	if a := h.audience; a != nil {
		for _, list := range [...][]string{a.Users, a.Roles, a.ClientIDs} {
			dst = binary.AppendUvarint(dst, uint64(len(list)))
			for _, s := range list {
				dst = binary.AppendUvarint(dst, uint64(len(s)))
				dst = append(dst, s...)
			}
		}
	}
	return dst
}

// audienceSize is the size of a's encoding in a header, at most.
func audienceSize(a *bayeux.Audience) int {
	if a == nil {
		return 0
	}
	n := 3 * binary.MaxVarintLen64
	for _, list := range [...][]string{a.Users, a.Roles, a.ClientIDs} {
		for _, s := range list {
			n += binary.MaxVarintLen64 + len(s)
		}
	}
	return n
}

// errAudienceHistory refuses a publication with both an audience and a
// history rule: a replay would show it to every subscriber.
var errAudienceHistory = errors.New("a publication with an audience cannot be kept in history")

// errBadHeader reports a payload that decodeHeader cannot read.
var errBadHeader = errors.New("redis: malformed publication header")

// decodeHeader reads the header at the start of payload and returns it
// with the message that follows. The strings of h and msg alias payload.
func decodeHeader(payload string) (h header, msg string, err error) {
	if len(payload) < 9 || payload[0] != headerVersion && payload[0] != audienceVersion {
		return h, "", errBadHeader
	}
	for i := 1; i < 9; i++ {
		h.epoch = h.epoch<<8 | uint64(payload[i])
	}
	rest := payload[9:]
	var ok bool
	if h.seq, rest, ok = readUvarint(rest); !ok {
		return h, "", errBadHeader
	}
	for _, s := range [...]*string{&h.node, &h.channel, &h.exclude} {
		var n uint64
		if n, rest, ok = readUvarint(rest); !ok || n > uint64(len(rest)) {
			return h, "", errBadHeader
		}
		*s, rest = rest[:n], rest[n:]
	}
	if payload[0] == audienceVersion {
		h.audience = new(bayeux.Audience)
		for _, list := range [...]*[]string{&h.audience.Users, &h.audience.Roles, &h.audience.ClientIDs} {
			if *list, rest, ok = readStrings(rest); !ok {
				return h, "", errBadHeader
			}
		}
	}
	return h, rest, nil
}

// readStrings reads a uvarint count and as many strings (each uvarint
// len + bytes) at the start of s. The strings alias s.
func readStrings(s string) (list []string, rest string, ok bool) {
	n, rest, ok := readUvarint(s)
	if !ok || n > uint64(len(rest)) { // each string takes a byte at least
		return nil, s, false
	}
	if n > 0 {
		list = make([]string, 0, n)
	}
	for range n {
		var size uint64
		if size, rest, ok = readUvarint(rest); !ok || size > uint64(len(rest)) {
			return nil, s, false
		}
		list, rest = append(list, rest[:size]), rest[size:]
	}
	return list, rest, true
}

// readUvarint reads a uvarint at the start of s.
func readUvarint(s string) (v uint64, rest string, ok bool) {
	for i, shift := 0, uint(0); i < len(s) && i < binary.MaxVarintLen64; i, shift = i+1, shift+7 {
		c := s[i]
		if c < 0x80 {
			return v | uint64(c)<<shift, s[i+1:], true
		}
		v |= uint64(c&0x7f) << shift
	}
	return 0, s, false
}

// Publish sends p to every node listening to a pattern that matches
// p.Channel, this one included: one PUBLISH per expansion of the channel
// (depth+2 of them, see channels.Expand), pipelined in one round trip,
// whatever the number of nodes and subscribers. It returns once Redis has
// acknowledged all of them, so one publisher's messages keep their order,
// or an error within OpTimeout (the message may then have reached some
// nodes, or none).
//
// When p.History is set, p is also appended to its channel's history and
// gets the next offset: the same PUBLISH commands, run with the append by
// one Lua script (one EVALSHA, one round trip). p.Audience travels in the
// payload's header to every node; a publication with both an Audience and
// a History rule is refused.
func (e *Engine) Publish(ctx context.Context, p *bayeux.Publication) error {
	if err := e.running(); err != nil {
		return err
	}
	if p.History != nil && p.Audience != nil {
		return fmt.Errorf("redis: publish %q: %w", p.Channel, errAudienceHistory)
	}
	buf, _ := e.pub.bufs.Get().(*publishBuf)
	if buf == nil {
		buf = new(publishBuf)
	}
	buf.patterns = channels.AppendExpand(buf.patterns[:0], p.Channel)
	if len(buf.patterns) == 0 {
		e.pub.bufs.Put(buf)
		return fmt.Errorf("redis: publish %q: %w", p.Channel, ErrInvalidChannel)
	}
	if p.History != nil {
		err := e.publishHistory(ctx, p, buf.patterns)
		clear(buf.patterns) // not held by the client: publishHistory copies them
		buf.patterns = buf.patterns[:0]
		e.pub.bufs.Put(buf)
		return err
	}
	h := header{
		node:     e.cfg.NodeID,
		epoch:    e.pub.epoch,
		seq:      e.pub.seq.Add(1),
		channel:  p.Channel,
		exclude:  p.Exclude,
		audience: p.Audience,
	}
	payload := make([]byte, 0, 32+len(h.node)+len(h.channel)+len(h.exclude)+audienceSize(h.audience)+len(p.Message))
	payload = appendHeader(payload, &h)
	payload = append(payload, p.Message...)
	// payload is never written again: share it with every command.
	msg := unsafe.String(unsafe.SliceData(payload), len(payload))

	// All channel names are carved from one string.
	size := 0
	for _, pat := range buf.patterns {
		size += len(e.keys.ch) + len(pat)
	}
	var names strings.Builder
	names.Grow(size)
	for _, pat := range buf.patterns {
		names.WriteString(e.keys.ch)
		names.WriteString(pat)
	}
	all, off := names.String(), 0
	for _, pat := range buf.patterns {
		n := len(e.keys.ch) + len(pat)
		buf.cmds = append(buf.cmds, e.client.B().Publish().Channel(all[off:off+n]).Message(msg).Build())
		off += n
	}

	ctx, cancel := e.opContext(ctx)
	defer cancel()
	for _, r := range e.client.DoMulti(ctx, buf.cmds...) {
		if err := r.Error(); err != nil {
			// The client may still hold buf.cmds (a command queued
			// when the deadline passed): leave buf to the collector.
			return fmt.Errorf("redis: publish %q: %w", p.Channel, err)
		}
	}
	clear(buf.patterns)
	clear(buf.cmds)
	buf.patterns, buf.cmds = buf.patterns[:0], buf.cmds[:0]
	e.pub.bufs.Put(buf)
	return nil
}

// onPublication handles a message received on a pattern channel: the first
// copy of each publication is delivered, the others dropped.
func (e *Engine) onPublication(payload string) {
	if len(payload) > 0 && payload[0] == historyVersion {
		e.onHistoryPublication(payload)
		return
	}
	h, msg, err := decodeHeader(payload)
	if err != nil {
		if e.pub.dropped.Add(1) == 1 {
			e.log.Warn("dropping undecodable publication (reported once)", "err", err, "bytes", len(payload))
		}
		return
	}
	e.pub.dedupMu.Lock()
	first := e.pub.dedup.first(h.node, h.epoch, h.seq, e.nodes.tick.Load())
	e.pub.dedupMu.Unlock()
	if !first {
		return
	}
	e.pub.deliver(&bayeux.Publication{
		Channel: h.channel,
		// The payload string is fresh from the Redis client and
		// referenced nowhere else; Publication.Message is read-only.
		Message:  unsafe.Slice(unsafe.StringData(msg), len(msg)),
		Exclude:  h.exclude,
		Audience: h.audience,
	})
}

// windowBits is the width of a dedup window: how far behind the highest
// sequence number seen from an origin a first copy may still arrive and be
// delivered. Copies of one publication arrive back to back on the node's
// single pub/sub connection, and publications of one origin are reordered
// only among that origin's concurrent Publish calls, so 4096 is ample.
const windowBits = 4096

// origin identifies a publishing engine instance.
type origin struct {
	node  string
	epoch uint64
}

// window is the duplicate filter of one origin: a bitmap of the windowBits
// sequence numbers up to high, bit seq%windowBits set when seq was seen.
type window struct {
	high uint64
	bits [windowBits / 64]uint64
	// tick is the heartbeat tick at which the origin was last heard from.
	tick uint64
}

// dedup is the duplicate filter of all origins. Not safe for concurrent use.
type dedup struct {
	windows map[origin]*window
	// stale counts sequence numbers dropped for being too far behind.
	stale uint64
}

// first reports whether seq from (node, epoch) is seen for the first time,
// and records it. now is the current heartbeat tick. A number more than
// windowBits behind the highest seen is reported as a duplicate.
func (d *dedup) first(node string, epoch, seq, now uint64) bool {
	w := d.windows[origin{node, epoch}]
	if w == nil {
		w = new(window)
		d.windows[origin{strings.Clone(node), epoch}] = w
	}
	w.tick = now
	switch {
	case seq > w.high:
		if seq-w.high >= windowBits {
			clear(w.bits[:])
		} else {
			for s := w.high + 1; s < seq; s++ {
				w.bits[(s%windowBits)/64] &^= 1 << (s % 64)
			}
		}
		w.high = seq
	case w.high-seq >= windowBits:
		d.stale++
		return false
	case w.bits[(seq%windowBits)/64]&(1<<(seq%64)) != 0:
		return false
	}
	w.bits[(seq%windowBits)/64] |= 1 << (seq % 64)
	return true
}

// prune forgets the origins not heard from since tick before.
func (d *dedup) prune(before uint64) {
	for o, w := range d.windows {
		if w.tick < before {
			delete(d.windows, o)
		}
	}
}
