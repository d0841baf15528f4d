package bayeux

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"

	"github.com/bayou-pubsub/bayou/channels"
)

func TestParseBatch(t *testing.T) {
	tests := []struct {
		name    string
		body    string
		wantErr bool
		want    []Message
	}{
		{name: "malformed", body: `{bad`, wantErr: true},
		{name: "primitive number", body: `1`, wantErr: true},
		{name: "primitive string", body: `"x"`, wantErr: true},
		{name: "empty body", body: ``, wantErr: true},
		{name: "null is an empty batch", body: `null`, want: nil},
		{name: "empty batch", body: `[]`, want: []Message{}},
		{name: "bare object", body: `{"channel":"/a","data":1}`, want: []Message{{Channel: "/a", Data: "1"}}},
		{
			name: "every field",
			body: `[{"channel":"/meta/handshake","version":"1.0","supportedConnectionTypes":["websocket","long-polling"],"id":"1","ext":{"k":[1,2]},"advice":{"timeout":0}}]`,
			want: []Message{{Channel: "/meta/handshake", Version: "1.0", ConnectionTypes: []string{"websocket", "long-polling"},
				HasConnectionTypes: true, ID: `"1"`, Ext: `{"k":[1,2]}`, AdviceTimeout: 0, HasAdviceTimeout: true}},
		},
		{
			name: "data kept byte for byte",
			body: `{"channel":"/a","data":{ "b" : 12345678901234567890, "a":"é\u2028" },"id":7}`,
			want: []Message{{Channel: "/a", Data: `{ "b" : 12345678901234567890, "a":"é\u2028" }`, ID: `7`}},
		},
		{name: "null data is present", body: `{"channel":"/a","data":null}`, want: []Message{{Channel: "/a", Data: "null"}}},
		{name: "falsy version is missing", body: `{"channel":"/meta/handshake","version":""}`, want: []Message{{Channel: "/meta/handshake"}}},
		{
			name: "subscription array kept raw",
			body: `{"channel":"/meta/subscribe","clientId":"c","subscription":["/a","/b"]}`,
			want: []Message{{Channel: "/meta/subscribe", ClientID: "c", Subscription: `["/a","/b"]`}},
		},
		{name: "non-object element", body: `[1]`, want: []Message{{}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := testLimits.parseBatch([]byte(tt.body))
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if tt.wantErr {
				return
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %d messages %+v, want %d", len(got), got, len(tt.want))
			}
			for i := range got {
				g, w := got[i], tt.want[i]
				if g.Channel != w.Channel || g.ClientID != w.ClientID || g.ID != w.ID || g.Version != w.Version ||
					g.Data != w.Data || g.Ext != w.Ext || g.Subscription != w.Subscription ||
					g.HasConnectionTypes != w.HasConnectionTypes || strings.Join(g.ConnectionTypes, ",") != strings.Join(w.ConnectionTypes, ",") ||
					g.HasAdviceTimeout != w.HasAdviceTimeout || g.AdviceTimeout != w.AdviceTimeout {
					t.Errorf("message %d:\n got %+v\nwant %+v", i, g, w)
				}
			}
		})
	}
}

func TestAppendString(t *testing.T) {
	for _, s := range []string{"", "plain", `q"b\s`, "nl\n\r\t", "ctl\x01\x1f", "é😀", "sep\u2028\u2029", "bad\xffutf8"} {
		out := appendString(nil, s)
		var back string
		if err := json.Unmarshal(out, &back); err != nil {
			t.Fatalf("appendString(%q) = %s: invalid JSON: %v", s, out, err)
		}
		want := strings.ToValidUTF8(s, "\uFFFD")
		if back != want {
			t.Errorf("appendString(%q) round-trips to %q", s, back)
		}
		if strings.ContainsRune(string(out), '\u2028') || strings.ContainsRune(string(out), '\u2029') {
			t.Errorf("appendString(%q) = %s: line separators not escaped", s, out)
		}
	}
}

func TestEncodeDeliveryWhitelist(t *testing.T) {
	msgs, err := testLimits.parseBatch([]byte(`{"channel":"/x","data":{"v":1},"id":"7","ext":{"e":1},"clientId":"c","advice":{"reconnect":"none"},"successful":true,"error":"e","custom":"c"}`))
	if err != nil {
		t.Fatal(err)
	}
	got := string(encodeDelivery(&msgs[0]))
	want := `{"channel":"/x","data":{"v":1},"id":"7","ext":{"e":1}}`
	if got != want {
		t.Fatalf("delivery = %s, want %s", got, want)
	}
}

