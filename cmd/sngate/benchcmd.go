package main

// sngate bench: the load generator (package bench) on the command line.

import (
	"log/slog"
	"net"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/sngate/sngate/cmd/sngate/bench"
)

// benchFlags are the options of 'sngate bench'.
type benchFlags struct {
	host, mqtt, scenario, topicPrefix, metrics   string
	port, clients, qos, subQoS, size, count, pid int
	workers, sockets, sources, window, retries   int
	keepAlive, sleepDuration                     int
	rate                                         float64
	duration, setupTimeout, retry, drain         time.Duration
	jsonOut, local, nullSink, verbose            bool
}

// newBenchCmd returns the 'sngate bench' command.
func newBenchCmd() *cobra.Command {
	var f benchFlags
	d := bench.DefaultConfig()
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Load-test an MQTT-SN gateway and its broker",
		Long: `Simulate many MQTT-SN clients over UDP against sngate, or any other MQTT-SN
gateway, and measure what arrives on the MQTT side: offered and delivered
messages per second, loss, latency (p50, p90, p99, max), errors by kind.

Scenarios (--scenario):
  publish    MQTT-SN clients publish (QoS -1, 0, 1 or 2) at --rate per client
             or as fast as possible; an MQTT subscriber on --mqtt receives.
             QoS 1 and 2 run closed-loop, one message in flight per client.
             QoS -1 uses the long-topic-name extension (the gateway must allow
             QoS -1: sngate's sn.qos_minus1).
  subscribe  an MQTT publisher on --mqtt publishes --rate msg/s to one topic
             that --clients MQTT-SN clients subscribe to.
  sleep      the clients connect, subscribe and sleep; the publisher sends
             --count messages to each (default 10); the clients wake with
             PINGREQ(ClientId) and drain. Reports the drain rate and the
             messages lost, which must be 0.
  connect    the clients connect: connections per second, CONNACK latency,
             and the gateway's memory per connected client.

Send timestamps travel in the payload (so --size is at least 16 bytes).
Every run is bounded by --duration (the measured phase), --count and
--setup-timeout (the phases around it). Only the addresses given are used.

With --pid (read /proc/PID) or --metrics (Prometheus text), the gateway's RSS
and CPU time are reported: CPU per message, bytes per client. --local starts
an in-process broker and gateway instead of using -h/-p/--mqtt; --null-sink
benchmarks a UDP sink that only answers and counts, to show the tool's own
ceiling. sngate's per-source admission limit (new_client_rate) would slow
large connects from one address: on loopback the sockets are spread over
several 127.x.y.z source addresses (--sources).

Help is --help: -h is the gateway host.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := f.config(d)
			if err != nil {
				return err
			}
			if f.verbose {
				cfg.Logger = slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), nil))
			}
			rep, err := bench.Run(cmd.Context(), cfg)
			if rep != nil {
				var werr error
				if f.jsonOut {
					werr = rep.WriteJSON(cmd.OutOrStdout())
				} else {
					werr = rep.WriteTable(cmd.OutOrStdout())
				}
				if err == nil {
					err = werr
				}
			}
			return err
		},
	}
	fs := cmd.Flags()
	fs.Bool("help", false, "show help for the command")
	fs.StringVarP(&f.host, "host", "h", "localhost", "MQTT-SN gateway host")
	fs.IntVarP(&f.port, "port", "p", 1884, "MQTT-SN gateway UDP port")
	fs.StringVar(&f.mqtt, "mqtt", d.MQTT, `broker MQTT TCP address, host:port ("" = none: publish measures the offered rate only)`)
	fs.StringVar(&f.scenario, "scenario", d.Scenario, "publish, subscribe, sleep or connect")
	fs.IntVar(&f.clients, "clients", d.Clients, "simulated MQTT-SN clients")
	fs.IntVar(&f.qos, "qos", d.QoS, "QoS: -1 (publish only), 0, 1 or 2")
	fs.IntVar(&f.subQoS, "sub-qos", -1, "QoS of the publish scenario's MQTT subscription (default: --qos, at least 0)")
	fs.IntVar(&f.size, "size", d.Size, "payload bytes (at least 16)")
	fs.Float64Var(&f.rate, "rate", 0, "messages per second per client (subscribe: of the publisher); 0 = as fast as possible")
	fs.DurationVar(&f.duration, "duration", d.Duration, "bound of the measured phase")
	fs.IntVar(&f.count, "count", 0, "messages per client (publish), of the publisher (subscribe) or per sleeper (sleep, default 10); 0 = --duration only")
	fs.BoolVar(&f.jsonOut, "json", false, "print the report as JSON")
	fs.StringVar(&f.topicPrefix, "topic-prefix", d.TopicPrefix, "first topic level; a run ID follows it")
	fs.IntVar(&f.pid, "pid", 0, "gateway process ID: report its RSS and CPU from /proc")
	fs.StringVar(&f.metrics, "metrics", "", "gateway metrics URL (Prometheus text), used when --pid is not given")
	fs.BoolVar(&f.local, "local", false, "benchmark an in-process broker and gateway on 127.0.0.1")
	fs.BoolVar(&f.nullSink, "null-sink", false, "benchmark a UDP sink that only answers and counts: the tool's ceiling")
	fs.IntVar(&f.workers, "workers", 0, "goroutines driving the clients (default GOMAXPROCS)")
	fs.IntVar(&f.sockets, "sockets", 0, "UDP sockets (default one per client up to the open-file limit; sleep and connect may share)")
	fs.IntVar(&f.sources, "sources", 0, "loopback source addresses to spread the sockets over (default one per 400 clients on loopback)")
	fs.IntVar(&f.window, "window", d.Window, "handshakes (CONNECT, wake-up, DISCONNECT) in progress at once")
	fs.DurationVar(&f.setupTimeout, "setup-timeout", d.SetupTimeout, "bound of the setup and teardown phases")
	fs.DurationVar(&f.retry, "retry", d.Retry, "T_RETRY: wait this long for an answer before resending")
	fs.IntVar(&f.retries, "retries", d.Retries, "N_RETRY: resends before giving up")
	fs.IntVar(&f.keepAlive, "keepalive", int(d.KeepAlive), "CONNECT keep-alive in seconds")
	fs.IntVar(&f.sleepDuration, "sleep-duration", int(d.SleepDuration), "sleep duration in seconds (sleep)")
	fs.DurationVar(&f.drain, "drain", 0, "wait at most this long for messages in flight after sending (default max(2s, --duration))")
	fs.BoolVarP(&f.verbose, "verbose", "v", false, "log progress on stderr")
	return cmd
}

// config maps the flags to a bench.Config, rejecting impossible values
// as usage errors.
func (f *benchFlags) config(d bench.Config) (bench.Config, error) {
	if f.port < 1 || f.port > 65535 {
		return d, usagef("bench: -p %d is outside 1..65535", f.port)
	}
	if f.keepAlive < 1 || f.keepAlive > 65535 || f.sleepDuration < 1 || f.sleepDuration > 65535 {
		return d, usagef("bench: --keepalive and --sleep-duration must be 1..65535 seconds")
	}
	c := d
	c.Scenario = f.scenario
	c.Gateway = net.JoinHostPort(f.host, strconv.Itoa(f.port))
	c.MQTT = f.mqtt
	c.Local, c.NullSink = f.local, f.nullSink
	c.Clients, c.QoS, c.SubscriberQoS, c.Size, c.Rate = f.clients, f.qos, f.subQoS, f.size, f.rate
	c.Duration, c.Count, c.TopicPrefix = f.duration, f.count, f.topicPrefix
	c.PID, c.MetricsURL = f.pid, f.metrics
	c.Workers, c.Sockets, c.Sources, c.Window = f.workers, f.sockets, f.sources, f.window
	c.SetupTimeout, c.Retry, c.Retries, c.Drain = f.setupTimeout, f.retry, f.retries, f.drain
	c.KeepAlive, c.SleepDuration = uint16(f.keepAlive), uint16(f.sleepDuration)
	if err := bench.Validate(c); err != nil {
		return c, usageError{err}
	}
	return c, nil
}
