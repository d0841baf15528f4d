package redis

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"github.com/redis/rueidis"

	"github.com/bayou-pubsub/bayou/bayeux"
	"github.com/bayou-pubsub/bayou/channels"
)

// historyVersion is the first byte of the payload of a publication kept
// in history (see decodeHistoryHeader); headerVersion and audienceVersion
// mark the others.
const historyVersion = 2

// Fields of the meta hash <ns>:hmeta:<channel> and of the entries of the
// stream <ns>:hist:<channel>.
const (
	metaOffset   = "o" // the offset of the latest publication
	metaEpoch    = "e" // the epoch the offsets count in
	entryMessage = "m" // the encoded message
	entryExclude = "x" // the clientId excluded from delivery, or ""
)

// publishScript appends a publication to its channel's history and
// publishes it, atomically.
//
//	KEYS[1] meta hash, KEYS[2] stream
//	ARGV[1] MAXLEN, ARGV[2] stream expiry (ms), ARGV[3] meta expiry (ms),
//	ARGV[4] the epoch to use if the history is new or was lost,
//	ARGV[5] payload head (version, channel, exclude, keep),
//	ARGV[6] message, ARGV[7] exclude, ARGV[8…] pub/sub channels
//
// A missing epoch (or one longer than 100 bytes, not written here: the
// payload gives its length one byte) starts a new history: the old stream,
// if any, goes. The offset is the entry's ID ("<offset>-0"), so that XRANGE
// addresses offsets directly. The payload published is the head, then the
// offset (decimal) and epoch, each behind a length byte, then the message.
// It returns the offset.
const publishScript = `
local epoch = redis.call('HGET', KEYS[1], 'e')
if not epoch or #epoch == 0 or #epoch > 100 then
  epoch = ARGV[4]
  redis.call('DEL', KEYS[1], KEYS[2])
  redis.call('HSET', KEYS[1], 'e', epoch)
end
local off = redis.call('HINCRBY', KEYS[1], 'o', 1)
local o = string.format('%d', off)
redis.call('XADD', KEYS[2], 'MAXLEN', ARGV[1], o .. '-0', 'm', ARGV[6], 'x', ARGV[7])
redis.call('PEXPIRE', KEYS[2], ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
local payload = ARGV[5] .. string.char(#o) .. o .. string.char(#epoch) .. epoch .. ARGV[6]
for i = 8, #ARGV do
  redis.call('PUBLISH', ARGV[i], payload)
end
return off
`

// publishFixedArgs is the number of ARGV of publishScript before the
// pub/sub channels.
const publishFixedArgs = 7

// historyHeader is the decoded prefix of a history payload.
type historyHeader struct {
	channel string
	exclude string
	// keep is how long the channel's stream outlives its latest
	// publication: the rule's TTL, or the meta TTL when it has none.
	keep time.Duration
	pos  bayeux.Position
}

// appendHistoryHead appends the part of a history payload that Publish
// writes:
//
//	version 2 (1 byte) | uvarint len + channel | uvarint len + exclude |
//	uvarint keep (ms)
//
// The script appends the rest: uvarint len + offset (decimal ASCII) |
// uvarint len + epoch | message (each length is one byte).
func appendHistoryHead(dst []byte, channel, exclude string, keep time.Duration) []byte {
	dst = append(dst, historyVersion)
	for _, s := range [...]string{channel, exclude} {
		dst = binary.AppendUvarint(dst, uint64(len(s)))
		dst = append(dst, s...)
	}
	return binary.AppendUvarint(dst, uint64(keep.Milliseconds()))
}

// decodeHistoryHeader reads the header of a history payload and returns
// it with the message that follows. The strings alias payload.
func decodeHistoryHeader(payload string) (h historyHeader, msg string, err error) {
	if len(payload) < 1 || payload[0] != historyVersion {
		return h, "", errBadHeader
	}
	rest := payload[1:]
	var ok bool
	var offset string
	read := func(s *string) bool {
		var n uint64
		if n, rest, ok = readUvarint(rest); !ok || n > uint64(len(rest)) {
			return false
		}
		*s, rest = rest[:n], rest[n:]
		return true
	}
	if !read(&h.channel) || !read(&h.exclude) {
		return h, "", errBadHeader
	}
	var keep uint64
	if keep, rest, ok = readUvarint(rest); !ok || keep > math.MaxInt64/uint64(time.Millisecond) {
		return h, "", errBadHeader
	}
	h.keep = time.Duration(keep) * time.Millisecond
	if !read(&offset) || !read(&h.pos.Epoch) || h.pos.Epoch == "" {
		return h, "", errBadHeader
	}
	if h.pos.Offset, err = strconv.ParseUint(offset, 10, 64); err != nil || h.pos.Offset == 0 {
		return h, "", errBadHeader
	}
	return h, rest, nil
}

