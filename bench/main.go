// Command bench measures the gateway's send path on loopback: live-key
// sends at concurrency 64, profile look-ups, and a bare net/http handler as
// the ceiling of this machine (in a process of its own, as the server, and
// in the load generator's process), then sends again with 1,000,000
// messages already stored. Every 201 is checked against the database afterwards.
// Its last output line is one JSON object (see docs/benchmarks.md).
//
//	go run ./bench [-duration 5s] [-rounds 3] [-concurrency 64] [-prefill 1000000] [-mode auto|process|inproc]
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"sort"
	"time"

	"sportello/gateway"
)

type options struct {
	duration    time.Duration
	warmup      time.Duration
	concurrency int
	prefill     int
	mode        string
	keep        bool
	cpuProfile  string
	rounds      int
	client      string
}

func main() {
	if os.Getenv(ceilingChildEnv) != "" {
		serveCeilingChild()
		return
	}
	var o options
	flag.DurationVar(&o.duration, "duration", 5*time.Second, "measured time per scenario and round")
	flag.DurationVar(&o.warmup, "warmup", time.Second, "unmeasured warm-up per scenario and round")
	flag.IntVar(&o.concurrency, "concurrency", 64, "concurrent clients")
	flag.IntVar(&o.rounds, "rounds", 3, "interleaved rounds of ceiling, send and profile runs (median reported)")
	flag.IntVar(&o.prefill, "prefill", 1_000_000, "messages stored before the second send run (0: skip)")
	flag.StringVar(&o.mode, "mode", "auto", "process: build and run the sportello binary; inproc: gateway in this process; auto: process when the binary has the gateway")
	flag.BoolVar(&o.keep, "keep", false, "keep the data directory")
	flag.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of the first send run (in-process mode shows the gateway)")
	flag.StringVar(&o.client, "client", "both", "load generator's HTTP client: raw (lean HTTP/1.1, one goroutine per connection), stdlib (net/http), or both (raw headline, stdlib ceiling and sends beside it)")
	flag.Parse()
	if o.client != "raw" && o.client != "stdlib" && o.client != "both" {
		fmt.Fprintln(os.Stderr, "bench: -client must be raw, stdlib or both")
		os.Exit(2)
	}
	if err := run(context.Background(), o); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, o options) error {
	dir, err := os.MkdirTemp("", "sportello-bench-")
	if err != nil {
		return err
	}
	if !o.keep {
		defer os.RemoveAll(dir)
	}
	fmt.Printf("bench: %d CPUs, GOMAXPROCS %d, concurrency %d, %s per scenario, data in %s\n",
		runtime.NumCPU(), runtime.GOMAXPROCS(0), o.concurrency, o.duration, dir)

	target, err := startTarget(ctx, o, filepath.Join(dir, "data"))
	if err != nil {
		return err
	}
	defer target.stop()
	fmt.Printf("bench: server mode %s at %s\n", target.mode, target.base)

	// Two ceilings: the bare handler in a process of its own and in this
	// one. The like-for-like one (same process topology as the server
	// under test) gives the ratios; the other is reported beside it.
	ceilingOwn, stopOwn, err := startCeilingProcess()
	if err != nil {
		return err
	}
	defer stopOwn()
	ceilingHere, stopHere, err := startCeiling()
	if err != nil {
		return err
	}
	defer stopHere()
	ceiling, otherCeiling, otherName := ceilingOwn, ceilingHere, "in the load generator's process"
	if target.mode == "inproc" {
		ceiling, otherCeiling, otherName = ceilingHere, ceilingOwn, "in a process of its own"
	}

	out := map[string]any{"mode": target.mode, "client": o.client, "concurrency": o.concurrency, "duration_s": o.duration.Seconds(),
		"cpus": runtime.NumCPU()}
	sendBody := sendBody()
	cfs := fiscalCodes(1000)
	citizens, err := target.addCitizens(ctx, cfs)
	if err != nil {
		return fmt.Errorf("citizen profiles: %w", err)
	}
	out["recipients"], out["recipients_with_profile"] = len(cfs), citizens

	report := func(name string, r result) {
		fmt.Printf("%-22s %9.0f req/s  p50 %6.2f ms  p99 %6.2f ms  ok %d  other %v\n", name, r.rps, r.p50ms, r.p99ms, r.ok, r.other)
	}
	// The headline runs use the raw client unless -client stdlib; with
	// -client both, each round also measures the ceiling and the sends
	// with net/http's client, whose own CPU cost (shared cores) lowers the
	// ceiling more than the sends.
	headline, second := o, o
	if o.client == "both" {
		headline.client, second.client = "raw", "stdlib"
	}
	ceilingAt := func(o options, base, where string) result {
		r := load(o, func(i int) request {
			return request{method: "POST", url: base + "/api/v1/messages/" + cfs[i%len(cfs)], body: sendBody}
		}, 201)
		report("bare net/http ceiling"+where+clientNote(o), r)
		return r
	}
	ceilingRun := func(o options) result { return ceilingAt(o, ceiling, "") }
	otherCeilingRun := func(o options) result { return ceilingAt(o, otherCeiling, " ("+otherName+")") }
	sendRun := func(o options, name string) (result, error) {
		target.drain(5 * time.Minute)
		before, err := target.countMessages()
		if err != nil {
			return result{}, err
		}
		if o.cpuProfile != "" {
			if f, err := os.Create(o.cpuProfile); err == nil && pprof.StartCPUProfile(f) == nil {
				defer f.Close()
				defer pprof.StopCPUProfile()
			}
			o.cpuProfile = ""
		}
		r := load(o, target.sendRequest(cfs, sendBody), 201)
		report(name+clientNote(o), r)
		if rss := target.rssMB(); rss > out["rss_mb"].(float64) {
			out["rss_mb"] = rss
		}
		if err := target.checkDurable(before, r.ok); err != nil {
			return r, err
		}
		if target.mode == "process" {
			backlog := target.outbox()
			out["send_outbox_backlog"] = max(backlog, out["send_outbox_backlog"].(int))
			fmt.Printf("bench: delivery backlog after the send run: %d messages\n", backlog)
		}
		return r, nil
	}
	out["rss_mb"], out["send_outbox_backlog"] = 0.0, 0

	// The machine is shared: scenarios are interleaved over several rounds
	// and each reports its median round, so a burst of outside load skews
	// the ceiling and the sends alike instead of one of them.
	var headlineRuns, stdlibRuns clientRuns
	var prs []result
	measure := func(c *clientRuns, o options) error {
		c.ceiling = append(c.ceiling, ceilingRun(o))
		c.other = append(c.other, otherCeilingRun(o))
		sr, err := sendRun(o, "send (live key)")
		c.send = append(c.send, sr)
		return err
	}
	for round := 1; round <= o.rounds; round++ {
		fmt.Printf("bench: round %d of %d\n", round, o.rounds)
		if err := measure(&headlineRuns, headline); err != nil {
			return err
		}
		if o.client == "both" {
			if err := measure(&stdlibRuns, second); err != nil {
				return err
			}
		}
		target.drain(5 * time.Minute)
		pr := load(headline, target.profileRequest(), 200)
		report("profile look-up"+clientNote(headline), pr)
		prs = append(prs, pr)
	}
	cr, sr := headlineRuns.summarize(out, "")
	if o.client == "both" {
		stdlibRuns.summarize(out, "stdlib_")
	}
	pr := median(prs)
	out["ceiling_p50_ms"], out["ceiling_p99_ms"] = round(cr.p50ms), round(cr.p99ms)
	out["profile_rps"], out["profile_p50_ms"], out["profile_p99_ms"] = round(pr.rps), round(pr.p50ms), round(pr.p99ms)
	out["profile_ratio"] = round(pr.rps / cr.rps)
	out["send_best_rps"] = round(best(headlineRuns.send).rps)
	out["other_ceiling"] = otherName
	out["durable_ok"] = true

	if err := quotaRun(target, headline, sendBody, out, report); err != nil {
		return err
	}

	if o.prefill > 0 {
		fmt.Printf("bench: storing %d messages...\n", o.prefill)
		t0 := time.Now()
		if err := target.prefill(ctx, o.prefill); err != nil {
			return err
		}
		fmt.Printf("bench: stored in %s\n", time.Since(t0).Round(time.Second))
		var bcs, brs []result
		for round := 1; round <= o.rounds; round++ {
			fmt.Printf("bench: 1M round %d of %d\n", round, o.rounds)
			bcs = append(bcs, ceilingRun(headline))
			br, err := sendRun(headline, "send, 1M stored")
			if err != nil {
				return err
			}
			brs = append(brs, br)
		}
		bc, br := median(bcs), median(brs)
		out["send_1m_rps"], out["send_1m_p99_ms"] = round(br.rps), round(br.p99ms)
		out["send_1m_vs_empty"] = round(br.rps / sr.rps)
		// The same, each against the ceiling measured next to it.
		out["send_1m_vs_empty_normalized"] = round((br.rps / bc.rps) / (sr.rps / cr.rps))
	}
	b, _ := json.Marshal(out)
	fmt.Println(string(b))
	return nil
}

