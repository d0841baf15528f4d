package client

import (
	"encoding/json"
	"fmt"
	"testing"
)

func TestDecodeMessages(t *testing.T) {
	tests := []struct {
		name  string
		in    string
		want  string // fmt of the decoded messages' key fields
		error bool
	}{
		{"array", `[{"channel":"/a","data":1,"id":"5"},{"channel":"/meta/connect","successful":true,"id":"6"}]`,
			`[/a 1 5 false] [/meta/connect <nil> 6 true]`, false},
		{"object", `{"channel":"/a","data":{"x":[1,2]}}`, `[/a {"x":[1,2]}  false]`, false},
		{"null data is data", `[{"channel":"/a","data":null}]`, `[/a null  false]`, false},
		{"numeric id", `[{"channel":"/a","successful":true,"id":7}]`, `[/a <nil> 7 true]`, false},
		{"empty", `[]`, ``, false},
		{"primitive", `1`, ``, true},
		{"array of primitives", `[1]`, ``, true},
		{"garbage", `<html>`, ``, true},
	}
	for _, tc := range tests {
		msgs, err := decodeMessages([]byte(tc.in))
		if (err != nil) != tc.error {
			t.Errorf("%s: error %v", tc.name, err)
			continue
		}
		got := ""
		for i, m := range msgs {
			if i > 0 {
				got += " "
			}
			data := "<nil>"
			if m.Data != nil {
				data = string(m.Data)
			}
			got += fmt.Sprintf("[%s %s %s %v]", m.Channel, data, m.ID, m.Successful)
		}
		if got != tc.want {
			t.Errorf("%s: got %s, want %s", tc.name, got, tc.want)
		}
	}
}

func TestDecodeFields(t *testing.T) {
	msgs, err := decodeMessages([]byte(`[{"id":"1","channel":"/meta/handshake","successful":true,"version":"1.0",
		"supportedConnectionTypes":["long-polling","websocket"],"clientId":"abc",
		"advice":{"reconnect":"retry","interval":0,"timeout":60000},"ext":{"k":"v"}},
		{"channel":"/meta/subscribe","subscription":["/a","/b"],"successful":false,"error":"403::x"}]`))
	if err != nil {
		t.Fatal(err)
	}
	h, s := msgs[0], msgs[1]
	if h.ClientID != "abc" || h.Version != "1.0" || fmt.Sprint(h.SupportedConnectionTypes) != "[long-polling websocket]" ||
		h.Ext["k"] != "v" {
		t.Errorf("handshake decoded as %+v", h)
	}
	if a := h.Advice; a == nil || a.Reconnect != "retry" || a.Interval == nil || *a.Interval != 0 || a.Timeout == nil || *a.Timeout != 60000 {
		t.Errorf("advice decoded as %+v", h.Advice)
	}
	if s.Subscription != "/a" || s.Error != "403::x" || s.Successful {
		t.Errorf("subscribe reply decoded as %+v", s)
	}
}

func TestEncode(t *testing.T) {
	zero := int64(0)
	tests := []struct {
		name string
		m    Message
		want string
	}{
		{"connect asking for no hold", Message{Channel: "/meta/connect", ID: "2", ClientID: "c", ConnectionType: "long-polling",
			Advice: &Advice{Timeout: &zero}},
			`{"channel":"/meta/connect","id":"2","clientId":"c","advice":{"timeout":0},"connectionType":"long-polling"}`},
		{"publish of null", Message{Channel: "/a", ID: "3", Data: json.RawMessage("null")},
			`{"channel":"/a","id":"3","data":null}`},
		{"ext", func() Message {
			m := Message{Channel: "/a", Data: json.RawMessage("1")}
			m.SetExt("token", "t")
			return m
		}(),
			`{"channel":"/a","data":1,"ext":{"token":"t"}}`},
	}
	for _, tc := range tests {
		b, err := json.Marshal(&tc.m)
		if err != nil || string(b) != tc.want {
			t.Errorf("%s: %s %v, want %s", tc.name, b, err, tc.want)
		}
	}
	for _, tc := range []struct {
		in   any
		want string
	}{
		{nil, "null"},
		{json.RawMessage(`{"a":1}`), `{"a":1}`},
		{map[string]int{"seq": 1}, `{"seq":1}`},
		{"s", `"s"`},
	} {
		got, err := encodeData(tc.in)
		if err != nil || string(got) != tc.want {
			t.Errorf("encodeData(%v) = %s, %v", tc.in, got, err)
		}
	}
	if _, err := encodeData(json.RawMessage(`{`)); err == nil {
		t.Error("encodeData accepted invalid raw JSON")
	}
	if _, err := encodeData(func() {}); err == nil {
		t.Error("encodeData accepted a func")
	}
}
