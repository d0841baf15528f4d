package bayeux

import (
	"unicode/utf8"
)

// encodeDelivery builds the message subscribers receive from a publish. It
// is built from a whitelist of fields: the publisher's clientId, advice,
// successful, error and anything else are never forwarded, so a publisher
// cannot steer other clients (faye forwards them; reference I1). Of a
// client's ext, only what the incoming extensions set is forwarded, unless
// Config.ForwardExt (see deliveredExt).
func encodeDelivery(m *Message) []byte {
	ext := m.Ext
	if m.stripExt {
		ext = m.forwardExt
	}
	n := 32 + len(m.Channel) + len(m.Data) + len(m.ID) + len(ext)
	b := make([]byte, 0, n)
	b = append(b, `{"channel":`...)
	b = appendString(b, m.Channel)
	b = append(b, `,"data":`...)
	b = append(b, m.Data...)
	if m.ID != "" {
		b = append(b, `,"id":`...)
		b = append(b, m.ID...)
	}
	if ext != "" {
		b = append(b, `,"ext":`...)
		b = append(b, ext...)
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
