// The Go peer for bench/global-limit.bench.ts: gubernator (in-memory, peers over gRPC, no Redis).
// Two gubernator daemons form a cluster on loopback inside this process; each stands for one of
// the bench's 2 limiters, and `inFlight` goroutines per daemon ask it for decisions on one shared
// key (GetRateLimits on the daemon's V1Instance, in-process: library against library). The key's
// owner is one of the two, so half the load is answered by a non-owner, which is where the
// consistency modes differ:
//
//	global: Behavior GLOBAL — a non-owner answers from its own copy and sends hits to the owner
//	        asynchronously, the owner broadcasts its counts (like Sluice's lease mode)
//	strict: Behavior BATCHING (the default) — a non-owner forwards every decision to the owner
//	        over gRPC, batched (like Sluice's strict mode)
//
//	gubernator <global|strict> <limit per second> <seconds> <inFlight> <key>
//
// It measures its own CPU (getrusage: both daemons, their gRPC traffic and the load loop) around
// the loop and prints one JSON line.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"sort"
	"strconv"
	"sync"
	"syscall"
	"time"

	guber "github.com/gubernator-io/gubernator/v2"
	"github.com/sirupsen/logrus"
)

func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		log.Fatal(err)
	}
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}

func freeAddr() string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func main() {
	if len(os.Args) != 6 {
		log.Fatal("usage: gubernator <global|strict> <limit> <seconds> <inFlight> <key>")
	}
	behavior := guber.Behavior_GLOBAL
	if os.Args[1] == "strict" {
		behavior = guber.Behavior_BATCHING
	} else if os.Args[1] != "global" {
		log.Fatalf("unknown mode %q", os.Args[1])
	}
	limit, _ := strconv.ParseInt(os.Args[2], 10, 64)
	secs, _ := strconv.ParseFloat(os.Args[3], 64)
	inFlight, _ := strconv.Atoi(os.Args[4])
	key := os.Args[5]

	logger := logrus.New()
	logger.SetOutput(io.Discard)
	ctx := context.Background()
	var daemons []*guber.Daemon
	var peers []guber.PeerInfo
	for i := 0; i < 2; i++ {
		conf := guber.DaemonConfig{
			GRPCListenAddress: freeAddr(),
			HTTPListenAddress: freeAddr(),
			InstanceID:        fmt.Sprintf("bench-%d", i),
			Logger:            logger.WithField("instance", i),
			// Behaviors left at gubernator's defaults (GlobalSyncWait 100 ms, BatchWait 500 µs).
		}
		d, err := guber.SpawnDaemon(ctx, conf)
		if err != nil {
			log.Fatal(err)
		}
		daemons = append(daemons, d)
		peers = append(peers, guber.PeerInfo{GRPCAddress: conf.GRPCListenAddress, HTTPAddress: conf.HTTPListenAddress})
	}
	for _, d := range daemons {
		d.SetPeers(peers)
	}

	req := func() *guber.GetRateLimitsReq {
		return &guber.GetRateLimitsReq{Requests: []*guber.RateLimitReq{{
			Name: "bench", UniqueKey: key, Hits: 1, Limit: limit, Duration: 1000,
			Algorithm: guber.Algorithm_TOKEN_BUCKET, Behavior: behavior,
		}}}
	}
	type tally struct {
		decisions, admitted, errors int64
		lat                         []float64
	}
	tallies := make([]tally, len(daemons)*inFlight)
	end := time.Now().Add(time.Duration(secs * float64(time.Second)))
	cpu0 := cpuSeconds()
	t0 := time.Now()
	var wg sync.WaitGroup
	for di, d := range daemons {
		for w := 0; w < inFlight; w++ {
			wg.Add(1)
			go func(v *guber.V1Instance, t *tally) {
				defer wg.Done()
				for time.Now().Before(end) {
					s := time.Now()
					resp, err := v.GetRateLimits(ctx, req())
					t.lat = append(t.lat, float64(time.Since(s).Nanoseconds())/1e6)
					if err != nil || resp.Responses[0].Error != "" {
						t.errors++
						continue
					}
					t.decisions++
					if resp.Responses[0].Status == guber.Status_UNDER_LIMIT {
						t.admitted++
					}
				}
			}(d.V1Server, &tallies[di*inFlight+w])
		}
	}
	wg.Wait()
	elapsed := time.Since(t0).Seconds()
	cpu := cpuSeconds() - cpu0
	var total tally
	for _, t := range tallies {
		total.decisions += t.decisions
		total.admitted += t.admitted
		total.errors += t.errors
		total.lat = append(total.lat, t.lat...)
	}
	sort.Float64s(total.lat)
	pct := func(p float64) float64 {
		if len(total.lat) == 0 {
			return 0
		}
		i := int(p / 100 * float64(len(total.lat)))
		if i >= len(total.lat) {
			i = len(total.lat) - 1
		}
		return total.lat[i]
	}
	b, _ := json.Marshal(map[string]any{
		"ops": total.decisions, "admitted": total.admitted, "errors": total.errors,
		"seconds": elapsed, "cpuSeconds": cpu, "p50Ms": pct(50), "p99Ms": pct(99),
	})
	fmt.Println(string(b))
	// Daemon.Close waits on its peers' connections for a long time; nothing here needs a clean stop.
	os.Exit(0)
}
