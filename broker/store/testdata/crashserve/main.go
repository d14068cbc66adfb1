// Command crashserve is a stand-in for 'sngate serve' used by the store's
// crash test while serve does not open the store yet: it wires the store,
// the broker, the MQTT TCP listener and the MQTT-SN gateway on UDP the
// way serve does, with serve's flags (--sn-listen, --mqtt-listen,
// --data-dir, --metrics-listen, --ready-file) and ready-file format.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/sngate/sngate/broker"
	"github.com/sngate/sngate/broker/listeners"
	"github.com/sngate/sngate/broker/store"
	"github.com/sngate/sngate/gateway"
	"github.com/sngate/sngate/transport/udp"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "crashserve:", err)
		os.Exit(1)
	}
}

func run() error {
	snAddr := flag.String("sn-listen", "127.0.0.1:0", "MQTT-SN UDP address")
	mqttAddr := flag.String("mqtt-listen", "127.0.0.1:0", "MQTT TCP address")
	dataDir := flag.String("data-dir", "data", "data directory")
	flag.String("metrics-listen", "", "ignored")
	readyFile := flag.String("ready-file", "", "write the bound addresses as JSON here")
	persist := flag.Bool("persist", true, "open the store (false: state in memory only, for comparisons)")
	flag.Parse()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))

	opts := []broker.Option{broker.WithLogger(log)}
	if *persist {
		st, err := store.Open(*dataDir, store.Options{Logger: log})
		if err != nil {
			return err
		}
		defer st.Close()
		opts = append(opts, broker.WithStore(st))
	}
	cfg := broker.DefaultConfig()
	cfg.SysInterval = 0
	srv, err := broker.New(cfg, opts...)
	if err != nil {
		return err
	}
	defer srv.Close()
	group, err := listeners.Start(srv, log, listeners.Config{Kind: listeners.KindTCP, Addr: *mqttAddr})
	if err != nil {
		return err
	}
	defer group.Close()
	link, err := udp.Listen(udp.Config{Addr: *snAddr})
	if err != nil {
		return err
	}
	gcfg := gateway.DefaultConfig()
	gcfg.Logger = log
	gcfg.NewClientRate, gcfg.NewClientBurst = 1e6, 1e6
	gw, err := gateway.New(gcfg, srv, link)
	if err != nil {
		return err
	}
	defer gw.Close()
	errs := make(chan error, 1)
	go func() { errs <- gw.Serve() }()

	if *readyFile != "" {
		info := map[string]any{"mqtt": []string{"tcp://" + group.Listeners()[0].Addr().String()},
			"sn_udp": []string{link.LocalAddr().String()}, "pid": os.Getpid()}
		data, _ := json.Marshal(info)
		tmp := filepath.Join(filepath.Dir(*readyFile), ".ready.tmp")
		if err := os.WriteFile(tmp, data, 0o600); err != nil {
			return err
		}
		if err := os.Rename(tmp, *readyFile); err != nil {
			return err
		}
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	select {
	case <-sigs:
		return nil
	case err := <-errs:
		return err
	}
}
