package client

import (
	"errors"
	"fmt"
	"testing"
	"time"
)

func TestParseError(t *testing.T) {
	tests := []struct {
		in      string
		code    ErrorCode
		args    []string
		message string
	}{
		{"403:/meta/foo:Forbidden channel", 403, []string{"/meta/foo"}, "Forbidden channel"},
		{"401:5xy7xbo1zafypivfn1sysnbf3lszin7:Unknown client", 401, []string{"5xy7xbo1zafypivfn1sysnbf3lszin7"}, "Unknown client"},
		{"401::Access denied", 401, []string{""}, "Access denied"},
		{"401:a,b:msg", 401, []string{"a", "b"}, "msg"},
		{"402:clientId:Missing required parameter", 402, []string{"clientId"}, "Missing required parameter"},
		{"301:flash,iframe:Connection types not supported", 301, []string{"flash", "iframe"}, "Connection types not supported"},
		{"405::Invalid channel", 405, []string{""}, "Invalid channel"},
		{"403::", 403, []string{""}, ""},
		{"4011::x", 0, nil, "4011::x"},
		{"40a:x:y", 0, nil, "40a:x:y"},
		{"403:no second colon", 0, nil, "403:no second colon"},
		{"Invalid subscription auth token", 0, nil, "Invalid subscription auth token"},
		{"", 0, nil, ""},
	}
	for _, tc := range tests {
		e := ParseError(tc.in)
		if e.Code != tc.code || fmt.Sprint(e.Args) != fmt.Sprint(tc.args) || e.Message != tc.message {
			t.Errorf("ParseError(%q) = %d %q %q, want %d %q %q", tc.in, e.Code, e.Args, e.Message, tc.code, tc.args, tc.message)
		}
		if tc.code != 0 && e.Error() != tc.in {
			t.Errorf("ParseError(%q).Error() = %q", tc.in, e.Error())
		}
	}
}

func TestErrorKinds(t *testing.T) {
	tests := []struct {
		in            string
		unknownClient bool
	}{
		{"401:abc:Unknown client", true},
		{"402::session_unknown", true},
		{"401::Access denied", false},
		{"403:/x:Forbidden channel", false},
		{"Unknown client", false},
	}
	for _, tc := range tests {
		if got := ParseError(tc.in).unknownClient(); got != tc.unknownClient {
			t.Errorf("unknownClient(%q) = %v", tc.in, got)
		}
	}
	err := fmt.Errorf("wrapped: %w", &transportError{errNoReply})
	if !isTransportError(err) || !errors.Is(err, errNoReply) {
		t.Errorf("transport error not recognised through wrapping: %v", err)
	}
	if isTransportError(ParseError("403::x")) {
		t.Error("a server error taken for a transport error")
	}
}

func TestBackoffDelay(t *testing.T) {
	const lo, hi = 100, 1000
	tests := []struct {
		n        int
		min, max int // bounds of the jittered delay
	}{
		{1, 50, 100},
		{2, 100, 200},
		{3, 200, 400},
		{4, 400, 800},
		{5, 500, 1000},
		{50, 500, 1000},
	}
	for _, tc := range tests {
		for range 100 {
			d := backoffDelay(lo, hi, tc.n)
			if d < time.Duration(tc.min) || d > time.Duration(tc.max) {
				t.Fatalf("backoffDelay(%d) = %d, want within [%d, %d]", tc.n, d, tc.min, tc.max)
			}
		}
	}
}