// quotaRun sends with the test-mode key at full concurrency: the first
// DefaultWeeklyQuota sends of the week are accepted (during warm-up, at
// these rates), every later one must be refused with 429 — measured here,
// because a leaked or runaway test key must cost the server little — and
// the database must then hold exactly the quota's worth of messages and
// of committed quota use, never one more.
func quotaRun(target *target, o options, body []byte, out map[string]any, report func(string, result)) error {
	target.drain(5 * time.Minute)
	r := load(o, target.testSendRequest(body), http.StatusTooManyRequests)
	report("test key over quota (429)"+clientNote(o), r)
	msgs, used, err := target.testServiceCounts()
	if err != nil {
		return err
	}
	if msgs != gateway.DefaultWeeklyQuota || used != gateway.DefaultWeeklyQuota {
		return fmt.Errorf("test key: %d messages stored and %d quota used, want exactly %d", msgs, used, gateway.DefaultWeeklyQuota)
	}
	fmt.Printf("bench: test key accepted exactly %d sends, then refused %d with 429\n", msgs, r.ok)
	out["quota_refusal_rps"], out["quota_refusal_p50_ms"], out["quota_refusal_p99_ms"] = round(r.rps), round(r.p50ms), round(r.p99ms)
	out["quota_accepted"] = msgs
	return nil
}

