package portal

import (
	"context"
	"fmt"
	"time"

	"sportello/gateway"
)

// usageChart is the 30-day request chart of the keys page: stacked bars
// drawn as SVG by the server (no script), with the same numbers in a table
// for screen readers and for people who prefer figures.
type usageChart struct {
	Width, Height float64
	PlotTop       float64
	PlotBottom    float64
	PlotLeft      float64
	// PlotRight is where the bars end and the scale is drawn: on the
	// right, beside today, which is what a phone shows first (the chart
	// scrolls sideways there and opens at its right end).
	PlotRight    float64
	Bars         []chartBar
	Ticks        []chartTick
	YTicks       []chartTick
	Days         []usageDay
	Total        int64
	Max          int64
	ServerErrors int64 // over the 30 days: the legend lists them only then
}

type chartBar struct {
	X, Y, W, H float64
	Class      string
	// The tooltip (<title>): day, outcome (a catalog key, translated by
	// the template) and figure.
	Day     string
	Outcome string
	N       int64
}

type chartTick struct {
	X, Y  float64
	Label string
}

type usageDay struct {
	Day                                         time.Time
	Accepted, ClientError, Throttled, ServerErr int64
}

// Total is all requests of the day.
func (d usageDay) Total() int64 { return d.Accepted + d.ClientError + d.Throttled + d.ServerErr }

// chartDays is how many days the chart shows, today included.
const chartDays = 30

// minBar is the height (in chart units) of the smallest drawn part of a bar.
const minBar = 2.0

func (a *App) usageChart(ctx context.Context, serviceID int64, now time.Time) (*usageChart, error) {
	today := gateway.UsageDay(now)
	first := today.AddDate(0, 0, -(chartDays - 1))
	var rows []struct {
		Day     string `db:"day"`
		Outcome string `db:"outcome"`
		N       int64  `db:"n"`
	}
	if err := a.DB.R.SelectContext(ctx, &rows, `SELECT day, outcome, SUM(count) AS n FROM usage_daily
		WHERE service_id = ? AND day >= ? GROUP BY day, outcome`, serviceID, first.Format("2006-01-02")); err != nil {
		return nil, fmt.Errorf("usage: %w", err)
	}
	days := make([]usageDay, chartDays)
	index := map[string]int{}
	for i := range days {
		days[i].Day = first.AddDate(0, 0, i)
		index[days[i].Day.Format("2006-01-02")] = i
	}
	for _, r := range rows {
		i, ok := index[r.Day]
		if !ok {
			continue
		}
		d := &days[i]
		switch r.Outcome {
		case "accepted":
			d.Accepted += r.N
		case "client_error":
			d.ClientError += r.N
		case "throttled":
			d.Throttled += r.N
		default:
			d.ServerErr += r.N
		}
	}
	return drawUsageChart(days), nil
}

// drawUsageChart lays out the bars, the date ticks and the scale of days.
func drawUsageChart(days []usageDay) *usageChart {
	c := &usageChart{Width: 640, Height: 220, PlotTop: 10, PlotBottom: 190, PlotLeft: 4, PlotRight: 592, Days: days}
	for _, d := range c.Days {
		c.Total += d.Total()
		c.Max = max(c.Max, d.Total())
		c.ServerErrors += d.ServerErr
	}
	scaleMax := niceCeil(c.Max)
	plotH := c.PlotBottom - c.PlotTop
	slot := (c.PlotRight - c.PlotLeft) / float64(len(c.Days))
	barW := slot * 0.7
	type part struct {
		n      int64
		class  string
		key    string
		height float64
	}
	for i, d := range c.Days {
		x := c.PlotLeft + float64(i)*slot + (slot-barW)/2
		// Server errors are drawn too, on top: they are rare, and a day on
		// which Sportello failed an integrator is what they look for.
		parts := []part{{d.Accepted, "bar-ok", "accepted", 0}, {d.ClientError, "bar-error", "client_error", 0},
			{d.Throttled, "bar-pending", "throttled", 0}, {d.ServerErr, "bar-server", "server_error", 0}}
		// Each part at least minBar high (a few refusals beside a thousand
		// accepted requests must still show), taken from the tallest part
		// when that would push the bar over the top of the scale.
		var sum float64
		tallest := 0
		for j := range parts {
			if parts[j].n > 0 {
				parts[j].height = max(float64(parts[j].n)/float64(scaleMax)*plotH, minBar)
			}
			sum += parts[j].height
			if parts[j].height > parts[tallest].height {
				tallest = j
			}
		}
		if sum > plotH {
			parts[tallest].height -= sum - plotH
		}
		y := c.PlotBottom
		for _, p := range parts {
			if p.n == 0 {
				continue
			}
			y -= p.height
			c.Bars = append(c.Bars, chartBar{X: round1(x), Y: round1(y), W: round1(barW), H: round1(p.height), Class: p.class,
				Day: d.Day.Format("02/01"), Outcome: "keys.outcome." + p.key, N: p.n})
		}
		if i%7 == 2 || i == len(c.Days)-1 {
			c.Ticks = append(c.Ticks, chartTick{X: round1(x + barW/2), Y: c.PlotBottom + 18, Label: d.Day.Format("02/01")})
		}
	}
	for _, v := range []int64{0, scaleMax / 2, scaleMax} {
		c.YTicks = append(c.YTicks, chartTick{X: c.PlotRight + 6, Y: round1(c.PlotBottom - float64(v)/float64(scaleMax)*plotH), Label: fmt.Sprint(v)})
	}
	return c
}

// niceCeil rounds up to a round number (at least 10) whose half is round
// too, for the axis' middle line: 12, 16, 20, 30, 40, 50, 60, 80 or 100
// times a power of ten. Steps of 1, 2 and 5 only drew a peak of 1,020 on a
// scale of 2,000, its bars half the chart's height.
func niceCeil(v int64) int64 {
	if v <= 10 {
		return 10
	}
	p := int64(1)
	for p*100 < v {
		p *= 10
	}
	for _, m := range []int64{12, 16, 20, 30, 40, 50, 60, 80, 100} {
		if m*p >= v {
			return m * p
		}
	}
	return 100 * p
}

func round1(f float64) float64 { return float64(int64(f*10+0.5)) / 10 }
