package main

// Persistence and the bridge in serve: opening the store, starting the
// bridge, and the start-up notes on UDP socket buffers.

import (
	"errors"
	"fmt"
	"log/slog"
	"os"

	"github.com/sngate/sngate/broker"
	"github.com/sngate/sngate/broker/bridge"
	"github.com/sngate/sngate/broker/store"
)

// openStore opens the store in dir. Its errors are one line naming the
// file, the cause and the way out.
func openStore(dir string, log *slog.Logger) (*store.Store, error) {
	st, err := store.Open(dir, store.Options{Logger: log})
	if err == nil {
		return st, nil
	}
	return nil, storeError(err)
}

// storeError adds to a store error the advice its message lacks.
func storeError(err error) error {
	switch {
	case errors.Is(err, store.ErrLocked):
		return fmt.Errorf("%w; stop the other sngate, or give this one another --data-dir (or persistence: false)", err)
	case errors.Is(err, os.ErrPermission):
		return fmt.Errorf("%w; check the owner and mode of the data dir and the file, or use another --data-dir", err)
	}
	return err
}

// brokerOptions returns the broker's options: its logger and, with
// persistence, the store.
func (s *server) brokerOptions() []broker.Option {
	opts := []broker.Option{broker.WithLogger(s.log.With("component", "broker"))}
	if s.store != nil {
		opts = append(opts, broker.WithStore(s.store))
	}
	return opts
}

// startBridge creates and starts the bridge, before any front end
// serves, so that transparent mode sees every MQTT-SN session.
func (s *server) startBridge() error {
	if !s.cfg.Bridge.enabled() {
		return nil
	}
	br, err := bridge.New(s.cfg.bridgeConfig(s.log.With("component", "bridge")), s.broker)
	if err != nil {
		return err // "bridge: ...": a TLS file it cannot read (the rest is validated before)
	}
	br.Start()
	s.bridge = br
	s.comps.bridge = br
	return nil
}

// logUDPBuffers logs, per UDP link, the socket buffer sizes asked for and
// what the kernel grants them, and warns when the kernel caps them: the
// UDP link sets them with SO_RCVBUF and SO_SNDBUF, which Linux limits to
// net.core.rmem_max and wmem_max whatever the process's capabilities.
func (s *server) logUDPBuffers() {
	for i, u := range s.cfg.udpConfigs() {
		if i >= len(s.comps.udp) {
			return
		}
		name := s.comps.udp[i].Name()
		rGot, wGot, ok := probeUDPBuffers(u.ReadBuffer, u.WriteBuffer)
		if !ok {
			s.log.Info("udp socket buffers", "link", name, "read_buffer", u.ReadBuffer, "write_buffer", u.WriteBuffer)
			continue
		}
		s.log.Info("udp socket buffers", "link", name, "read_buffer", u.ReadBuffer, "read_buffer_granted", rGot,
			"write_buffer", u.WriteBuffer, "write_buffer_granted", wGot)
		if rGot < u.ReadBuffer {
			s.log.Warn("the kernel caps the UDP receive buffer: bursts may lose datagrams; raise net.core.rmem_max",
				"link", name, "asked", u.ReadBuffer, "granted", rGot,
				"fix", fmt.Sprintf("sysctl -w net.core.rmem_max=%d", u.ReadBuffer))
		}
		if wGot < u.WriteBuffer {
			s.log.Warn("the kernel caps the UDP send buffer; raise net.core.wmem_max",
				"link", name, "asked", u.WriteBuffer, "granted", wGot,
				"fix", fmt.Sprintf("sysctl -w net.core.wmem_max=%d", u.WriteBuffer))
		}
	}
}
