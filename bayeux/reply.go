package bayeux

import "strconv"

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

// encoded returns the JSON object of r in a buffer of its size (larger
// only when strings need escapes): held replies stay in memory as long as
// their connects are held.
func (r *Reply) encoded() []byte {
	n := len(`{"successful":false}`)
	field := func(key, v string, quoted bool) {
		if v != "" {
			n += len(key) + len(v) + 4 // "key": and a comma
			if quoted {
				n += 2
			}
		}
	}
	field("id", r.ID, false)
	field("clientId", r.ClientID, true)
	field("channel", r.Channel, true)
	field("error", r.Error, true)
	field("subscription", r.Subscription, false)
	field("ext", r.Ext, false)
	field("data", r.Data, false)
	if r.version {
		n += len(`,"version":"1.0"`)
	}
	if r.connTypes {
		n += len(`,"supportedConnectionTypes":`) + len(connectionTypesJSON)
	}
	if a := r.Advice; a != nil {
		n += len(`,"advice":{"reconnect":"","interval":,"timeout":}`) + len(a.Reconnect) + 2*20
	}
	return r.appendTo(make([]byte, 0, n))
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
