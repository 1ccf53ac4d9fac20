package portal

import "testing"

// The chart's scale is the next round number above the peak, with a round
// half for the middle line, and never far above the peak.
func TestNiceCeilIsRoundAndClose(t *testing.T) {
	for v, want := range map[int64]int64{0: 10, 7: 10, 10: 10, 11: 12, 13: 16, 17: 20, 21: 30, 99: 100, 101: 120,
		1000: 1000, 1020: 1200, 1700: 2000, 4500: 5000, 8100: 10000, 10001: 12000} {
		got := niceCeil(v)
		if got != want {
			t.Errorf("niceCeil(%d) = %d, want %d", v, got, want)
		}
		if got%2 != 0 {
			t.Errorf("niceCeil(%d) = %d: its half is not a whole number", v, got)
		}
		if v > 10 && float64(got) > 1.5*float64(v) {
			t.Errorf("niceCeil(%d) = %d: more than 1.5 times the peak", v, got)
		}
	}
}
