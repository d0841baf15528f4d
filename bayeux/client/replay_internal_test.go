package client

import (
	"fmt"
	"testing"
)

// TestPositions runs sequences of operations on the position tracker:
// a (admit a message), r (raise from a subscribe reply), s (restart after
// a replay that was not recovered, from the position asked), f (forget).
func TestPositions(t *testing.T) {
	type op struct {
		kind  byte
		id    int // -1: a message without a position
		epoch string
		asked Position // for s
	}
	a := func(id int, epoch string) op { return op{kind: 'a', id: id, epoch: epoch} }
	tests := []struct {
		name string
		ops  []op
		want string // what admit returned, then the final position
	}{
		{"in order", []op{a(1, "E"), a(2, "E"), a(3, "E")}, "ttt 3@E"},
		{"copies and older", []op{a(2, "E"), a(2, "E"), a(1, "E"), a(3, "E")}, "tfft 3@E"},
		{"new epoch", []op{a(5, "E"), a(1, "F"), a(1, "F")}, "ttf 1@F"},
		{"no position", []op{a(-1, ""), a(-1, "")}, "tt none"},
		{"raise does not go back", []op{a(5, "E"), {kind: 'r', id: 3, epoch: "E"}, a(4, "E")}, "tf 5@E"},
		{"raise in a new epoch", []op{a(5, "E"), {kind: 'r', id: 3, epoch: "F"}, a(3, "F"), a(4, "F")}, "tft 4@F"},
		{"restart goes back", []op{a(50, "E"), {kind: 's', id: 30, epoch: "E", asked: Position{50, "E"}}, a(31, "E")}, "tt 31@E"},
		{"restart after newer messages", []op{a(50, "E"), a(51, "E"), {kind: 's', id: 30, epoch: "E", asked: Position{50, "E"}}, a(51, "E")}, "ttf 51@E"},
		{"forget", []op{a(5, "E"), {kind: 'f'}, a(5, "E")}, "tt 5@E"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := newPositions()
			got := ""
			for _, o := range tc.ops {
				pos := Position{ReplayID: uint64(max(o.id, 0)), Epoch: o.epoch}
				switch o.kind {
				case 'a':
					m := &Message{Channel: "/c", Data: []byte("1")}
					if o.id >= 0 {
						m.Ext = map[string]any{"replayId": float64(o.id), "epoch": o.epoch}
					}
					pushed := false
					ok := p.admit(m, func() { pushed = true })
					if ok != pushed {
						t.Fatalf("admit returned %v but pushed %v", ok, pushed)
					}
					got += map[bool]string{true: "t", false: "f"}[ok]
				case 'r':
					p.raise("/c", pos)
				case 's':
					p.restart("/c", o.asked, pos)
				case 'f':
					p.forget("/c")
				}
			}
			if last, ok := p.get("/c"); ok {
				got += fmt.Sprintf(" %d@%s", last.ReplayID, last.Epoch)
			} else {
				got += " none"
			}
			if got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestReplayWire(t *testing.T) {
	tests := []struct {
		r    replayFrom
		want string
	}{
		{replayFrom{}, "-1"},
		{replayFrom{kind: replayAll}, "-2"},
		{replayFrom{kind: replayAfter, pos: Position{ReplayID: 7}}, "7"},
		{replayFrom{kind: replayAfter, pos: Position{ReplayID: 7, Epoch: "E"}}, "map[epoch:E replayId:7]"},
	}
	for _, tc := range tests {
		if got := fmt.Sprint(tc.r.wire()); got != tc.want {
			t.Errorf("%+v: %s, want %s", tc.r, got, tc.want)
		}
	}
}

func TestMessagePosition(t *testing.T) {
	tests := []struct {
		ext  map[string]any
		want string
	}{
		{nil, "false"},
		{map[string]any{"replayId": float64(3), "epoch": "E"}, "{3 E} true"},
		{map[string]any{"replayId": float64(3)}, "{3 } true"},
		{map[string]any{"replayId": 3.5, "epoch": "E"}, "false"},
		{map[string]any{"replayId": float64(-1), "epoch": "E"}, "false"},
		{map[string]any{"replayId": "3", "epoch": "E"}, "false"},
		{map[string]any{"replayId": int64(4), "epoch": "E"}, "{4 E} true"},
	}
	for _, tc := range tests {
		pos, ok := (&Message{Ext: tc.ext}).Position()
		got := fmt.Sprint(ok)
		if ok {
			got = fmt.Sprint(pos, " ", ok)
		}
		if got != tc.want {
			t.Errorf("ext %v: %s, want %s", tc.ext, got, tc.want)
		}
	}
}