// lifetimes returns how long a channel's stream and its meta hash outlive
// its latest publication under a rule with ttl: the stream keeps ttl (or,
// without one, as long as the meta: it is useless once its epoch is
// gone), the meta HistoryMetaTTL (or ttl if longer).
func (e *Engine) lifetimes(ttl time.Duration) (stream, meta time.Duration) {
	meta = max(e.cfg.HistoryMetaTTL, ttl)
	if ttl <= 0 {
		return meta, meta
	}
	return ttl, meta
}

// millis returns d in whole milliseconds, rounded up, at least 1.
func millis(d time.Duration) int64 {
	return max(1, int64((d+time.Millisecond-1)/time.Millisecond))
}

// newEpoch returns a random epoch for a history that starts.
func newEpoch() string { return strconv.FormatUint(rand.Uint64(), 36) }

// publishHistory is Publish for a publication with a history rule: one
// EVALSHA of publishScript, which appends it to the stream and PUBLISHes
// it to every expansion of its channel (patterns).
func (e *Engine) publishHistory(ctx context.Context, p *bayeux.Publication, patterns []string) error {
	r := p.History
	if r.Size < 1 || r.TTL < 0 {
		return fmt.Errorf("redis: publish %q: invalid history rule (size %d, ttl %v)", p.Channel, r.Size, r.TTL)
	}
	keep, metaKeep := e.lifetimes(r.TTL)
	head := appendHistoryHead(make([]byte, 0, 24+len(p.Channel)+len(p.Exclude)), p.Channel, p.Exclude, keep)
	args := make([]string, 0, publishFixedArgs+len(patterns))
	args = append(args,
		strconv.Itoa(r.Size),
		strconv.FormatInt(millis(keep), 10),
		strconv.FormatInt(millis(metaKeep), 10),
		newEpoch(),
		unsafe.String(unsafe.SliceData(head), len(head)), // never written again
		string(p.Message),
		p.Exclude,
	)
	for _, pat := range patterns {
		args = append(args, e.keys.ch+pat)
	}
	ctx, cancel := e.opContext(ctx)
	defer cancel()
	keys := []string{e.keys.hmeta + p.Channel, e.keys.hist + p.Channel}
	if err := e.hist.publish.Exec(ctx, e.client, keys, args).Error(); err != nil {
		return fmt.Errorf("redis: publish %q: %w", p.Channel, err)
	}
	return nil
}

// History returns the retained publications of channel after offset
// since, oldest first, at most limit of them (limit <= 0: all), with the
// channel's current position: MULTI, XRANGE, HMGET, EXEC in one round
// trip, so that the publications and the position belong together. A
// channel whose meta hash is gone (never published to, removed, or
// silent for longer than HistoryMetaTTL) has position {0, ""} and no
// publications.
func (e *Engine) History(ctx context.Context, channel string, since uint64, limit int) ([]*bayeux.Publication, bayeux.Position, error) {
	if err := e.open(); err != nil {
		return nil, bayeux.Position{}, err
	}
	if !validChannel(channel) {
		return nil, bayeux.Position{}, fmt.Errorf("redis: history of %q: %w", channel, ErrInvalidChannel)
	}
	ctx, cancel := e.opContext(ctx)
	defer cancel()
	entries, pos, err := e.readHistory(ctx, channel, since, 0, max(limit, 0))
	if err != nil {
		return nil, bayeux.Position{}, fmt.Errorf("redis: history of %q: %w", channel, err)
	}
	pubs := make([]*bayeux.Publication, 0, len(entries))
	for _, ent := range entries {
		if p := entryPublication(channel, pos.Epoch, ent); p != nil {
			pubs = append(pubs, p)
		}
	}
	return pubs, pos, nil
}

