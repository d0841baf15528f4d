package channels

import "testing"

func TestReaches(t *testing.T) {
	tests := []struct {
		sub, protected string
		want           bool
	}{
		{"/private/x", "/private/**", true},
		{"/private/x/y", "/private/**", true},
		{"/private/*", "/private/**", true},
		{"/private/**", "/private/**", true},
		{"/**", "/private/**", true}, // the wildcard reaches everything
		{"/**", "/private", true},
		{"/*", "/private", true},
		{"/*", "/private/**", false}, // one segment only
		{"/private", "/private/**", false},
		{"/public/**", "/private/**", false},
		{"/priv/**", "/private/**", false},
		{"/users/u1/**", "/users/*", false},
		{"/users/u1/inbox", "/users/*", false},
		{"/users/*", "/users/u1", true},
		{"/users/u1/*", "/users/u1/inbox", true},
		{"/users/u2/*", "/users/u1/inbox", false},
		{"", "/private/**", true},              // invalid: fail closed
		{"/private/**", "not a channel", true}, // invalid: fail closed
		{"/a//b", "/a/**", true},               // invalid: fail closed
	}
	for _, tt := range tests {
		if got := Reaches(tt.sub, tt.protected); got != tt.want {
			t.Errorf("Reaches(%q, %q) = %v, want %v", tt.sub, tt.protected, got, tt.want)
		}
	}
}
