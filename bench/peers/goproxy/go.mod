module sluice.dev/bench/peers/goproxy

go 1.26
