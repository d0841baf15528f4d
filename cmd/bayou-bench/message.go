package main

import "strconv"

// benchMsg is one benchmark publish: its payload is {"s":seq,"t":sent,
// "p":pub,"m":0|1[,"x":pad]}.
type benchMsg struct {
	channel  string
	seq      int64
	sent     int64 // unix nanoseconds
	pub      int
	measured bool
	pad      string
	clientID string // set: a Bayeux message with an id "seq-m-target"
	target   int
	wrap     bool // in a JSON array (a WebSocket frame)
}

// appendPublish appends m as a Bayeux publish (or, without a clientID, as
// an anonymous one, or an HTTP API publish) to buf.
func appendPublish(buf []byte, m benchMsg) []byte {
	if m.wrap {
		buf = append(buf, '[')
	}
	buf = append(buf, `{"channel":"`...)
	buf = append(buf, m.channel...)
	buf = append(buf, `","data":{"s":`...)
	buf = strconv.AppendInt(buf, m.seq, 10)
	buf = append(buf, `,"t":`...)
	buf = strconv.AppendInt(buf, m.sent, 10)
	buf = append(buf, `,"p":`...)
	buf = strconv.AppendInt(buf, int64(m.pub), 10)
	buf = append(buf, `,"m":`...)
	buf = append(buf, "01"[b2i(m.measured)])
	if m.pad != "" {
		buf = append(buf, `,"x":"`...)
		buf = append(buf, m.pad...)
		buf = append(buf, '"')
	}
	buf = append(buf, '}')
	if m.clientID != "" {
		buf = append(buf, `,"clientId":"`...)
		buf = append(buf, m.clientID...)
		buf = append(buf, `","id":"`...)
		buf = strconv.AppendInt(buf, m.seq, 10)
		buf = append(buf, '-', "01"[b2i(m.measured)], '-')
		buf = strconv.AppendInt(buf, int64(m.target), 10)
		buf = append(buf, '"')
	}
	buf = append(buf, '}')
	if m.wrap {
		buf = append(buf, ']')
	}
	return buf
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}
