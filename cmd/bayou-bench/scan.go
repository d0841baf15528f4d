package main

import "errors"

// The receive path parses every frame by hand, once, into a reused
// msgFields: no allocation per message or per frame. It understands just
// what the load generator needs from a Bayeux message: channel, id,
// successful, error, and the benchmark payload in data
// ({"s":seq,"t":sendUnixNano,"p":publisher,"m":0|1,...}).

var errSyntax = errors.New("malformed JSON frame")

// msgFields is one message of a frame. Byte slices alias the frame buffer
// and are valid until the buffer is reused.
type msgFields struct {
	channel    []byte
	id         []byte
	errText    []byte
	successful int8 // -1 absent, 0 false, 1 true
	hasData    bool // data was an object holding "s"
	seq        int64
	sent       int64 // unix nanoseconds
	pub        int64
	measured   bool
}

func (f *msgFields) reset() {
	f.channel, f.id, f.errText = nil, nil, nil
	f.successful = -1
	f.hasData = false
	f.seq, f.sent, f.pub = 0, 0, 0
	f.measured = false
}

// isMeta reports whether the message is on a /meta/ channel.
func (f *msgFields) isMeta() bool {
	c := f.channel
	return len(c) >= 6 && string(c[:6]) == "/meta/"
}

// frameIter walks the messages of one frame: a JSON array of objects, or a
// single object.
type frameIter struct {
	b      []byte
	i      int
	single bool
	done   bool
	err    error
}

func (it *frameIter) reset(b []byte) {
	it.b, it.i, it.done, it.err, it.single = b, 0, false, nil, false
	it.skipWS()
	if it.i >= len(it.b) {
		it.done = true
		return
	}
	switch it.b[it.i] {
	case '[':
		it.i++
	case '{':
		it.single = true
	default:
		it.fail()
	}
}

func (it *frameIter) fail() {
	if it.err == nil {
		it.err = errSyntax
	}
	it.done = true
}

func (it *frameIter) skipWS() {
	for it.i < len(it.b) {
		switch it.b[it.i] {
		case ' ', '\t', '\n', '\r':
			it.i++
		default:
			return
		}
	}
}

// next parses the next message into f; it returns false at the end of the
// frame or on an error (see it.err).
func (it *frameIter) next(f *msgFields) bool {
	if it.done {
		return false
	}
	it.skipWS()
	if it.i >= len(it.b) {
		it.fail()
		return false
	}
	if !it.single {
		if it.b[it.i] == ']' {
			it.done = true
			return false
		}
		if it.b[it.i] == ',' {
			it.i++
			it.skipWS()
		}
	}
	if it.i >= len(it.b) || it.b[it.i] != '{' {
		it.fail()
		return false
	}
	f.reset()
	if !it.object(f) {
		it.fail()
		return false
	}
	if it.single {
		it.done = true
	}
	return true
}

// members walks the members of the object at it.i, calling value with each
// key once it.i is at the member's value; value must consume the value.
func (it *frameIter) members(value func(key []byte) bool) bool {
	it.i++ // '{'
	for {
		it.skipWS()
		if it.i >= len(it.b) {
			return false
		}
		switch it.b[it.i] {
		case '}':
			it.i++
			return true
		case ',':
			it.i++
			continue
		case '"':
		default:
			return false
		}
		key, ok := it.str()
		if !ok {
			return false
		}
		it.skipWS()
		if it.i >= len(it.b) || it.b[it.i] != ':' {
			return false
		}
		it.i++
		it.skipWS()
		if it.i >= len(it.b) || !value(key) {
			return false
		}
	}
}

// object parses a message object at it.i.
func (it *frameIter) object(f *msgFields) bool {
	return it.members(func(key []byte) bool {
		var ok bool
		switch string(key) {
		case "channel":
			f.channel, ok = it.strValue()
			return ok
		case "id":
			if it.b[it.i] == '"' {
				f.id, ok = it.str()
				return ok
			}
			start := it.i
			if !it.skip() {
				return false
			}
			f.id = it.b[start:it.i]
			return true
		case "error":
			f.errText, ok = it.strValue()
			return ok
		case "successful":
			switch {
			case hasPrefix(it.b[it.i:], "true"):
				f.successful = 1
				it.i += 4
				return true
			case hasPrefix(it.b[it.i:], "false"):
				f.successful = 0
				it.i += 5
				return true
			}
		case "data":
			if it.b[it.i] == '{' {
				return it.data(f)
			}
		}
		return it.skip()
	})
}

// data parses the benchmark payload object.
func (it *frameIter) data(f *msgFields) bool {
	return it.members(func(key []byte) bool {
		if len(key) != 1 {
			return it.skip()
		}
		var (
			n  int64
			ok bool
		)
		switch key[0] {
		case 's':
			n, ok = it.int()
			f.seq, f.hasData = n, true
		case 't':
			f.sent, ok = it.int()
		case 'p':
			f.pub, ok = it.int()
		case 'm':
			n, ok = it.int()
			f.measured = n != 0
		default:
			ok = it.skip()
		}
		return ok
	})
}

func hasPrefix(b []byte, s string) bool {
	return len(b) >= len(s) && string(b[:len(s)]) == s
}

// int parses a JSON integer.
func (it *frameIter) int() (int64, bool) {
	neg := false
	if it.i < len(it.b) && it.b[it.i] == '-' {
		neg = true
		it.i++
	}
	start := it.i
	var n int64
	for it.i < len(it.b) {
		c := it.b[it.i]
		if c < '0' || c > '9' {
			break
		}
		n = n*10 + int64(c-'0')
		it.i++
	}
	if it.i == start {
		return 0, false
	}
	if it.i < len(it.b) && (it.b[it.i] == '.' || it.b[it.i] == 'e' || it.b[it.i] == 'E') {
		return 0, false
	}
	if neg {
		n = -n
	}
	return n, true
}

// strValue parses a string, or null (nil).
func (it *frameIter) strValue() ([]byte, bool) {
	if it.b[it.i] == '"' {
		return it.str()
	}
	if hasPrefix(it.b[it.i:], "null") {
		it.i += 4
		return nil, true
	}
	return nil, false
}

// str parses a string at it.i and returns its raw contents (escapes are
// left as they are: the tool only compares plain ASCII names).
func (it *frameIter) str() ([]byte, bool) {
	it.i++ // '"'
	start := it.i
	for it.i < len(it.b) {
		switch it.b[it.i] {
		case '\\':
			it.i += 2
		case '"':
			s := it.b[start:it.i]
			it.i++
			return s, true
		default:
			it.i++
		}
	}
	return nil, false
}

// skip passes over any JSON value at it.i.
func (it *frameIter) skip() bool {
	if it.i >= len(it.b) {
		return false
	}
	switch it.b[it.i] {
	case '"':
		_, ok := it.str()
		return ok
	case '{', '[':
		depth := 0
		for it.i < len(it.b) {
			switch it.b[it.i] {
			case '"':
				if _, ok := it.str(); !ok {
					return false
				}
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					it.i++
					return true
				}
			}
			it.i++
		}
		return false
	default: // number, true, false, null
		start := it.i
		for it.i < len(it.b) {
			switch it.b[it.i] {
			case ',', '}', ']', ' ', '\t', '\n', '\r':
				return it.i > start
			}
			it.i++
		}
		return it.i > start
	}
}