func TestReplyEncoding(t *testing.T) {
	tests := []struct {
		r    Reply
		want string
	}{
		{Reply{Channel: "/foo", Successful: true}, `{"channel":"/foo","successful":true}`},
		{Reply{ID: `"1"`, Channel: channels.MetaHandshake, Successful: false, version: true, connTypes: true,
			Error: "402:version:Missing required parameter", Advice: &Advice{Reconnect: "handshake", Interval: 1000}},
			`{"id":"1","channel":"/meta/handshake","successful":false,"version":"1.0","supportedConnectionTypes":["long-polling","cross-origin-long-polling","callback-polling","websocket","eventsource"],"error":"402:version:Missing required parameter","advice":{"reconnect":"handshake","interval":1000}}`},
		{Reply{ID: `9`, ClientID: "c", Channel: channels.MetaSubscribe, Subscription: `["/a"]`, Error: "405:/a/*/b:Invalid channel"},
			`{"id":9,"clientId":"c","channel":"/meta/subscribe","successful":false,"error":"405:/a/*/b:Invalid channel","subscription":["/a"]}`},
		{Reply{ClientID: "c", Channel: channels.MetaConnect, Successful: true, Advice: &Advice{Reconnect: "retry", Timeout: 25000, HasTimeout: true}},
			`{"clientId":"c","channel":"/meta/connect","successful":true,"advice":{"reconnect":"retry","interval":0,"timeout":25000}}`},
	}
	tests = append(tests, struct {
		r    Reply
		want string
	}{Reply{ID: `"a-long-id-0123456789"`, ClientID: "c", Channel: "/meta/handshake", Successful: true, version: true, connTypes: true,
		Advice: &Advice{Reconnect: "handshake", Interval: 1 << 62, Timeout: 1 << 62, HasTimeout: true}, Ext: `{"ack":true}`},
		`{"id":"a-long-id-0123456789","clientId":"c","channel":"/meta/handshake","successful":true,"version":"1.0","supportedConnectionTypes":["long-polling","cross-origin-long-polling","callback-polling","websocket","eventsource"],"advice":{"reconnect":"handshake","interval":4611686018427387904,"timeout":4611686018427387904},"ext":{"ack":true}}`})
	for _, tt := range tests {
		if got := string(tt.r.appendTo(nil)); got != tt.want {
			t.Errorf("got  %s\nwant %s", got, tt.want)
		}
		// encoded sizes its buffer: one allocation, whatever the fields.
		if got := string(tt.r.encoded()); got != tt.want {
			t.Errorf("encoded %s\nwant    %s", got, tt.want)
		}
		if n := testing.AllocsPerRun(10, func() { tt.r.encoded() }); n != 1 {
			t.Errorf("encoding %s took %v allocations", tt.want, n)
		}
		// Held replies stay in memory: little room to spare (the advice's
		// numbers are counted at their longest).
		if b := tt.r.encoded(); cap(b)-len(b) > 48 {
			t.Errorf("encoding %s: %d bytes in a buffer of %d", tt.want, len(b), cap(b))
		}
	}
}

func TestClientIDShape(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		id := newClientID()
		if len(id) != 31 || strings.Trim(id, "0123456789abcdefghijklmnopqrstuvwxyz") != "" {
			t.Fatalf("clientId %q is not 31 characters of [0-9a-z]", id)
		}
		if seen[id] {
			t.Fatalf("clientId %q repeated", id)
		}
		seen[id] = true
	}
}

func TestEscapeJSSeparators(t *testing.T) {
	got := string(escapeJSSeparators([]byte("a\u2028b\u2029c")))
	if got != `a\u2028b\u2029c` {
		t.Fatalf("got %q", got)
	}
}

// faye's client parses an error as code:args:text only when args and text
// hold letters, digits, spaces and - _ ! ~ ( ) $ @ / * . (args separated by
// commas); anything else leaves the client without the code.
var errorGrammar = regexp.MustCompile(`^[0-9]{3}:[A-Za-z0-9\-_!~()$@ /*.]*(,[A-Za-z0-9\-_!~()$@ /*.]*)*:[A-Za-z0-9\-_!~()$@ /*.]*$`)

func TestErrorsParseInFaye(t *testing.T) {
	l := newLimits(&Config{MaxChannelLength: 8, MaxChannelSegments: 2})
	for _, e := range []string{
		errVersionMissing(), ErrorParameterMissing("clientId"), ErrorUnknownClient("abc123"),
		errConnTypesNotSupported([]string{"iframe", "flash"}), ErrorForbidden("/meta/x"),
		ErrorInvalidChannel("/a/*/b"), errPublishFailed("/a"), errSlowConsumer, errClusterUnavailable,
		errInvalidUTF8("id"), errTooManyHandshakes, errTooManySubscriptions("/a", 10), errHandshakeRate,
		errPublishRate("/a"), errReplayLost("/a", 7), errReplayInvalid("/a/*"), errReplayFailed("/a"),
		l.channelError("/aaaaaaaaaaaaaa"), l.channelError("/a/b/c"),
	} {
		if !errorGrammar.MatchString(e) {
			t.Errorf("faye's client cannot parse %q", e)
		}
	}
}
