// The Go peer for bench/queue.bench.ts: asynq (Redis-backed task queue), as an app embeds it.
//
//	asynq produce <redis-url> <tasks> <concurrency> <queue>   Client.Enqueue, one task per call,
//	                                                         <concurrency> goroutines (asynq has no batch enqueue)
//	asynq consume <redis-url> <tasks> <concurrency> <queue>   a Server with Concurrency <concurrency>
//	                                                         and a no-op handler drains <tasks> already queued
//
// Tasks carry the same JSON payload as the other contenders'. Completed tasks are deleted (no
// Retention), as BullMQ's removeOnComplete. The harness measures its own CPU (getrusage) over the
// timed part and prints one JSON line; redis-server's CPU is read by the bench around the run.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hibiken/asynq"
)

func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		log.Fatal(err)
	}
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}

type silent struct{}

func (silent) Debug(args ...any) {}
func (silent) Info(args ...any)  {}
func (silent) Warn(args ...any)  {}
func (silent) Error(args ...any) {}
func (silent) Fatal(args ...any) { log.Fatal(args...) }

func main() {
	if len(os.Args) != 6 {
		log.Fatal("usage: asynq produce|consume <redis-url> <tasks> <concurrency> <queue>")
	}
	mode := os.Args[1]
	opt, err := asynq.ParseRedisURI(os.Args[2])
	if err != nil {
		log.Fatal(err)
	}
	tasks, _ := strconv.Atoi(os.Args[3])
	concurrency, _ := strconv.Atoi(os.Args[4])
	queue := os.Args[5]
	payload := []byte(`{"order":1,"sku":"A-1","qty":2}`)
	var out map[string]any

	switch mode {
	case "produce":
		client := asynq.NewClient(opt)
		defer client.Close()
		var next atomic.Int64
		var failed atomic.Int64
		cpu0 := cpuSeconds()
		t0 := time.Now()
		var wg sync.WaitGroup
		for w := 0; w < concurrency; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for next.Add(1) <= int64(tasks) {
					if _, err := client.Enqueue(asynq.NewTask("t", payload), asynq.Queue(queue), asynq.MaxRetry(3)); err != nil {
						failed.Add(1)
					}
				}
			}()
		}
		wg.Wait()
		out = map[string]any{"ops": tasks, "failed": failed.Load(), "seconds": time.Since(t0).Seconds(), "cpuSeconds": cpuSeconds() - cpu0}
	case "consume":
		var done atomic.Int64
		var first atomic.Int64
		var cpuAtFirst atomic.Uint64
		all := make(chan struct{})
		srv := asynq.NewServer(opt, asynq.Config{
			Concurrency: concurrency,
			Queues:      map[string]int{queue: 1},
			Logger:      silent{},
			LogLevel:    asynq.ErrorLevel,
		})
		mux := asynq.NewServeMux()
		mux.HandleFunc("t", func(ctx context.Context, t *asynq.Task) error {
			if first.CompareAndSwap(0, time.Now().UnixNano()) {
				cpuAtFirst.Store(uint64(cpuSeconds() * 1e9))
			}
			if done.Add(1) == int64(tasks) {
				close(all)
			}
			return nil
		})
		if err := srv.Start(mux); err != nil {
			log.Fatal(err)
		}
		select {
		case <-all:
		case <-time.After(5 * time.Minute):
			log.Fatalf("only %d of %d tasks handled", done.Load(), tasks)
		}
		// Handled is not yet acknowledged: wait until asynq has settled every task.
		insp := asynq.NewInspector(opt)
		for {
			qi, err := insp.GetQueueInfo(queue)
			if err == nil && qi.Active == 0 && qi.Pending == 0 {
				break
			}
			time.Sleep(2 * time.Millisecond)
		}
		seconds := float64(time.Now().UnixNano()-first.Load()) / 1e9
		cpu := cpuSeconds() - float64(cpuAtFirst.Load())/1e9
		srv.Shutdown()
		out = map[string]any{"ops": tasks, "seconds": seconds, "cpuSeconds": cpu}
	default:
		log.Fatalf("unknown mode %q", mode)
	}
	b, _ := json.Marshal(out)
	fmt.Fprintln(os.Stdout, string(b))
}
