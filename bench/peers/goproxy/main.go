// The Go peer for bench/http.bench.ts: net/http/httputil.ReverseProxy in front of one upstream,
// with the standard library's defaults except a keep-alive pool as large as nginx's (64 idle
// connections to the upstream). Run with GOMAXPROCS=1 so it uses one core, like nginx's single
// worker and the single Node process of the sidecar.
//
//	goproxy <listen host:port> <upstream host:port>
//
// Prints "listening <addr>" once it accepts connections.
package main

import (
	"fmt"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"time"
)

func main() {
	if len(os.Args) != 3 {
		log.Fatal("usage: goproxy <listen host:port> <upstream host:port>")
	}
	target, err := url.Parse("http://" + os.Args[2])
	if err != nil {
		log.Fatal(err)
	}
	proxy := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(target)
			r.SetXForwarded()
			r.Out.Host = r.In.Host
		},
		Transport: &http.Transport{
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConns:        64,
			MaxIdleConnsPerHost: 64,
			IdleConnTimeout:     90 * time.Second,
		},
	}
	ln, err := net.Listen("tcp", os.Args[1])
	if err != nil {
		log.Fatal(err)
	}
	srv := &http.Server{Handler: proxy, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 120 * time.Second}
	fmt.Printf("listening %s\n", ln.Addr())
	log.Fatal(srv.Serve(ln))
}
