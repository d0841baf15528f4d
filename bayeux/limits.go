package bayeux

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/tidwall/gjson"
)

// limits bounds what one request may make the server do: how deep its
// JSON nests, how many messages it holds, how long and deep its channels
// are. Every check costs at most a pass over the input, and nothing is
// done per recipient.
type limits struct {
	depth    int // JSON nesting
	batch    int // messages per request or frame
	chanLen  int // bytes per channel name or pattern
	chanSegs int // segments per channel name or pattern
}

func newLimits(c *Config) limits {
	return limits{depth: c.MaxNesting, batch: c.MaxBatch, chanLen: c.MaxChannelLength, chanSegs: c.MaxChannelSegments}
}

// Errors of requests that exceed a limit; like errBadRequest they are
// answered with HTTP 400, and their text says what was exceeded.
var (
	errTooDeep = errors.New("bayeux: JSON nested too deeply")
	errTooMany = errors.New("bayeux: too many messages in one request")
)

// requestError is the text of the HTTP 400 that answers err.
func (l *limits) requestError(err error) string {
	switch {
	case errors.Is(err, errTooDeep):
		return fmt.Sprintf("Bad request: JSON nested more than %d deep", l.depth)
	case errors.Is(err, errTooMany):
		return fmt.Sprintf("Bad request: more than %d messages in one request", l.batch)
	}
	return "Bad request"
}

// parseBatch parses body, a JSON object or an array of objects, into
// messages. It returns errBadRequest when body is not valid JSON or is a
// JSON primitive, errTooDeep when it nests deeper than the limit (checked
// before anything recursive reads it) and errTooMany when it holds more
// messages than the limit. A literal null yields no messages, like faye.
//
// When body is not valid UTF-8 (checked once per batch), each message is
// checked field by field: see repairUTF8.
func (l *limits) parseBatch(body []byte) ([]Message, error) {
	if len(body) == 0 {
		return nil, errBadRequest
	}
	if nestingExceeds(body, l.depth) {
		return nil, errTooDeep
	}
	msgs, err := parseValid(body, l.batch)
	if err != nil || utf8.Valid(body) {
		return msgs, err
	}
	for i := range msgs {
		msgs[i].repairUTF8()
	}
	return msgs, nil
}

// parseValues parses one or more "message" parameters, each a message or a
// batch, into one batch, within the same limits as a single batch.
func (l *limits) parseValues(values []string) ([]Message, error) {
	var all []Message
	for _, v := range values {
		msgs, err := l.parseBatch([]byte(v))
		if err != nil {
			return nil, err
		}
		if len(all)+len(msgs) > l.batch {
			return nil, errTooMany
		}
		all = append(all, msgs...)
	}
	return all, nil
}

// parseValid parses a body whose nesting is known to be bounded.
func parseValid(body []byte, max int) ([]Message, error) {
	if !gjson.ValidBytes(body) {
		return nil, errBadRequest
	}
	// The body is never modified after this point, so the strings parsed out
	// of it may alias it.
	root := gjson.Parse(bytesString(body))
	switch {
	case root.IsArray():
		n := 0
		root.ForEach(func(_, _ gjson.Result) bool { n++; return n <= max })
		if n > max {
			return nil, errTooMany
		}
		msgs := make([]Message, 0, n)
		root.ForEach(func(_, v gjson.Result) bool {
			msgs = append(msgs, parseMessage(v))
			return true
		})
		return msgs, nil
	case root.IsObject():
		return []Message{parseMessage(root)}, nil
	case root.Type == gjson.Null:
		return nil, nil
	}
	return nil, errBadRequest
}

