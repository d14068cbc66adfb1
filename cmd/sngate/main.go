// Command sngate is an MQTT-SN gateway with an integrated MQTT broker.
//
// Its subcommands: serve (the gateway and broker), pub and sub (MQTT-SN
// clients), dump (a live MQTT-SN decoder), config check, passwd and
// version. Run 'sngate --help' for details.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	// SIGINT and SIGTERM end pub, sub and dump cleanly; serve watches
	// signals itself as well (it also handles SIGHUP).
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := newApp(ctx).run(os.Args[1:])
	stop()
	os.Exit(code)
}