// clientRuns are one client's rounds: the like-for-like ceiling, the
// other ceiling and the sends.
type clientRuns struct{ ceiling, other, send []result }

// summarize writes the medians under keys starting with prefix and returns
// the median ceiling and send runs.
func (c *clientRuns) summarize(out map[string]any, prefix string) (ceiling, send result) {
	ceiling, other, send := median(c.ceiling), median(c.other), median(c.send)
	out[prefix+"ceiling_rps"], out[prefix+"other_ceiling_rps"] = round(ceiling.rps), round(other.rps)
	out[prefix+"send_rps"], out[prefix+"send_p50_ms"], out[prefix+"send_p99_ms"] = round(send.rps), round(send.p50ms), round(send.p99ms)
	out[prefix+"send_ratio"], out[prefix+"send_ratio_other_ceiling"] = round(send.rps/ceiling.rps), round(send.rps/other.rps)
	return ceiling, send
}

// clientNote names the client in a result line when it is not the raw one.
func clientNote(o options) string {
	if o.client == "stdlib" {
		return " [net/http client]"
	}
	return ""
}

func round(f float64) float64 { return float64(int64(f*100+0.5)) / 100 }

// median returns the run with the median throughput.
func median(rs []result) result {
	s := append([]result(nil), rs...)
	sort.Slice(s, func(i, j int) bool { return s[i].rps < s[j].rps })
	return s[len(s)/2]
}

func best(rs []result) result {
	b := rs[0]
	for _, r := range rs[1:] {
		if r.rps > b.rps {
			b = r
		}
	}
	return b
}
