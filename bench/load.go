package main

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

type request struct {
	method, url string
	body        []byte
	header      http.Header
}

type result struct {
	rps          float64
	p50ms, p99ms float64
	ok           int
	other        map[int]int
}

// hostOf returns the host:port of an http:// URL.
func hostOf(u string) string {
	u = strings.TrimPrefix(u, "http://")
	if i := strings.IndexByte(u, '/'); i >= 0 {
		u = u[:i]
	}
	return u
}

// load runs o.concurrency closed-loop clients for warm-up plus duration
// and measures only the second part. Each client keeps its connection
// alive, as an integrator's HTTP client does.
func load(o options, next func(i int) request, want int) result {
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		MaxIdleConns:        o.concurrency * 2,
		MaxIdleConnsPerHost: o.concurrency * 2,
		MaxConnsPerHost:     o.concurrency,
		DisableCompression:  true,
	}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	var measuring atomic.Bool
	var stop atomic.Bool
	var seq atomic.Int64
	var wg sync.WaitGroup
	lat := make([][]time.Duration, o.concurrency)
	statuses := make([]map[int]int, o.concurrency)
	okCount := make([]int, o.concurrency)
	var measuredStart, measuredEnd time.Time
	for w := 0; w < o.concurrency; w++ {
		statuses[w] = map[int]int{}
		lat[w] = make([]time.Duration, 0, 1<<16)
		wg.Add(1)
		go func() {
			defer wg.Done()
			var raw *rawConn
			defer func() {
				if raw != nil {
					raw.close()
				}
			}()
			for !stop.Load() {
				i := int(seq.Add(1))
				rq := next(i)
				var t0 time.Time
				status := -1
				if o.client == "stdlib" {
					req, _ := http.NewRequest(rq.method, rq.url, bytes.NewReader(rq.body))
					if rq.body == nil {
						req.Body = http.NoBody
					}
					for k, v := range rq.header {
						req.Header[k] = v
					}
					t0 = time.Now()
					res, err := client.Do(req)
					if err == nil {
						_, _ = io.Copy(io.Discard, res.Body)
						res.Body.Close()
						status = res.StatusCode
					}
				} else {
					if raw == nil {
						raw = newRawConn(hostOf(rq.url))
					}
					t0 = time.Now()
					if code, err := raw.do(rq); err == nil {
						status = code
					}
				}
				d := time.Since(t0)
				// Every accepted request counts for durability, warm-up too.
				if status == want {
					okCount[w]++
				}
				if measuring.Load() {
					lat[w] = append(lat[w], d)
					statuses[w][status]++
				}
			}
		}()
	}
	time.Sleep(o.warmup)
	measuredStart = time.Now()
	measuring.Store(true)
	time.Sleep(o.duration)
	measuring.Store(false)
	measuredEnd = time.Now()
	stop.Store(true)
	wg.Wait()

	var all []time.Duration
	res := result{other: map[int]int{}}
	measuredOK := 0
	for w := range lat {
		all = append(all, lat[w]...)
		for s, n := range statuses[w] {
			if s == want {
				measuredOK += n
			} else {
				res.other[s] += n
			}
		}
		res.ok += okCount[w]
	}
	slices.Sort(all)
	if len(all) > 0 {
		res.p50ms = float64(all[len(all)*50/100]) / 1e6
		res.p99ms = float64(all[len(all)*99/100]) / 1e6
	}
	res.rps = float64(measuredOK) / measuredEnd.Sub(measuredStart).Seconds()
	return res
}