// RemoveHistory deletes the history of channel (DEL of its stream and
// meta hash): its next publication starts a new epoch at offset 1.
func (e *Engine) RemoveHistory(ctx context.Context, channel string) error {
	if err := e.open(); err != nil {
		return err
	}
	if !validChannel(channel) {
		return fmt.Errorf("redis: remove history of %q: %w", channel, ErrInvalidChannel)
	}
	ctx, cancel := e.opContext(ctx)
	defer cancel()
	c := e.client
	if err := c.Do(ctx, c.B().Del().Key(e.keys.hmeta+channel, e.keys.hist+channel).Build()).Error(); err != nil {
		return fmt.Errorf("redis: remove history of %q: %w", channel, err)
	}
	return nil
}

// validChannel reports whether a publication can have channel as its
// channel (see channels.Expand).
func validChannel(channel string) bool {
	var buf [8]string
	return len(channels.AppendExpand(buf[:0], channel)) > 0
}

// readHistory reads, atomically (MULTI/EXEC, one round trip), the stream
// entries of channel with offsets in (after, upto] (upto 0: no bound), at
// most count of them (0: no limit), and the channel's position. Without a
// meta hash the position is {0, ""} and no entries are returned.
func (e *Engine) readHistory(ctx context.Context, channel string, after, upto uint64, count int) ([]rueidis.XRangeEntry, bayeux.Position, error) {
	c := e.client
	start, end := "+", "-" // an empty range when after is the last offset
	if after < math.MaxUint64 {
		start, end = strconv.FormatUint(after+1, 10), "+"
		if upto > 0 {
			end = strconv.FormatUint(upto, 10)
		}
	}
	var xrange rueidis.Completed
	if count > 0 {
		xrange = c.B().Xrange().Key(e.keys.hist + channel).Start(start).End(end).Count(int64(count)).Build()
	} else {
		xrange = c.B().Xrange().Key(e.keys.hist + channel).Start(start).End(end).Build()
	}
	// Reading twice is harmless: the client may send the transaction
	// again on a fresh connection when a network error cut it (as after
	// a Redis restart, when the first command on a pooled connection
	// finds it closed), within ctx.
	res := c.DoMulti(ctx,
		c.B().Multi().Build().ToRetryable(),
		xrange.ToRetryable(),
		c.B().Hmget().Key(e.keys.hmeta+channel).Field(metaOffset, metaEpoch).Build().ToRetryable(),
		c.B().Exec().Build().ToRetryable(),
	)
	for _, r := range res[:3] {
		if err := r.Error(); err != nil {
			return nil, bayeux.Position{}, err
		}
	}
	replies, err := res[3].ToArray()
	if err != nil {
		return nil, bayeux.Position{}, err
	}
	if len(replies) != 2 {
		return nil, bayeux.Position{}, fmt.Errorf("redis: EXEC returned %d replies, want 2", len(replies))
	}
	entries, err := replies[0].AsXRange()
	if err != nil {
		return nil, bayeux.Position{}, err
	}
	meta, err := replies[1].ToArray()
	if err != nil || len(meta) != 2 {
		return nil, bayeux.Position{}, fmt.Errorf("redis: reading the meta hash: %v", err)
	}
	epoch, eerr := meta[1].ToString()
	offset, oerr := meta[0].ToString()
	if eerr != nil || oerr != nil || epoch == "" {
		return nil, bayeux.Position{}, nil // no history (or not ours)
	}
	off, err := strconv.ParseUint(offset, 10, 64)
	if err != nil {
		return nil, bayeux.Position{}, fmt.Errorf("redis: bad offset %q in the meta hash", offset)
	}
	return entries, bayeux.Position{Offset: off, Epoch: epoch}, nil
}

// entryOffset returns the offset of a stream entry ("<offset>-0"), 0 if
// the ID is not one of ours.
func entryOffset(id string) uint64 {
	ms, seq, ok := strings.Cut(id, "-")
	if !ok || seq != "0" {
		return 0
	}
	off, err := strconv.ParseUint(ms, 10, 64)
	if err != nil {
		return 0
	}
	return off
}

// entryPublication returns the publication a stream entry holds, nil if
// the entry is not one of ours. Its strings are fresh from the Redis
// client, so Message aliases them.
func entryPublication(channel, epoch string, ent rueidis.XRangeEntry) *bayeux.Publication {
	off := entryOffset(ent.ID)
	msg, ok := ent.FieldValues[entryMessage]
	if off == 0 || !ok {
		return nil
	}
	return &bayeux.Publication{
		Channel:  channel,
		Message:  unsafe.Slice(unsafe.StringData(msg), len(msg)),
		Exclude:  ent.FieldValues[entryExclude],
		Position: bayeux.Position{Offset: off, Epoch: epoch},
	}
}
