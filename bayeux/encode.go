package bayeux

import (
	"strconv"
	"unicode/utf8"
)

// Reply is the server's answer to one message. Outgoing extensions may
// change it (for example add advice or ext) before it is encoded.
type Reply struct {
	ID           string // raw JSON of the request's id; omitted when empty
	ClientID     string // omitted when empty
	Channel      string // omitted when empty
	Successful   bool
	Error        string // omitted when empty
	Subscription string // raw JSON; omitted when empty
	Advice       *Advice
	Ext          string // raw JSON object; omitted when empty
	Data         string // raw JSON; set on the replies of /service handlers

	// Session is the session the reply goes to, when there is one.
	Session *Session

	version   bool // adds "version":"1.0" (handshakes)
	connTypes bool // adds supportedConnectionTypes (handshakes)
}

// Advice is Bayeux reconnect advice: intervals and timeouts in
// milliseconds. Reconnect is "retry", "handshake" or "none".
type Advice struct {
	Reconnect string
	Interval  int64
	Timeout   int64
	// HasTimeout reports whether Timeout is sent.
	HasTimeout bool
}

// connectionTypes are the transports this server implements, in faye's
// order.
var connectionTypes = []string{
	"long-polling", "cross-origin-long-polling", "callback-polling", "websocket", "eventsource",
}

var connectionTypesJSON = func() []byte {
	b := []byte{'['}
	for i, t := range connectionTypes {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, t)
	}
	return append(b, ']')
}()

func supportedConnectionType(t string) bool {
	for _, c := range connectionTypes {
		if c == t {
			return true
		}
	}
	return false
}

// appendTo appends the JSON object of r to b.
func (r *Reply) appendTo(b []byte) []byte {
	b = append(b, '{')
	if r.ID != "" {
		b = append(b, `"id":`...)
		b = append(b, r.ID...)
		b = append(b, ',')
	}
	if r.ClientID != "" {
		b = append(b, `"clientId":`...)
		b = appendString(b, r.ClientID)
		b = append(b, ',')
	}
	if r.Channel != "" {
		b = append(b, `"channel":`...)
		b = appendString(b, r.Channel)
		b = append(b, ',')
	}
	if r.Successful {
		b = append(b, `"successful":true`...)
	} else {
		b = append(b, `"successful":false`...)
	}
	if r.version {
		b = append(b, `,"version":"1.0"`...)
	}
	if r.connTypes {
		b = append(b, `,"supportedConnectionTypes":`...)
		b = append(b, connectionTypesJSON...)
	}
	if r.Error != "" {
		b = append(b, `,"error":`...)
		b = appendString(b, r.Error)
	}
	if r.Subscription != "" {
		b = append(b, `,"subscription":`...)
		b = append(b, r.Subscription...)
	}
	if a := r.Advice; a != nil {
		b = append(b, `,"advice":{"reconnect":`...)
		b = appendString(b, a.Reconnect)
		b = append(b, `,"interval":`...)
		b = strconv.AppendInt(b, a.Interval, 10)
		if a.HasTimeout {
			b = append(b, `,"timeout":`...)
			b = strconv.AppendInt(b, a.Timeout, 10)
		}
		b = append(b, '}')
	}
	if r.Ext != "" {
		b = append(b, `,"ext":`...)
		b = append(b, r.Ext...)
	}
	if r.Data != "" {
		b = append(b, `,"data":`...)
		b = append(b, r.Data...)
	}
	return append(b, '}')
}

// encodeDelivery builds the message subscribers receive from a publish. It
// is built from a whitelist of fields: the publisher's clientId, advice,
// successful, error and anything else are never forwarded, so a publisher
// cannot steer other clients (faye forwards them; reference I1).
func encodeDelivery(m *Message) []byte {
	n := 32 + len(m.Channel) + len(m.Data) + len(m.ID) + len(m.Ext)
	b := make([]byte, 0, n)
	b = append(b, `{"channel":`...)
	b = appendString(b, m.Channel)
	b = append(b, `,"data":`...)
	b = append(b, m.Data...)
	if m.ID != "" {
		b = append(b, `,"id":`...)
		b = append(b, m.ID...)
	}
	if m.Ext != "" {
		b = append(b, `,"ext":`...)
		b = append(b, m.Ext...)
	}
	return append(b, '}')
}

// appendArray appends the JSON array of the encoded objects items to b.
func appendArray(b []byte, items [][]byte) []byte {
	b = append(b, '[')
	for i, it := range items {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, it...)
	}
	return append(b, ']')
}

const hexDigits = "0123456789abcdef"

// appendString appends s to b as a JSON string. Invalid UTF-8 becomes
// U+FFFD; U+2028 and U+2029 are escaped so the output is also safe inside
// JavaScript (JSONP).
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
