// The Go peer for bench/lock.bench.ts: redsync (Go's RedLock) on go-redis v9 clients, one per
// redis-server, doing what the bench does to Sluice's RedLock and the redlock package:
// acquire+release of resources never locked before, sequentially for latency, then with
// `concurrency` goroutines for throughput. It measures its own CPU (getrusage) around each loop
// and prints one JSON line.
//
//	redsync latency <count> <tag> <redis-url>...
//	redsync throughput <concurrency> <seconds> <tag> <redis-url>...
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log"
	"os"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/go-redsync/redsync/v4"
	"github.com/go-redsync/redsync/v4/redis"
	"github.com/go-redsync/redsync/v4/redis/goredis/v9"
	goredislib "github.com/redis/go-redis/v9"
)

// Same lease and no retries as the bench gives the other contenders (ttl 10 s, retryCount 0).
var opts = []redsync.Option{redsync.WithExpiry(10 * time.Second), redsync.WithTries(1)}

func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		log.Fatal(err)
	}
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}

func cycle(rs *redsync.Redsync, name string) error {
	m := rs.NewMutex(name, opts...)
	if err := m.Lock(); err != nil {
		return fmt.Errorf("lock %s: %w", name, err)
	}
	if ok, err := m.Unlock(); !ok || err != nil {
		return fmt.Errorf("unlock %s: %v %w", name, ok, err)
	}
	return nil
}

func percentile(sorted []float64, p float64) float64 {
	i := int(p / 100 * float64(len(sorted)))
	if i >= len(sorted) {
		i = len(sorted) - 1
	}
	return sorted[i]
}

func main() {
	if len(os.Args) < 5 {
		log.Fatal("usage: redsync latency <count> <tag> <url>... | throughput <concurrency> <seconds> <tag> <url>...")
	}
	mode := os.Args[1]
	urls := os.Args[4:]
	if mode == "throughput" {
		urls = os.Args[5:]
	}
	var pools []redis.Pool
	for _, u := range urls {
		o, err := goredislib.ParseURL(u)
		if err != nil {
			log.Fatal(err)
		}
		o.PoolSize = 64 // never wait for a connection at 32 in flight
		o.ReadTimeout = time.Second
		o.WriteTimeout = time.Second
		c := goredislib.NewClient(o)
		if err := c.Ping(context.Background()).Err(); err != nil {
			log.Fatal(err)
		}
		pools = append(pools, goredis.NewPool(c))
	}
	rs := redsync.New(pools...)
	out := map[string]any{}
	switch mode {
	case "latency":
		count, _ := strconv.Atoi(os.Args[2])
		tag := os.Args[3]
		for i := 0; i < 300; i++ { // warm the pools
			if err := cycle(rs, fmt.Sprintf("warm-%s-%d", tag, i)); err != nil {
				log.Fatal(err)
			}
		}
		lat := make([]float64, 0, count)
		cpu0 := cpuSeconds()
		t0 := time.Now()
		for i := 0; i < count; i++ {
			s := time.Now()
			if err := cycle(rs, fmt.Sprintf("lat-%s-redsync-%d", tag, i)); err != nil {
				log.Fatal(err)
			}
			lat = append(lat, float64(time.Since(s).Nanoseconds())/1e6)
		}
		sort.Float64s(lat)
		out = map[string]any{"ops": count, "seconds": time.Since(t0).Seconds(), "cpuSeconds": cpuSeconds() - cpu0, "p50Ms": percentile(lat, 50), "p99Ms": percentile(lat, 99)}
	case "throughput":
		concurrency, _ := strconv.Atoi(os.Args[2])
		secs, _ := strconv.ParseFloat(os.Args[3], 64)
		tag := os.Args[4]
		var done atomic.Int64
		var failed atomic.Int64
		end := time.Now().Add(time.Duration(secs * float64(time.Second)))
		cpu0 := cpuSeconds()
		t0 := time.Now()
		var wg sync.WaitGroup
		for w := 0; w < concurrency; w++ {
			wg.Add(1)
			go func(w int) {
				defer wg.Done()
				for i := 0; time.Now().Before(end); i++ {
					if err := cycle(rs, fmt.Sprintf("tp-%s-redsync-%d-%d", tag, w, i)); err != nil {
						failed.Add(1)
						continue
					}
					done.Add(1)
				}
			}(w)
		}
		wg.Wait()
		out = map[string]any{"ops": done.Load(), "failed": failed.Load(), "seconds": time.Since(t0).Seconds(), "cpuSeconds": cpuSeconds() - cpu0}
	default:
		log.Fatalf("unknown mode %q", mode)
	}
	b, _ := json.Marshal(out)
	fmt.Println(string(b))
}
