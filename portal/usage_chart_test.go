package portal

import (
	"testing"
	"time"
)

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

// Every part of a bar shows (a few refusals beside a thousand accepted
// requests), no bar rises above the top of the scale, and the scale sits
// right of the bars, beside today.
func TestUsageChartGeometry(t *testing.T) {
	days := make([]usageDay, chartDays)
	for i := range days {
		days[i].Day = time.Date(2026, 11, 4+i, 0, 0, 0, 0, time.UTC)
	}
	days[chartDays-1] = usageDay{Day: days[chartDays-1].Day, Accepted: 998, ClientError: 1, Throttled: 1}
	days[10] = usageDay{Day: days[10].Day, Accepted: 3, ServerErr: 1}
	c := drawUsageChart(days)
	if len(c.Bars) != 5 {
		t.Fatalf("%d bars, want 5 (three parts today, two on day 10)", len(c.Bars))
	}
	for _, b := range c.Bars {
		if b.H < 1.95 { // 2 of the chart's 180 units: about 2 px on a desktop
			t.Errorf("%s %s: %.1f high, too thin to see", b.Day, b.Outcome, b.H)
		}
		if b.Y < c.PlotTop-0.05 || b.Y+b.H > c.PlotBottom+0.05 {
			t.Errorf("%s %s: y %.1f..%.1f outside the plot %.1f..%.1f", b.Day, b.Outcome, b.Y, b.Y+b.H, c.PlotTop, c.PlotBottom)
		}
		if b.X < c.PlotLeft || b.X+b.W > c.PlotRight {
			t.Errorf("%s: x %.1f..%.1f outside the plot", b.Day, b.X, b.X+b.W)
		}
	}
	if c.Max != 1000 || len(c.YTicks) != 3 || c.YTicks[2].Label != "1000" || c.YTicks[2].Y != c.PlotTop {
		t.Fatalf("scale %+v for a peak of %d", c.YTicks, c.Max)
	}
	for _, tick := range c.YTicks {
		if tick.X <= c.PlotRight {
			t.Errorf("scale label %s at x %.1f, left of the bars' end %.1f", tick.Label, tick.X, c.PlotRight)
		}
	}
	if last := c.Ticks[len(c.Ticks)-1]; last.Label != days[chartDays-1].Day.Format("02/01") {
		t.Errorf("last date tick %q, want today", last.Label)
	}
}
