// Command sngate is an MQTT-SN gateway with an integrated MQTT broker.
package main

import (
	"fmt"
	"os"
)

func main() {
	if err := newRootCmd().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "sngate:", err)
		os.Exit(exitCode(err))
	}
}