// nestingExceeds reports whether the arrays and objects of the JSON text b
// nest more than max deep. It is a flat scan, so it is safe on any input
// (it does not validate b): the JSON parser, which recurses, runs only on
// text that passed it.
func nestingExceeds(b []byte, max int) bool {
	if bytes.Count(b, openBracket)+bytes.Count(b, openBrace) <= max {
		return false // too few openings to nest that deep: skip the scan
	}
	depth := 0
	for i := 0; i < len(b); i++ {
		switch b[i] {
		case '"':
			i = stringEnd(b, i+1)
		case '[', '{':
			if depth++; depth > max {
				return true
			}
		case ']', '}':
			depth--
		}
	}
	return false
}

var openBracket, openBrace = []byte{'['}, []byte{'{'}

// stringEnd returns the index of the quote that closes the JSON string
// whose contents start at i, or len(b) when it is not closed.
func stringEnd(b []byte, i int) int {
	for {
		q := bytes.IndexByte(b[i:], '"')
		if q < 0 {
			return len(b)
		}
		i += q
		// The quote is escaped when an odd number of backslashes precede it.
		n := 0
		for j := i - 1; j >= 0 && b[j] == '\\'; j-- {
			n++
		}
		if n%2 == 0 {
			return i
		}
		i++
	}
}

// repairUTF8 handles a message of a batch that is not valid UTF-8, so that
// nothing invalid is ever echoed or forwarded (a WebSocket text frame that
// is not UTF-8 makes browsers drop the connection). The fields a reply or a
// delivery echoes as identifiers refuse the message: an invalid channel
// (or subscription) is an invalid channel, an invalid clientId names no
// client, an invalid id gets "400:id:Invalid UTF-8". Content is repaired:
// invalid sequences in data and ext become U+FFFD, as faye (which decodes
// requests as UTF-8 with replacement) would deliver them; each run of
// invalid bytes becomes one U+FFFD. The echoed id and
// subscription are repaired the same way.
func (m *Message) repairUTF8() {
	switch {
	case !utf8.ValidString(m.Channel):
		m.invalid = ErrorInvalidChannel(validUTF8(m.Channel))
	case !utf8.ValidString(m.ClientID):
		m.invalid = ErrorUnknownClient(validUTF8(m.ClientID))
	case !utf8.ValidString(m.Subscription):
		for _, ch := range subscriptions(m.Subscription) {
			if !utf8.ValidString(ch) {
				m.invalid = ErrorInvalidChannel(validUTF8(ch))
				break
			}
		}
	case !utf8.ValidString(m.ID):
		m.invalid = errInvalidUTF8("id")
	}
	m.Channel, m.ClientID = validUTF8(m.Channel), validUTF8(m.ClientID)
	m.ID, m.Subscription = validUTF8(m.ID), validUTF8(m.Subscription)
	m.Data, m.Ext = validUTF8(m.Data), validUTF8(m.Ext)
	m.ConnectionType, m.Version = validUTF8(m.ConnectionType), validUTF8(m.Version)
	for i, t := range m.ConnectionTypes {
		m.ConnectionTypes[i] = validUTF8(t)
	}
}

// validUTF8 replaces each invalid UTF-8 sequence of s with U+FFFD; a valid
// s is returned as is, without copying.
func validUTF8(s string) string { return strings.ToValidUTF8(s, "\uFFFD") }

// channelError returns the error of a channel name or pattern longer than
// the limits allow, or "". The channel is echoed cut short.
func (l *limits) channelError(ch string) string {
	switch {
	case len(ch) > l.chanLen:
		return "405:" + clip(ch) + fmt.Sprintf(":Invalid channel - longer than %d bytes", l.chanLen)
	case strings.Count(ch, "/") > l.chanSegs:
		return "405:" + clip(ch) + fmt.Sprintf(":Invalid channel - more than %d segments", l.chanSegs)
	}
	return ""
}

// clip shortens s for an error message.
func clip(s string) string {
	const n = 64
	if len(s) <= n {
		return s
	}
	s = s[:n]
	for len(s) > 0 && !utf8.ValidString(s) {
		s = s[:len(s)-1] // do not split a rune
	}
	return s + "..."
}
