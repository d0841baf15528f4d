package bayeux

import "testing"

func TestBurstOver(t *testing.T) {
	tests := []struct {
		name              string
		n, prev, released int64
		want              bool
	}{
		{"no burst yet", 5000, 5000, 0, false},
		{"a burst, still going", 20000, 15000, 0, false},
		{"a burst, over", 20000, 19950, 0, true},
		{"released since", 20050, 20000, 20000, false},
		{"the next burst, over", 30100, 30100, 20000, true},
	}
	for _, tt := range tests {
		if got := burstOver(tt.n, tt.prev, tt.released); got != tt.want {
			t.Errorf("%s: burstOver(%d, %d, %d) = %v", tt.name, tt.n, tt.prev, tt.released, got)
		}
	}
}
